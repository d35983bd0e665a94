"""The gossip key manager: the symmetric keys nodes encrypt their gossip with (swarmkit
manager/keymanager/keymanager.go).

Runs on the leader. The keys live in the cluster object (``Cluster.network_bootstrap_keys``,
oldest first) so every manager has them through the store and no other node ever reads them
there; the dispatcher pushes them to agents (``NetworkUpdate``). As swarmkit v2:

- at the start of a term, a cluster without keys gets a full ring: ``keyring_size`` keys of 16
  random bytes (AES-128-GCM), stamped with consecutive Lamport times; a fresh clock starts at a
  random skew (0-65535). A cluster that has keys keeps them (a new leader does not rotate, so a
  restart of the leader parts writes nothing);
- every ``rotation_interval`` (12 h) a new key is added with ``lamport_time = ++clock`` and the
  oldest beyond ``keyring_size`` (3) is dropped.

Only the gossip subsystem is kept: shoal has no encrypted data path (swarmkit's
``networking:ipsec``). Each write recomputes the ring from the stored cluster inside the
transaction (compare-and-set, retried on a conflict), so two writers cannot lose a key. Key bytes
are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from shoal.errors import ShoalError
from shoal.model.objects import Cluster, EncryptionKey
from shoal.store.store import LostLeadership, Store, Tx, copy

__all__ = [
    "DEFAULT_ROTATION_INTERVAL",
    "KEYRING_SIZE",
    "KEY_LEN",
    "SUBSYSTEM_GOSSIP",
    "KeyManager",
    "rotated",
]

log = logging.getLogger(__name__)

DEFAULT_ROTATION_INTERVAL = 12 * 3600.0  # seconds (swarmkit DefaultKeyRotationInterval)
KEYRING_SIZE = 3  # keys kept: the newest, plus the ones peers may still seal with
KEY_LEN = 16  # bytes: AES-128-GCM
SUBSYSTEM_GOSSIP = "networking:gossip"
ALGORITHM = "aes_128_gcm"
RETRY_AFTER = 10.0  # seconds before a failed rotation is tried again
MAX_SKEW = 0xFFFF  # a fresh Lamport clock starts at a random value up to this (swarmkit genSkew)

Sleep = Callable[[float], Awaitable[None]]


def rotated(keys: list[EncryptionKey], clock: int, new_key: bytes, *,
            keyring_size: int = KEYRING_SIZE) -> tuple[list[EncryptionKey], int]:
    """The ring after one rotation (oldest first) and the new clock: ``new_key`` stamped
    ``clock + 1`` (or past the newest key's time, should the stored clock lag), the oldest
    dropped beyond ``keyring_size``."""
    ordered = sorted(keys, key=lambda k: k.lamport_time)
    tick = max([clock, *(k.lamport_time for k in ordered)]) + 1
    ring = [*ordered, EncryptionKey(subsystem=SUBSYSTEM_GOSSIP, algorithm=ALGORITHM, key=new_key,
                                    lamport_time=tick)]
    return ring[-keyring_size:], tick


class KeyManager:
    """A leader part: ``run()`` makes sure keys exist, then rotates them until cancelled."""

    def __init__(self, store: Store, *, rotation_interval: float = DEFAULT_ROTATION_INTERVAL,
                 keyring_size: int = KEYRING_SIZE, clock: Callable[[], float] = time.monotonic,
                 sleep: Sleep = asyncio.sleep,
                 random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> None:
        if rotation_interval <= 0:
            raise ValueError("the key rotation interval must be positive")
        if keyring_size < 1:
            raise ValueError("the keyring holds at least one key")
        self._store = store
        self.rotation_interval = rotation_interval
        self.keyring_size = keyring_size
        self._clock = clock
        self._sleep = sleep
        self._random = random_bytes

    async def run(self) -> None:
        await self.ensure_keys()
        due = self._clock() + self.rotation_interval
        while True:
            await self._sleep(max(0.0, due - self._clock()))
            try:
                await self.rotate()
            except LostLeadership:
                raise  # the term is over: the manager stops the leader parts
            except ShoalError as exc:
                # Not worth restarting every leader part (which would also restart the
                # interval); try again soon.
                log.warning("gossip key rotation failed, retrying in %.0f s: %s",
                            min(RETRY_AFTER, self.rotation_interval), exc.message)
                due = self._clock() + min(RETRY_AFTER, self.rotation_interval)
                continue
            due += self.rotation_interval
            # a long stall (suspended host) rotates once, not once per missed interval
            due = max(due, self._clock())

    async def ensure_keys(self) -> bool:
        """Write a full ring when the cluster has no keys; True when it wrote one."""

        def fn(tx: Tx) -> int | None:
            cluster = tx.view.cluster()
            if cluster is None or cluster.network_bootstrap_keys:
                return None
            cluster = copy(cluster)
            tick = cluster.encryption_key_lamport_clock or secrets.randbelow(MAX_SKEW + 1)
            keys: list[EncryptionKey] = []
            for _ in range(self.keyring_size):
                keys, tick = rotated(keys, tick, self._random(KEY_LEN), keyring_size=self.keyring_size)
            self._write(tx, cluster, keys, tick)
            return tick

        tick = await self._store.update(fn, retries=5)
        if tick is not None:
            log.info("gossip keys created: %d (lamport %d)", self.keyring_size, tick)
        return tick is not None

    async def rotate(self) -> int | None:
        """Add a new key and drop the oldest beyond the ring size; the new key's Lamport time
        (None when there is no cluster)."""

        def fn(tx: Tx) -> int | None:
            cluster = tx.view.cluster()
            if cluster is None:
                return None
            cluster = copy(cluster)
            keys, tick = rotated(list(cluster.network_bootstrap_keys or []),
                                 cluster.encryption_key_lamport_clock, self._random(KEY_LEN),
                                 keyring_size=self.keyring_size)
            self._write(tx, cluster, keys, tick)
            return tick

        tick = await self._store.update(fn, retries=5)
        if tick is not None:
            log.info("gossip key rotated (lamport %d)", tick)
        return tick

    @staticmethod
    def _write(tx: Tx, cluster: Cluster, keys: list[EncryptionKey], tick: int) -> None:
        cluster.network_bootstrap_keys = keys
        cluster.encryption_key_lamport_clock = tick
        tx.update(cluster)

