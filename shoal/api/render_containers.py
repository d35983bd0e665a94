"""A container as ``docker inspect`` and ``docker ps`` show it (moby api/types/container
InspectResponse and Summary), from its record (shoal.exec.runc.record) and its state; and the
filters of ``GET /containers/json`` as dockerd applies them (moby daemon/list.go)."""

from __future__ import annotations

import re
import time
from typing import Any

from shoal.api.params import Filters, label_match
from shoal.errors import InvalidArgument
from shoal.exec.localnet import Endpoint, Sandbox
from shoal.exec.runc.containers import ContainerState
from shoal.exec.runc.logfile import parse_time

__all__ = ["LIST_FILTERS", "inspect", "listed", "summary"]

LIST_FILTERS = {"ancestor", "exited", "health", "id", "is-task", "label", "name", "network",
                "status"}
_STATUSES = {"created", "restarting", "running", "removing", "paused", "exited", "dead"}
_HEALTH = {"starting", "healthy", "unhealthy", "none"}


def _mounts(record: dict[str, Any]) -> list[dict[str, Any]]:
    return list(record.get("Mounts") or [])


def _endpoint(ep: Endpoint) -> dict[str, Any]:
    """EndpointSettings, as dockerd shows a container's place on one network."""
    return {"IPAMConfig": None, "Links": None, "Aliases": list(ep.aliases) or None,
            "MacAddress": ep.mac_address, "DriverOpts": None, "GwPriority": 0,
            "NetworkID": ep.network_id, "EndpointID": ep.endpoint_id, "Gateway": ep.gateway,
            "IPAddress": ep.ip_address, "IPPrefixLen": ep.prefix_len, "IPv6Gateway": "",
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "DNSNames": list(ep.dns_names) or None}


def networks_of(record: dict[str, Any], sandbox: Sandbox | None) -> dict[str, Any]:
    """NetworkSettings.Networks: a task's attachments (in its record), or what a standalone
    container's sandbox holds now (its endpoints come and go with connect and disconnect)."""
    if record.get("Networks") or sandbox is None:
        return dict(record.get("Networks") or {})
    return {ep.network_name: _endpoint(ep) for ep in sandbox.endpoints}


def ports_of(sandbox: Sandbox | None) -> dict[str, Any]:
    """NetworkSettings.Ports: the published ports as bound (host ports chosen)."""
    out: dict[str, Any] = {}
    for p in sandbox.ports if sandbox is not None else ():
        out.setdefault(f"{p.container_port}/{p.protocol}", []).append(
            {"HostIp": p.host_ip or "0.0.0.0", "HostPort": str(p.host_port)})
    return out


def inspect(cid: str, record: dict[str, Any], st: ContainerState,
            sandbox: Sandbox | None = None) -> dict[str, Any]:
    networks = networks_of(record, sandbox)
    bridge = networks.get("bridge") or {}  # dockerd's top-level fields: the default bridge's
    return {
        "Id": cid, "Created": record.get("Created", ""), "Path": record.get("Path", ""),
        "Args": record.get("Args") or [], "State": st.state(), "Image": record.get("Image", ""),
        "ResolvConfPath": str(st.dir / "resolv.conf"), "HostnamePath": str(st.dir / "hostname"),
        "HostsPath": str(st.dir / "hosts"), "LogPath": str(st.dir / f"{cid}-json.log"),
        "Name": record.get("Name", ""), "RestartCount": int(record.get("RestartCount", 0)),
        "Driver": "overlay2", "Platform": "linux", "MountLabel": "", "ProcessLabel": "",
        "AppArmorProfile": "", "ExecIDs": None, "HostConfig": record.get("HostConfig") or {},
        "GraphDriver": {"Name": "overlay2", "Data": {"MergedDir": str(st.dir / "rootfs"),
                                                     "UpperDir": str(st.dir / "upper"),
                                                     "WorkDir": str(st.dir / "work")}},
        "Mounts": _mounts(record), "Config": record.get("Config") or {},
        "NetworkSettings": {"SandboxID": "", "SandboxKey": sandbox.path or "" if sandbox else "",
                            "Ports": ports_of(sandbox), "Networks": networks,
                            "IPAddress": bridge.get("IPAddress", ""),
                            "IPPrefixLen": bridge.get("IPPrefixLen", 0),
                            "Gateway": bridge.get("Gateway", ""),
                            "MacAddress": bridge.get("MacAddress", "")},
    }


def summary(cid: str, record: dict[str, Any], st: ContainerState,
            sandbox: Sandbox | None = None) -> dict[str, Any]:
    config = record.get("Config") or {}
    command = " ".join([str(record.get("Path", "")), *[str(a) for a in record.get("Args") or []]])
    created = record.get("Created", "")
    try:
        created_s = parse_time(created) // 1_000_000_000 if created else 0
    except ValueError:
        created_s = 0
    host = record.get("HostConfig") or {}
    return {
        "Id": cid, "Names": [record.get("Name", "")], "Image": config.get("Image", ""),
        "ImageID": record.get("Image", ""), "Command": command.strip(), "Created": created_s,
        "Ports": [{"IP": p.host_ip or "0.0.0.0", "PrivatePort": p.container_port,
                   "PublicPort": p.host_port, "Type": p.protocol}
                  for p in (sandbox.ports if sandbox is not None else ())],
        "Labels": config.get("Labels") or {}, "State": st.status,
        "Status": st.status_text(time.time()),
        "HostConfig": {"NetworkMode": host.get("NetworkMode", "default")},
        "NetworkSettings": {"Networks": networks_of(record, sandbox)},
        "Mounts": _mounts(record),
    }


def _match(value: str, patterns: list[str]) -> bool:
    for p in patterns:
        if p == value:
            return True
        try:
            if re.search(p, value):
                return True
        except re.error:
            continue
    return False


def check_filters(f: Filters) -> None:
    for s in f.get("status", []):
        if s not in _STATUSES:
            raise InvalidArgument(f"invalid filter 'status={s}'")
    for h in f.get("health", []):
        if h not in _HEALTH:
            raise InvalidArgument(f"Unrecognized filter value for health: {h}")
    for v in f.get("is-task", []):
        if v not in ("true", "false", "1", "0"):
            raise InvalidArgument(f"invalid filter 'is-task={v}'")


def listed(cid: str, record: dict[str, Any], st: ContainerState, f: Filters) -> bool:
    config = record.get("Config") or {}
    labels = config.get("Labels") or {}
    name = str(record.get("Name", "")).lstrip("/")
    if "id" in f and not any(cid.startswith(v) for v in f["id"]):
        return False
    if "name" in f and not _match(name, f["name"]) and not _match("/" + name, f["name"]):
        return False
    if "label" in f and not label_match(labels, f["label"]):
        return False
    if "status" in f and st.status not in f["status"]:
        return False
    if "exited" in f and (st.status != "exited" or str(st.exit_code) not in f["exited"]):
        return False
    if "is-task" in f:
        is_task = "com.docker.swarm.task" in labels
        if is_task != (f["is-task"][0] in ("true", "1")):
            return False
    if "health" in f:
        h = st.health()
        if (h["Status"] if h else "none") not in f["health"]:
            return False
    if "network" in f:
        nets = record.get("Networks") or {}
        ids = {str(v.get("NetworkID", "")) for v in nets.values()}
        if not any(n in nets or any(i.startswith(n) for i in ids) for n in f["network"]):
            return False
    if "ancestor" in f:
        image = str(config.get("Image", ""))
        bare = image.split("@", 1)[0]
        if not any(a in (image, bare, record.get("Image", "")) or
                   bare == f"{a}:latest" or str(record.get("Image", "")).startswith(
                       a if a.startswith("sha256:") else "sha256:" + a)
                   for a in f["ancestor"]):
            return False
    return True
