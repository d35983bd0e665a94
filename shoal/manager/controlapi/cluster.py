"""Swarm (cluster object) update: spec changes with optimistic concurrency, join token rotation,
the autolock unlock key (made when autolock is turned on, replaced on rotation, dropped when it is
turned off; swarmkit controlapi/cluster.go), the start of a root CA rotation, and the checks of a
spec's CA configuration (shared with swarm init)."""

from __future__ import annotations

import logging
import os
from urllib.parse import urlsplit

from shoal.errors import InvalidArgument, SequenceConflict, Unavailable
from shoal.manager.ca.external import CFSSL
from shoal.manager.ca.rootca import RootCA
from shoal.manager.ca.rotation import desired_root_ca, set_root_ca
from shoal.manager.ca.signing import matching_external_cas
from shoal.manager.deks import ClusterKeys
from shoal.model.objects import Cluster, RootCAState
from shoal.model.specs import SECOND, CAConfig, ClusterSpec, ExternalCA
from shoal.pki.subjects import parse_certificates
from shoal.pki.tokens import generate_token
from shoal.pki.unlockkey import UnlockKey
from shoal.store.store import Store, Tx, copy

__all__ = [
    "DEFAULT_CERT_EXPIRY",
    "DEFAULT_HEARTBEAT",
    "DEFAULT_HISTORY",
    "MIN_CERT_EXPIRY",
    "TEST_MIN_CERT_EXPIRY_ENV",
    "apply_defaults",
    "min_cert_expiry",
    "update_cluster",
]

log = logging.getLogger(__name__)

DEFAULT_HEARTBEAT = 5 * SECOND  # swarmkit's dispatcher default
# The heartbeat periods a swarm may have. swarmkit refuses only a negative one; a period of
# days means a dead node is seen only days later, and one of 2^63 ns overflows every deadline
# (issue 16), so Shoal keeps it between a second (tests use 1 s) and an hour.
MIN_HEARTBEAT = 1 * SECOND
MAX_HEARTBEAT = 3600 * SECOND
DEFAULT_HISTORY = 5  # swarmkit's defaultTaskHistoryRetentionLimit
DEFAULT_CERT_EXPIRY = 90 * 24 * 3600 * SECOND  # 2160h, as swarmkit
MIN_CERT_EXPIRY = 3600 * SECOND  # swarmkit's MinNodeCertExpiration
# TEST ONLY: whole seconds that replace the 1 h minimum, so an integration test can watch a swarm
# outlive several certificate lifetimes in minutes (tests/integration/test_cert_renewal.py).
# Read here and nowhere else; never set it on a real swarm.
TEST_MIN_CERT_EXPIRY_ENV = "SHOAL_TEST_MIN_CERT_EXPIRY"


def min_cert_expiry() -> int:
    """The smallest ``--cert-expiry`` accepted, in nanoseconds: 1 h, or the test-only override."""
    value = os.environ.get(TEST_MIN_CERT_EXPIRY_ENV, "")
    if not value:
        return MIN_CERT_EXPIRY
    try:
        seconds = int(value)
    except ValueError:
        seconds = 0
    if seconds <= 0:
        log.warning("ignoring %s=%r: not a positive number of seconds", TEST_MIN_CERT_EXPIRY_ENV, value)
        return MIN_CERT_EXPIRY
    return seconds * SECOND


def _go_duration(nanoseconds: int) -> str:
    """Go's Duration.String for whole seconds (``1h0m0s``, ``5s``): Docker's message shows it."""
    seconds = nanoseconds // SECOND
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _check_heartbeat(period: int) -> None:
    if period < 0:  # swarmkit's validateClusterSpec, and its words
        raise InvalidArgument("rpc error: code = InvalidArgument desc = heartbeat time period "
                              "cannot be a negative duration")
    if not MIN_HEARTBEAT <= period <= MAX_HEARTBEAT:
        raise InvalidArgument("rpc error: code = InvalidArgument desc = heartbeat time period "
                              f"must be between {_go_duration(MIN_HEARTBEAT)} and "
                              f"{_go_duration(MAX_HEARTBEAT)}")


def apply_defaults(spec: ClusterSpec) -> ClusterSpec:
    """Zero values mean "use the default" (engine-api.md: swarm init sends zeros)."""
    spec.name = spec.name or "default"
    if spec.labels is None:
        spec.labels = {}
    if spec.orchestration.task_history_retention_limit is None:
        spec.orchestration.task_history_retention_limit = DEFAULT_HISTORY
    spec.dispatcher.heartbeat_period = spec.dispatcher.heartbeat_period or DEFAULT_HEARTBEAT
    _check_heartbeat(spec.dispatcher.heartbeat_period)
    spec.ca_config.node_cert_expiry = spec.ca_config.node_cert_expiry or DEFAULT_CERT_EXPIRY
    minimum = min_cert_expiry()
    if spec.ca_config.node_cert_expiry < minimum:
        raise InvalidArgument("rpc error: code = InvalidArgument desc = minimum certificate expiry "
                              f"time is: {_go_duration(minimum)}")
    for external in spec.ca_config.external_cas or []:
        _check_external_ca(external)
    defaults = {str(k).lower(): v for k, v in (spec.task_defaults or {}).items()}
    if defaults.get("logdriver"):  # the orchestrator does not copy it into tasks: refused
        raise InvalidArgument("TaskDefaults.LogDriver is not supported by Shoal: give the "
                              "services their own --log-driver and --log-opt")
    raft = spec.raft
    raft.snapshot_interval = raft.snapshot_interval or 10000
    raft.keep_old_snapshots = raft.keep_old_snapshots or 0
    raft.log_entries_for_slow_followers = raft.log_entries_for_slow_followers or 500
    raft.election_tick = raft.election_tick or 10
    raft.heartbeat_tick = raft.heartbeat_tick or 1
    return spec


async def update_cluster(
    store: Store, version: int, spec: ClusterSpec, *, rotate_worker: bool, rotate_manager: bool,
    keys: ClusterKeys, rotate_unlock_key: bool = False,
) -> Cluster:
    """Store ``spec``. Its CAConfig may start a root rotation (``ForceRotate`` changed, or a
    ``SigningCACert``/``SigningCAKey`` given: shoal.manager.ca.rotation), whose keys ``keys``
    opens and seals (as it seals a new unlock key when autolock is on); the signing cert and key
    themselves are never stored."""
    apply_defaults(spec)
    ca_config = spec.ca_config
    spec.ca_config = CAConfig(node_cert_expiry=ca_config.node_cert_expiry,
                              external_cas=ca_config.external_cas, force_rotate=ca_config.force_rotate)

    def fn(tx: Tx) -> Cluster:
        current = tx.view.cluster()
        if current is None:
            raise Unavailable("This node is not a swarm manager.")
        if current.version.index != version:
            raise SequenceConflict()
        cluster = copy(current)
        cluster.spec = spec
        root_ca = desired_root_ca(current, ca_config, keys)
        _check_signer(root_ca, spec.ca_config.external_cas)
        if root_ca is not current.root_ca:
            set_root_ca(cluster, root_ca)
            log.info("root CA updated: %s", "rotation in progress" if root_ca.root_rotation
                     else "no rotation in progress")
        if rotate_worker or rotate_manager:
            assert cluster.root_ca is not None
            digest = RootCA.from_pem(cluster.root_ca.ca_cert).digest
            if rotate_worker:
                cluster.join_tokens.worker = generate_token(digest)
            if rotate_manager:
                cluster.join_tokens.manager = generate_token(digest)
        if not spec.encryption_config.auto_lock_managers:
            cluster.unlock_key = ""
        elif not cluster.unlock_key or rotate_unlock_key:
            sealer = keys if keys is not None else ClusterKeys(None)
            cluster.unlock_key = sealer.seal_unlock_key(cluster, UnlockKey.generate())
        tx.update(cluster)
        return cluster

    return await store.update(fn)


def _check_external_ca(external: ExternalCA) -> None:
    """Docker's refusals of an ExternalCA, and ours: https only, no options (none is read)."""
    if external.protocol.lower() != CFSSL:
        raise InvalidArgument(f'invalid protocol: "{external.protocol}"')  # moby's convert
    external.protocol = CFSSL  # stored as Docker shows it
    parts = urlsplit(external.url)
    if parts.scheme.lower() != "https":
        raise InvalidArgument(f'invalid external CA URL "{external.url}": invalid HTTP scheme, '
                              "an external CA is reached over https")
    if not parts.hostname:
        raise InvalidArgument(f'invalid external CA URL "{external.url}": no host')
    if external.options:
        names = ", ".join(sorted(external.options))
        raise InvalidArgument(f"external CA options are not supported (shoal's cfssl client reads "
                              f"none): {names}")
    if external.ca_cert:
        parse_certificates(external.ca_cert, what="CA cert for external CA")


def _check_signer(root_ca: RootCAState, external_cas: list[ExternalCA] | None) -> None:
    """A root whose key an external CA holds keeps one external CA for it (swarmkit's
    validateCAConfig, without its reachability dial)."""
    if not root_ca.ca_key and not matching_external_cas(RootCA.from_pem(root_ca.ca_cert), external_cas):
        raise InvalidArgument("there must be at least one valid, reachable external CA corresponding "
                              "to the current CA certificate")
