"""A standalone container's networks (``docker run --network``), through the node's
LocalNetworks (shoal/exec/localnet.py): checked at create, attached at each start (the
namespace's path written into config.json, resolv.conf naming 127.0.0.11 when the sandbox has
the embedded DNS), released when it stops or is removed. ``none`` is runc's own namespace with
loopback only, ``host`` the daemon's. Called by standalone.py."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from shoal.errors import InvalidArgument
from shoal.exec.localnet import EndpointRequest, LocalNetworks, PortBinding, Sandbox
from shoal.exec.runc import record
from shoal.exec.runc.runspec import RunSpec
from shoal.fsutil import write_atomic

__all__ = ["attach_networks", "check_networks", "release", "set_netns"]


def check_networks(spec: RunSpec, networks: LocalNetworks | None) -> None:
    """What ``create`` refuses: dockerd's conflicts, and any network but none and host on a
    node without LocalNetworks (never silently loopback)."""
    primary = spec.endpoints[0].network if spec.endpoints else "bridge"
    if spec.network_mode in ("none", "host"):
        if len(spec.endpoints) > 1:
            raise InvalidArgument(f"container cannot be connected to multiple networks with "
                                  f"one of the networks in private ({spec.network_mode}) "
                                  "mode")
        if spec.ports and spec.network_mode == "host":
            spec.ports.clear()  # dockerd: published ports are discarded in host mode
        elif spec.ports:
            raise InvalidArgument("conflicting options: port publishing and the container "
                                  "type network mode")
        return
    if spec.network_mode.startswith("container:"):
        raise InvalidArgument(f"--network {spec.network_mode}: sharing another container's "
                              "network namespace is not supported by this node")
    if networks is None:
        raise InvalidArgument(f'network "{primary}": this node has no local networks; only '
                              '"none" and "host" can be used (--network none)')


def set_netns(directory: Path, path: str | None) -> None:
    """The network namespace config.json joins (None: a new one)."""
    config_path = directory / "config.json"
    oci = json.loads(config_path.read_text())
    for ns in oci["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns.pop("path", None)
            if path:
                ns["path"] = path
    write_atomic(config_path, json.dumps(oci))


async def attach_networks(directory: Path, info: dict[str, Any],
                          networks: LocalNetworks | None) -> Sandbox | None:
    """Before a start: the container's namespace, per its run.json."""
    mode = str(info.get("network_mode", "none"))
    if mode == "none":
        set_netns(directory, None)
        return None
    if mode == "host":
        set_netns(directory, f"/proc/{os.getpid()}/ns/net")
        return None
    if networks is None:
        raise InvalidArgument(f'network "{mode}": this node has no local networks')
    requests = [EndpointRequest(e["network"], tuple(e.get("aliases") or ()),
                                e.get("ipv4_address", "")) for e in info["endpoints"]]
    ports = [PortBinding(**p) for p in info.get("ports") or []]
    cid = directory.name
    rec = record.read_record(directory) or {}
    hostname = str((rec.get("Config") or {}).get("Hostname") or cid[:12])
    sandbox = await networks.attach(cid, requests, hostname=hostname, ports=ports)
    set_netns(directory, sandbox.path or f"/proc/{os.getpid()}/ns/net")
    if sandbox.embedded_dns:
        write_atomic(directory / "resolv.conf", "nameserver 127.0.0.11\noptions ndots:0\n")
    return sandbox


async def release(cid: str, info: dict[str, Any], networks: LocalNetworks | None) -> None:
    if networks is not None and info.get("network_mode") not in (None, "none", "host"):
        await networks.release(cid)
