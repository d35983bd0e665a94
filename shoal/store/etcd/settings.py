"""``EtcdMemberSettings`` (one manager's etcd member) and the etcd command line built from it.

Called by ``member.py``; shoald builds the settings from the node's state dir and certificates.
Every default says why it is what it is (raft.md sections 5 and 8). The command line has mutual
TLS on both the client and the peer URL, listens only on the two given URLs (no plaintext port,
no separate metrics listener: /metrics stays on the TLS client URL) and logs JSON to stderr.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from shoal.errors import InvalidArgument, Unavailable

__all__ = ["EtcdMemberSettings", "command_line", "find_etcd"]

_DEBIAN_ETCD = "/usr/bin/etcd"


@dataclass(frozen=True, slots=True, kw_only=True)
class EtcdMemberSettings:
    name: str  # the member name: the manager's node id
    data_dir: Path  # <state>/etcd; the log goes next to it as <data_dir>.log
    client_url: str  # https://IP:PORT, listened on and advertised
    peer_url: str  # https://IP:PORT, listened on and advertised
    cert_file: Path  # the manager certificate: serverAuth + clientAuth, SAN = the URLs' IPs
    key_file: Path
    trusted_ca_file: Path  # CA for client certificates (and for the health checks' server check)
    # CA for peers; None = trusted_ca_file. Production should pass a raft-only intermediate so a
    # worker certificate cannot join the peer mesh (raft.md 8.6).
    peer_trusted_ca_file: Path | None = None
    initial_cluster: str | None = None  # "n1=https://...,n2=..."; None = just this member
    initial_cluster_state: Literal["new", "existing"] = "new"  # "existing" to join
    initial_cluster_token: str = "shoal"  # use the cluster id, so two swarms never mix peers
    # Disaster recovery (swarm init --force-new-cluster): passed until etcd has served once; a
    # later restart must not re-apply it, or members added since would be dropped again.
    force_new_cluster: bool = False
    snapshot_count: int = 10_000  # raft entries between snapshots (3.4's 100k keeps big WALs)
    auto_compaction_retention: int = 10_000  # revisions kept; without it the db fills to quota
    quota_backend_bytes: int = 2 * 1024**3  # etcd's default 2 GiB, set on purpose (NOSPACE)
    heartbeat_interval_ms: int = 100  # etcd default
    election_timeout_ms: int = 1000  # etcd default (10 heartbeats)
    pre_vote: bool = True  # 3.5's default: a rejoining member does not force an election
    progress_notify_interval_s: float = 5.0  # watch liveness; EtcdBackend's idle timeout is 30 s
    max_txn_ops: int = 128  # etcd default; shoal.store.backend.MAX_TXN_OPS (120) stays below
    start_timeout: float = 20.0  # spawn -> serving; a restart with a large WAL replays it first
    stop_timeout: float = 10.0  # SIGTERM -> SIGKILL
    health_interval: float = 1.0  # between health checks; also how fast a crash is noticed
    probe_timeout: float = 1.0  # one health check
    restart_backoff_initial: float = 0.5  # first restart delay; doubles per failed launch
    restart_backoff_max: float = 30.0  # cap on the restart delay
    restart_backoff_reset_after: float = 60.0  # a launch that lived this long resets the backoff
    etcd_binary: str | None = None  # None: /usr/bin/etcd (Debian etcd-server), else PATH

    def __post_init__(self) -> None:
        for label, url in (("client_url", self.client_url), ("peer_url", self.peer_url)):
            if not url.startswith("https://"):
                raise InvalidArgument(f"etcd {label} must be an https:// URL, got {url!r}")
        if self.initial_cluster_state not in ("new", "existing"):
            raise InvalidArgument(f"bad initial_cluster_state {self.initial_cluster_state!r}")

    @property
    def log_path(self) -> Path:
        return self.data_dir.with_name(self.data_dir.name + ".log")


def find_etcd(configured: str | None) -> str:
    """The etcd binary to run; Unavailable with the install hint when there is none."""
    candidates = [configured] if configured else [_DEBIAN_ETCD, "etcd"]
    for candidate in candidates:
        found = shutil.which(candidate)
        if found and os.access(found, os.X_OK):
            return found
    raise Unavailable("etcd is not installed: apt-get install etcd-server")


def command_line(binary: str, s: EtcdMemberSettings, *, first_launch: bool) -> list[str]:
    peer_ca = s.peer_trusted_ca_file or s.trusted_ca_file
    args = [
        binary,
        f"--name={s.name}",
        f"--data-dir={s.data_dir}",
        f"--listen-client-urls={s.client_url}",
        f"--advertise-client-urls={s.client_url}",
        f"--listen-peer-urls={s.peer_url}",
        f"--initial-advertise-peer-urls={s.peer_url}",
        f"--initial-cluster={s.initial_cluster or f'{s.name}={s.peer_url}'}",
        f"--initial-cluster-state={s.initial_cluster_state}",
        f"--initial-cluster-token={s.initial_cluster_token}",
        "--client-cert-auth=true",
        f"--trusted-ca-file={s.trusted_ca_file}",
        f"--cert-file={s.cert_file}",
        f"--key-file={s.key_file}",
        "--peer-client-cert-auth=true",
        f"--peer-trusted-ca-file={peer_ca}",
        f"--peer-cert-file={s.cert_file}",
        f"--peer-key-file={s.key_file}",
        f"--snapshot-count={s.snapshot_count}",
        "--auto-compaction-mode=revision",
        f"--auto-compaction-retention={s.auto_compaction_retention}",
        f"--quota-backend-bytes={s.quota_backend_bytes}",
        f"--heartbeat-interval={s.heartbeat_interval_ms}",
        f"--election-timeout={s.election_timeout_ms}",
        f"--pre-vote={'true' if s.pre_vote else 'false'}",
        f"--experimental-watch-progress-notify-interval={s.progress_notify_interval_s:g}s",
        f"--max-txn-ops={s.max_txn_ops}",
        "--logger=zap",
        "--log-outputs=stderr",
    ]
    if s.force_new_cluster and first_launch:
        args.append("--force-new-cluster=true")
    return args
