"""Settings of a gossip node: memberlist's LAN defaults, and a fast preset for tests.

Production defaults follow libnetwork's NetworkDB over memberlist (probe 1 s, probe timeout
500 ms, 3 indirect checks, suspicion multiplier 4, gossip every 200 ms to 3 members, push-pull
every 30 s, datagrams of at most 1400 bytes, tombstones kept 30 min, failed members 24 h).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

__all__ = ["GossipConfig"]


@dataclass(frozen=True, slots=True)
class GossipConfig:
    node_id: str
    bind_host: str = "0.0.0.0"
    bind_port: int = 7946  # UDP and TCP; 0 picks a port free for both
    advertise_host: str | None = None  # how members reach this node; default bind_host
    probe_interval: float = 1.0
    probe_timeout: float = 0.5  # direct ping; indirect pings get the rest of the interval
    indirect_checks: int = 3
    suspicion_mult: float = 4.0  # suspect -> dead after mult * max(1, log10(n)) * probe interval
    gossip_interval: float = 0.2
    gossip_nodes: int = 3
    gossip_to_dead: float = 30.0  # keep gossiping to a member this long after it went dead
    retransmit_mult: int = 4  # each update is sent mult * ceil(log10(n + 1)) times
    push_pull_interval: float = 30.0
    tcp_timeout: float = 10.0  # a whole push-pull exchange: a slow or silent peer is cut off
    max_push_pulls: int = 16  # push-pulls served at once; more connections are closed at once
    packet_size: int = 1400
    tombstone_ttl: float = 1800.0
    dead_member_ttl: float = 86400.0
    reap_interval: float = 5.0

    @classmethod
    def fast(cls, node_id: str, **overrides: Any) -> GossipConfig:
        """Intervals for tests on one machine: failures found in about a second."""
        base = cls(node_id, bind_host="127.0.0.1", bind_port=0, probe_interval=0.2,
                   probe_timeout=0.1, gossip_interval=0.05, gossip_to_dead=2.0,
                   push_pull_interval=1.0, tcp_timeout=2.0, tombstone_ttl=5.0,
                   dead_member_ttl=30.0, reap_interval=0.5)
        return replace(base, **overrides)

    @property
    def host(self) -> str:
        host = self.advertise_host or self.bind_host
        if host in ("0.0.0.0", "::", ""):
            raise ValueError("gossip needs an advertise address when it binds every address")
        return host
