"""The gossip key manager over a real Store (MemoryBackend), and the keys' way to an agent: a
real Dispatcher served over mutual TLS with certificates from a real root CA, and a real Agent
(sim executor) connected to it."""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from parts import Parts

from shoal.agent import Agent
from shoal.api.render import swarm_json
from shoal.dev.wait import wait_for_async
from shoal.exec.sim import SimExecutor
from shoal.manager.ca import RootCA
from shoal.manager.deks import ClusterKeys
from shoal.manager.dispatcher.dispatcher import Dispatcher
from shoal.manager.keymanager import KEY_LEN, KeyManager, rotated
from shoal.model.dispatch import NetworkUpdate
from shoal.model.objects import Cluster, EncryptionKey, Network, NetworkAttachment, Node
from shoal.model.specs import NetworkSpec
from shoal.pki import NodeIdentity, Role, generate_key_and_csr
from shoal.store.membackend import MemoryBackend
from shoal.store.store import Store, Tx, copy

CLUSTER_ID = "clustershoaltest0000000001"
WORKER_ID = "workershoaltest00000000001"
MANAGER_ID = "managershoaltest0000000001"


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    s = Store(MemoryBackend())
    await s.start()
    try:
        def bootstrap(tx: Tx) -> None:
            tx.create(Cluster(id=CLUSTER_ID, data_path_port=7789))  # swarm init --data-path-port
            tx.create(Node(id=WORKER_ID))
        await s.update(bootstrap)
        yield s
    finally:
        await s.close()


def _cluster(store: Store) -> Cluster:
    cluster = store.view().cluster()
    assert cluster is not None
    return cluster


def _keys(store: Store) -> list[EncryptionKey]:
    return list(_cluster(store).network_bootstrap_keys or [])


class Ticker:
    """An injected clock and sleep: the key manager's sleep returns when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.asked: list[float] = []  # the delays the key manager slept for
        self._go: asyncio.Queue[None] = asyncio.Queue()
        self.sleeping = asyncio.Event()

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.asked.append(delay)
        self.sleeping.set()
        await self._go.get()
        self.sleeping.clear()
        self.now += delay

    def release(self) -> None:
        self._go.put_nowait(None)


@pytest.fixture
async def ticker() -> Ticker:
    return Ticker()


# -- the ring, as a pure function -----------------------------------------------------------

def test_rotated_adds_the_newest_last_and_keeps_three() -> None:
    keys: list[EncryptionKey] = []
    clock = 41
    for i in range(5):
        keys, clock = rotated(keys, clock, bytes([i]) * KEY_LEN)
    assert clock == 46
    assert [k.lamport_time for k in keys] == [44, 45, 46]  # oldest first
    assert [k.key[0] for k in keys] == [2, 3, 4]
    assert all(k.subsystem == "networking:gossip" and k.algorithm == "aes_128_gcm" for k in keys)


def test_rotated_orders_by_lamport_and_never_reuses_a_time() -> None:
    # stored out of order, with a clock behind its newest key (never written by us, but harmless)
    keys = [EncryptionKey(key=b"b" * 16, lamport_time=9), EncryptionKey(key=b"a" * 16, lamport_time=7),
            EncryptionKey(key=b"c" * 16, lamport_time=8)]
    ring, clock = rotated(keys, 3, b"d" * 16)
    assert clock == 10
    assert [k.key[:1] for k in ring] == [b"c", b"b", b"d"]


# -- the key manager over a store -------------------------------------------------------------

async def test_start_creates_a_full_ring_once(store: Store, parts: Parts, ticker: Ticker) -> None:
    km = KeyManager(store, clock=ticker.clock, sleep=ticker.sleep)
    parts.start(km)
    try:
        await wait_for_async("the key manager waiting to rotate", lambda: ticker.sleeping.is_set())
        keys = _keys(store)
        assert len(keys) == 3
        assert len({k.key for k in keys}) == 3 and all(len(k.key) == 16 for k in keys)
        times = [k.lamport_time for k in keys]
        assert times == list(range(times[0], times[0] + 3))  # consecutive, oldest first
        assert _cluster(store).encryption_key_lamport_clock == times[-1]
        assert ticker.asked == [12 * 3600.0]  # the default interval
    finally:
        await parts.close()

    # A new leader (a new key manager on the same store) keeps the ring: no write at all.
    revision = _cluster(store).version.index
    again = KeyManager(store, clock=ticker.clock, sleep=ticker.sleep)
    assert await again.ensure_keys() is False
    parts.start(again)
    try:
        await wait_for_async("the new key manager waiting to rotate", lambda: len(ticker.asked) == 2)
        assert _keys(store) == keys
        assert _cluster(store).version.index == revision
    finally:
        await parts.close()


async def test_rotation_every_interval(store: Store, parts: Parts, ticker: Ticker) -> None:
    km = KeyManager(store, rotation_interval=60.0, clock=ticker.clock, sleep=ticker.sleep)
    parts.start(km)
    try:
        await wait_for_async("the first wait", lambda: len(ticker.asked) == 1)
        first = _keys(store)
        seen = [first]
        for n in range(1, 5):
            ticker.release()
            await wait_for_async(f"wait number {n + 1}", lambda n=n: len(ticker.asked) == n + 1)
            seen.append(_keys(store))
        assert ticker.asked == [60.0] * 5  # rotations on schedule, from the injected clock
        for before, after in itertools.pairwise(seen):
            assert after[:2] == before[1:]  # the oldest dropped, the others kept in order
            assert after[2].lamport_time == before[2].lamport_time + 1
            assert after[2].key not in {k.key for k in before}
        assert len(seen[-1]) == 3
        assert _cluster(store).encryption_key_lamport_clock == first[2].lamport_time + 4
    finally:
        await parts.close()


async def test_rotation_builds_on_the_stored_ring(store: Store) -> None:
    """Each write recomputes the ring from the stored cluster, not from a copy kept in memory:
    a rotation by an earlier leader, and a cluster write between, are both kept."""
    old_leader, new_leader = KeyManager(store), KeyManager(store)
    await old_leader.ensure_keys()
    start = _keys(store)
    await new_leader.rotate()

    def other_writer(tx: Tx) -> None:
        cluster = copy(_cluster(store))
        cluster.spec.dispatcher.heartbeat_period = 2_000_000_000
        tx.update(cluster)
    await store.update(other_writer)
    await old_leader.rotate()
    after = _keys(store)
    assert after[0] == start[2]
    assert [k.lamport_time for k in after] == [start[2].lamport_time + i for i in range(3)]
    assert _cluster(store).spec.dispatcher.heartbeat_period == 2_000_000_000


async def test_keyring_size_and_interval_are_settings(store: Store) -> None:
    km = KeyManager(store, keyring_size=2, rotation_interval=1.0)
    await km.ensure_keys()
    assert len(_keys(store)) == 2
    await km.rotate()
    assert len(_keys(store)) == 2
    with pytest.raises(ValueError):
        KeyManager(store, rotation_interval=0)


def test_swarm_json_never_shows_keys() -> None:
    cluster = Cluster(id=CLUSTER_ID, network_bootstrap_keys=[EncryptionKey(key=b"k" * 16, lamport_time=5)],
                      encryption_key_lamport_clock=5)
    for out in (swarm_json(cluster), swarm_json(cluster, with_tokens=False)):
        text = repr(out)
        assert "NetworkBootstrapKeys" not in text and "EncryptionKeyLamportClock" not in text
        assert base64.b64encode(b"k" * 16).decode() not in text


# -- keys and attachments reach an agent through the real dispatcher -------------------------

def _identity(root: RootCA, node_id: str, role: Role) -> NodeIdentity:
    key_pem, csr_pem = generate_key_and_csr()
    cert = root.sign(csr_pem, node_id=node_id, role=role, cluster_id=CLUSTER_ID, san_ips=["127.0.0.1"])
    return NodeIdentity(cert_pem=cert, key_pem=key_pem, ca_pem=root.cert_pem)


def _secrets(keys: list[EncryptionKey]) -> list[str]:
    """Every way a key could show in a log line."""
    out = []
    for k in keys:
        out += [k.key.hex(), base64.b64encode(k.key).decode(), repr(k.key)[2:-1]]
    return out


async def test_keys_and_attachments_reach_the_agent(store: Store, parts: Parts, ticker: Ticker,
                                                    tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    root = RootCA.create()
    manager, worker = _identity(root, MANAGER_ID, "manager"), _identity(root, WORKER_ID, "worker")
    dispatcher = Dispatcher(store, cluster_id=CLUSTER_ID, keys=ClusterKeys(None))
    km = KeyManager(store, rotation_interval=60.0, clock=ticker.clock, sleep=ticker.sleep)
    app = web.Application()
    app.router.add_get("/session", dispatcher.session)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    received: list[NetworkUpdate] = []
    agent_job: asyncio.Task[None] | None = None
    agent: Agent | None = None
    try:
        ctx: ssl.SSLContext = manager.server_ssl_context()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        addr = f"127.0.0.1:{runner.addresses[0][1]}"
        parts.start(dispatcher)
        parts.start(km)
        await wait_for_async("keys created", lambda: ticker.sleeping.is_set())
        agent = Agent(executor=SimExecutor(hostname="w1", state_dir=tmp_path), state_dir=tmp_path,
                      ssl_context=worker.client_ssl_context, managers=[addr], addr="127.0.0.1",
                      on_network=received.append)
        agent_job = asyncio.create_task(agent.run(), name="test-agent")

        # At the session's start: the ring, oldest first, and no attachments yet.
        await wait_for_async("the first NetworkUpdate", lambda: len(received) == 1)
        assert received[0].keys == _keys(store)
        assert received[0].attachments == []
        assert received[0].data_path_port == 7789  # the VXLAN devices' port on every node
        assert agent.network == received[0]

        # A rotation reaches the agent (once, however many cluster writes follow).
        ticker.release()
        await wait_for_async("the rotated keys", lambda: len(received) == 2)
        assert received[1].keys == _keys(store)
        assert received[1].keys[:2] == received[0].keys[1:]

        # A cluster write that leaves the keys alone sends nothing.
        def spec_change(tx: Tx) -> None:
            cluster = copy(_cluster(store))
            cluster.spec.labels = {"shoaltest": "1"}
            tx.update(cluster)
        await store.update(spec_change)

        # The node's own attachments (the allocator's ingress address) reach it too.
        ingress = NetworkAttachment(network=Network(id="ingressshoaltest", spec=NetworkSpec(name="ingress")),
                                    addresses=["10.255.0.2/16"])

        def attach(tx: Tx) -> None:
            node = tx.view.get(Node, WORKER_ID)
            assert node is not None
            node = copy(node)
            node.attachments = [ingress]
            tx.update(node)
        await store.update(attach)
        await wait_for_async("the node's attachments", lambda: len(received) == 3)
        assert received[2].attachments == [ingress] and received[2].keys == received[1].keys
        assert agent.network == received[2]
        await asyncio.sleep(0.2)  # past the pusher's debounce: nothing else was due
        assert len(received) == 3
    finally:
        if agent is not None:
            await agent.stop()
        if agent_job is not None:
            await asyncio.gather(agent_job, return_exceptions=True)
        await parts.close()
        await runner.cleanup()

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "network keys: 3" in logged
    for secret in _secrets([k for u in received for k in u.keys]):
        assert secret not in logged
