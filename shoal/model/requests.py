"""Swarm lifecycle requests (swarm.InitRequest, JoinRequest, UnlockRequest) as the clients send them."""

from __future__ import annotations

import msgspec

from shoal.model.gotypes import UInt32
from shoal.model.specs import ClusterSpec, Struct

__all__ = ["InitRequest", "JoinRequest", "UnlockRequest"]


class InitRequest(Struct):
    listen_addr: str = "0.0.0.0:2377"
    advertise_addr: str = ""
    data_path_addr: str = ""
    data_path_port: UInt32 = 0
    force_new_cluster: bool = False
    spec: ClusterSpec = msgspec.field(default_factory=ClusterSpec)
    auto_lock_managers: bool = False
    availability: str = ""
    default_addr_pool: list[str] | None = None
    subnet_size: UInt32 = 0


class JoinRequest(Struct):
    listen_addr: str = "0.0.0.0:2377"
    advertise_addr: str = ""
    data_path_addr: str = ""
    remote_addrs: list[str] = msgspec.field(default_factory=list)
    join_token: str = ""
    availability: str = ""


class UnlockRequest(Struct):
    unlock_key: str = ""
