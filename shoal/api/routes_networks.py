"""/networks: the node's local networks (shoal.net.bridges: the predefined ``bridge``, ``host``
and ``none``, user bridge networks) beside the swarm's overlays (the managers' store), as
dockerd serves both on a swarm node (moby ``api/server/router/network``, ``daemon/network.go``,
``daemon/prune.go``).

A create with driver ``bridge`` (the default, as dockerd's) stays on this node; ``overlay``
goes to the managers. Any node answers for its local networks, in a swarm or not. A swarm
node also lists ``docker_gwbridge`` as dockerd does: here the gateway bridge the NetworkAgent
makes (``shoal_gwbridge``), shown read-only. ``/networks/{id}/connect|disconnect`` are the
containers' routes (they call shoal.exec.localnet.LocalNetworks).
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from ipaddress import IPv4Network
from typing import Any, Protocol, runtime_checkable

from aiohttp import web

from shoal.api.common import engine, param, read, reply, store
from shoal.api.params import Filters, filters, label_match
from shoal.api.render import network_json
from shoal.api.server import Router
from shoal.errors import Conflict, InvalidArgument, NotFound, PermissionDenied, ShoalError
from shoal.exec.localnet import Endpoint
from shoal.manager.controlapi.network import create_network, remove_network
from shoal.model.objects import Network
from shoal.model.specs import NetworkSpec
from shoal.net import links
from shoal.net.bridgeconf import BridgeNet
from shoal.net.bridges import LocalBridges, static_id

__all__ = ["register"]

_FILTERS = {"dangling", "driver", "id", "label", "name", "scope", "type"}
_PRUNE_FILTERS = {"label", "label!", "until"}
_ZERO = "0001-01-01T00:00:00Z"
GWBRIDGE = "docker_gwbridge"
_OTHER_DRIVERS = ("macvlan", "ipvlan", "overlay2")


def _bridges(request: web.Request) -> LocalBridges:
    return engine(request).bridge_networks


def _base(name: str, net_id: str, driver: str, created: str = _ZERO) -> dict[str, Any]:
    return {"Name": name, "Id": net_id, "Created": created, "Scope": "local", "Driver": driver,
            "EnableIPv4": True, "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": {}, "Config": []}, "Internal": False,
            "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""},
            "ConfigOnly": False, "Containers": {}, "Options": {}, "Labels": {}}


def _bridge_json(lb: LocalBridges, net: BridgeNet) -> dict[str, Any]:
    out = _base(net.name, net.id, "bridge", net.created)
    cfg: dict[str, Any] = {"Subnet": net.subnet, "Gateway": net.gateway}
    if net.ip_range:
        cfg["IPRange"] = net.ip_range
    if net.aux:
        cfg["AuxiliaryAddresses"] = dict(net.aux)
    out["IPAM"]["Config"] = [cfg]
    out.update(Internal=net.internal, Attachable=net.attachable, Options=dict(net.options),
               Labels=dict(net.labels))
    prefix = IPv4Network(net.subnet).prefixlen
    out["Containers"] = {
        c.id: {"Name": c.name or c.hostname, "EndpointID": ep.endpoint_id,
               "MacAddress": links.mac_for(ep.ip), "IPv4Address": f"{ep.ip}/{prefix}",
               "IPv6Address": ""}
        for c, ep in lb.users(net.id)}
    return out


@runtime_checkable
class _OverlayUsers(Protocol):
    """What the daemon's standalone networks tell of swarm overlays (daemon/localnets.py)."""

    def overlay_users(self, network_id: str) -> list[tuple[str, str, Endpoint]]: ...

    def overlay_networks(self) -> list[Network]: ...


def _overlays(request: web.Request) -> _OverlayUsers | None:
    nets = getattr(engine(request), "local_networks", None)  # API test fakes may have none
    return nets if isinstance(nets, _OverlayUsers) else None


def _swarm_json(request: web.Request, net: Network) -> dict[str, Any]:
    """A swarm network with this node's standalone containers on it (dockerd's Containers
    are the node's own)."""
    out = network_json(net)
    users = _overlays(request)
    found = users.overlay_users(net.id) if users is not None else []
    if found:
        out["Containers"] = {
            cid: {"Name": name, "EndpointID": ep.endpoint_id, "MacAddress": ep.mac_address,
                  "IPv4Address": f"{ep.ip_address}/{ep.prefix_len}", "IPv6Address": ""}
            for cid, name, ep in found}
    return out


def _swarm(request: web.Request) -> list[Network]:
    """The swarm networks this node shows: all of them on a manager; on a worker, those its
    standalone containers use (as dockerd's)."""
    st = engine(request).store
    if st is not None:
        return sorted(st.view().all(Network), key=lambda n: n.spec.name)
    users = _overlays(request)
    return sorted(users.overlay_networks() if users is not None else [],
                  key=lambda n: n.spec.name)


def _local(request: web.Request) -> list[dict[str, Any]]:
    lb = _bridges(request)
    out = [_bridge_json(lb, n) for n in lb.networks()]
    for name, driver in (("host", "host"), ("none", "null")):
        entry = _base(name, static_id(name), driver)
        entry["Containers"] = {c.id: {"Name": c.hostname, "EndpointID": ep.endpoint_id,
                                      "MacAddress": "", "IPv4Address": "", "IPv6Address": ""}
                               for c, ep in lb.users(static_id(name))}
        out.append(entry)
    if engine(request).swarm_state().local_node_state == "active":
        gw = _base(GWBRIDGE, static_id(GWBRIDGE), "bridge")
        gw["Options"] = {"com.docker.network.bridge.name": "shoal_gwbridge",
                         "com.docker.network.bridge.enable_icc": "false",
                         "com.docker.network.bridge.enable_ip_masquerade": "true"}
        out.append(gw)
    return out


def _all(request: web.Request) -> list[dict[str, Any]]:
    return _local(request) + [_swarm_json(request, n) for n in _swarm(request)]


def _builtin(net: dict[str, Any]) -> bool:
    """Docker's ``type=builtin``: the predefined networks (no user network is named so)."""
    return net["Scope"] == "local" and net["Name"] in ("bridge", "host", "none", GWBRIDGE)


def _matches(net: dict[str, Any], f: Filters) -> bool:
    if "id" in f and not any(net["Id"].startswith(v) for v in f["id"]):
        return False
    if "name" in f and not any(v in net["Name"] for v in f["name"]):
        return False
    if "driver" in f and net["Driver"] not in f["driver"]:
        return False
    if "scope" in f and net["Scope"] not in f["scope"]:
        return False
    if "type" in f:
        for v in f["type"]:
            if v not in ("builtin", "custom"):
                raise InvalidArgument(f"invalid filter: 'type'='{v}'")
        if not any((v == "builtin") == _builtin(net) for v in f["type"]):
            return False
    if "dangling" in f:
        wanted = {v.lower() in ("1", "true") for v in f["dangling"]}
        if (not _builtin(net) and not net["Containers"]) not in wanted:
            return False
    return "label" not in f or label_match(net["Labels"], f["label"])


async def list_networks(request: web.Request) -> web.StreamResponse:
    f = filters(request, _FILTERS)
    return reply([n for n in _all(request) if _matches(n, f)])


async def inspect(request: web.Request) -> web.StreamResponse:
    ref = param(request, "id")
    scope = request.query.get("scope", "")
    if scope in ("", "local"):
        local = _local(request)
        for found in ([n for n in local if n["Name"] == ref], [n for n in local if n["Id"] == ref]):
            if found:
                return reply(found[0])
    st = engine(request).store
    if st is not None and scope in ("", "swarm"):
        try:
            return reply(_swarm_json(request, st.view().resolve(Network, ref, what="network")))
        except NotFound:
            if scope == "swarm":
                raise
    elif scope in ("", "swarm"):  # a worker: the overlays its containers use
        used = [n for n in _swarm(request) if ref in (n.id, n.spec.name)
                or (len(ref) >= 12 and n.id.startswith(ref))]
        if used:
            return reply(_swarm_json(request, used[0]))
    if scope in ("", "local"):
        prefixed = [n for n in _local(request) if n["Id"].startswith(ref)]
        if len(prefixed) == 1:
            return reply(prefixed[0])
    raise NotFound(f"network {ref} not found")


def _aux_addresses(body: bytes, spec: NetworkSpec) -> None:
    """The Engine API names them ``AuxiliaryAddresses`` (network.IPAMConfig's JSON tag); the
    model's field keeps the swarm encoding's name, so they are read here."""
    try:
        raw = json.loads(body or b"{}")
        configs = (raw.get("IPAM") or {}).get("Config") or []
    except (ValueError, AttributeError):
        return
    for cfg, given in zip(spec.subnets(), configs, strict=False):
        aux = given.get("AuxiliaryAddresses") if isinstance(given, dict) else None
        if isinstance(aux, dict) and aux:
            cfg.aux_address = {str(k): str(v) for k, v in aux.items()}


async def create(request: web.Request) -> web.StreamResponse:
    spec = await read(request, NetworkSpec)
    _aux_addresses(await request.read(), spec)
    driver = spec.driver or "bridge"
    if not spec.name:
        raise InvalidArgument("network name must not be empty")
    if spec.name in ("host", "none", GWBRIDGE) or \
            any(n.name == spec.name for n in _bridges(request).networks()):
        raise Conflict(f"network with name {spec.name} already exists")
    if driver == "overlay":
        net = await create_network(store(request), spec)
        return reply({"Id": net.id, "Warning": ""}, status=201)
    if driver in ("host", "null"):
        raise PermissionDenied(f'only one instance of "{driver}" network is allowed')
    if driver != "bridge":
        if driver in _OTHER_DRIVERS:
            raise InvalidArgument(f"network driver {driver!r} is not supported by Shoal: "
                                  "bridge and overlay only")
        raise NotFound(f'plugin "{driver}" not found')
    if spec.scope not in ("", "local"):
        raise InvalidArgument(f"a bridge network is node-local: --scope {spec.scope} is not "
                              "supported")
    st = engine(request).store
    if st is not None and any(n.spec.name == spec.name for n in st.view().all(Network)):
        raise Conflict(f"network with name {spec.name} already exists")
    bridge = await _bridges(request).create(spec)
    return reply({"Id": bridge.id, "Warning": ""}, status=201)


async def remove(request: web.Request) -> web.StreamResponse:
    ref = param(request, "id")
    for name in ("host", "none", GWBRIDGE):
        if ref in (name, static_id(name)):
            raise PermissionDenied(f"{name} is a pre-defined network and cannot be removed")
    try:
        net = _bridges(request).get(ref)
    except NotFound:
        if engine(request).store is None:
            raise
        await remove_network(store(request), ref)
        return web.Response(status=204)
    await _bridges(request).remove(net.id)
    return web.Response(status=204)


def _until(values: list[str]) -> float:
    """dockerd's ``until``: a Unix timestamp, an RFC 3339 time, or a duration before now."""
    value = values[-1]
    try:
        return float(value)
    except ValueError:
        pass
    units = {"s": 1, "m": 60, "h": 3600}
    if value and value[-1] in units:
        try:
            return time.time() - float(value[:-1]) * units[value[-1]]
        except ValueError:
            pass
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError as e:
        raise InvalidArgument(f"invalid filter 'until={value}'") from e


def _prunable(labels: dict[str, str], created: str, f: Filters) -> bool:
    if "label" in f and not label_match(labels, f["label"]):
        return False
    if any(label_match(labels, [v]) for v in f.get("label!", [])):
        return False
    if "until" in f:
        try:
            stamp = datetime.fromisoformat(created).timestamp()
        except ValueError:
            return True
        return stamp < _until(f["until"])
    return True


async def prune(request: web.Request) -> web.StreamResponse:
    """dockerd's: the local networks no container uses, and on a manager the swarm networks
    no service uses (ingress kept); each one refused is left, not an error."""
    f = filters(request, _PRUNE_FILTERS)
    lb = _bridges(request)
    deleted: list[str] = []
    for net in lb.networks():
        if net.predefined or lb.users(net.id) or not _prunable(net.labels, net.created, f):
            continue
        try:
            await lb.remove(net.id)
        except ShoalError:
            continue
        deleted.append(net.name)
    st = engine(request).store
    if st is not None:
        for swarm_net in st.view().all(Network):
            if swarm_net.spec.ingress or not _prunable(swarm_net.spec.labels or {},
                                                       str(swarm_net.created_at or ""), f):
                continue
            try:
                await remove_network(st, swarm_net.id)
            except ShoalError:
                continue
            deleted.append(swarm_net.spec.name)
    return reply({"NetworksDeleted": deleted or None})


def register(router: Router) -> None:
    router.add("GET", "/networks", list_networks)
    router.add("POST", "/networks/create", create)
    router.add("POST", "/networks/prune", prune)
    router.add("GET", "/networks/{id}", inspect)
    router.add("DELETE", "/networks/{id}", remove)
