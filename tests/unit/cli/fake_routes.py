"""Endpoint handlers of the fake daemon (see fake_daemon.py)."""

from __future__ import annotations

import base64
import copy
import json
import re
from typing import Any

from .fake_daemon import STATES, T0, FakeDaemon, _id

Reply = tuple[int, Any]


def _filters(query: dict[str, str]) -> dict[str, list[str]]:
    raw = json.loads(query.get("filters") or "{}")
    return {k: (list(v) if isinstance(v, (list, dict)) else [v]) for k, v in raw.items()}


def _labelled(labels: dict[str, str] | None, wanted: list[str]) -> bool:
    """The ``label`` filter: every ``key`` or ``key=value`` given matches."""
    labels = labels or {}
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def _public(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in copy.deepcopy(item).items() if not k.startswith("_")}


def route(d: FakeDaemon, method: str, path: str, query: dict[str, str], body: Any) -> Reply:
    parts = path.strip("/").split("/")
    head = parts[0]
    if head == "version":
        return 200, {
            "Version": "28.2.2",
            "ApiVersion": "1.50",
            "MinAPIVersion": "1.24",
            "GitCommit": "abc",
            "GoVersion": "go1.24.3",
            "Os": "linux",
            "Arch": "amd64",
            "BuildTime": "2025-05-30T12:07:26.000000000+00:00",
        }
    if head == "info":
        return 200, _info(d)
    if head == "swarm":
        return _swarm(d, method, parts[1:], query, body)
    if not d.swarm_active and head in ("nodes", "services", "tasks"):
        raise PermissionError(
            'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
            "to connect this node to swarm and try again."
        )
    if head == "nodes":
        return _nodes(d, method, parts[1:], query, body)
    if head == "services":
        return _services(d, method, parts[1:], query, body)
    if head == "tasks":
        return _tasks(d, method, parts[1:], query)
    if head == "networks":
        return _networks(d, method, parts[1:], query, body)
    if head in ("secrets", "configs"):
        return _stored(d, head[:-1], method, parts[1:], query, body)
    if head == "distribution":
        if d.distribution_fails:
            raise LookupError("manifest unknown")
        return 200, {
            "Descriptor": {
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": d.digest,
                "size": 1000,
            },
            "Platforms": [{"architecture": "amd64", "os": "linux"}],
        }
    raise LookupError(f"page not found: {path}")


def _info(d: FakeDaemon) -> dict[str, Any]:
    me = d.nodes[0] if d.nodes and d.swarm_active else None
    swarm: dict[str, Any] = {
        "NodeID": "",
        "NodeAddr": "",
        "LocalNodeState": "inactive",
        "ControlAvailable": False,
        "Error": "",
        "RemoteManagers": None,
    }
    if d.locked:
        swarm["LocalNodeState"] = "locked"
    elif me is not None:
        swarm.update(
            {
                "NodeID": me["ID"],
                "NodeAddr": "10.0.0.1",
                "LocalNodeState": "active",
                "ControlAvailable": me["Spec"]["Role"] == "manager",
                "Nodes": len(d.nodes),
                "Managers": sum(1 for n in d.nodes if n["Spec"]["Role"] == "manager"),
                "RemoteManagers": [{"NodeID": me["ID"], "Addr": "10.0.0.1:2377"}],
                "Cluster": {
                    "ID": d.swarm["ID"],
                    "Spec": d.swarm["Spec"],
                    "DefaultAddrPool": ["10.0.0.0/8"],
                    "SubnetSize": 24,
                    "DataPathPort": 4789,
                    "RootRotationInProgress": False,
                },
            }
        )
    return {
        "ID": "ENGINEID",
        "Name": "manager-1",
        "ServerVersion": "28.2.2",
        "OperatingSystem": "Linux",
        "OSType": "linux",
        "Architecture": "x86_64",
        "NCPU": 4,
        "MemTotal": 8589934592,
        "Swarm": swarm,
    }


def _swarm(d: FakeDaemon, method: str, rest: list[str], query: dict[str, str], body: Any) -> Reply:
    action = rest[0] if rest else ""
    if method == "POST" and action == "init":
        if d.swarm_active:
            raise PermissionError(
                'This node is already part of a swarm. Use "docker swarm leave" to leave this '
                "swarm and join another one."
            )
        d.swarm_active = True
        node = d.add_node("manager-1", role="manager", leader=True)
        addr = body.get("AdvertiseAddr") or "10.0.0.1"
        node["ManagerStatus"]["Addr"] = addr if ":" in addr else addr + ":2377"
        if body.get("AutoLockManagers"):
            d.unlock_key = "SWMKEY-1-secret"
        return 200, node["ID"]
    if method == "POST" and action == "join":
        d.swarm_active = True
        d.add_node("worker-1")
        return 200, None
    if method == "POST" and action == "leave":
        if not d.swarm_active:
            raise PermissionError("This node is not part of a swarm")
        d.swarm_active = False
        d.nodes.clear()
        return 200, None
    if not d.swarm_active:
        raise PermissionError(
            'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" '
            "to connect this node to swarm and try again."
        )
    if method == "POST" and action == "unlock":
        if not d.locked:
            return 409, {"message": "swarm is not locked"}
        if body.get("UnlockKey") != d.unlock_key:
            return 401, {"message": "swarm could not be unlocked: invalid key provided"}
        d.locked = False
        return 200, None
    if method == "GET" and action == "unlockkey":
        return 200, {"UnlockKey": d.unlock_key}
    if method == "POST" and action == "update":
        if query.get("version") != str(d.swarm["Version"]["Index"]):
            return 500, {"message": "update out of sequence"}
        d.swarm["Spec"] = body
        d.swarm["Version"] = {"Index": d.next_index()}
        if query.get("rotateWorkerToken") == "true":
            d.swarm["JoinTokens"]["Worker"] += "-rotated"
        if query.get("rotateManagerToken") == "true":
            d.swarm["JoinTokens"]["Manager"] += "-rotated"
        if not (body.get("EncryptionConfig") or {}).get("AutoLockManagers"):
            d.unlock_key = ""
        elif not d.unlock_key:
            d.unlock_key = "SWMKEY-1-secret"
        elif query.get("rotateManagerUnlockKey") == "true":
            d.unlock_key += "-rotated"
        return 200, None
    return 200, copy.deepcopy(d.swarm)


def _nodes(d: FakeDaemon, method: str, rest: list[str], query: dict[str, str], body: Any) -> Reply:
    if not rest:
        filters = _filters(query)
        nodes = [
            n
            for n in d.nodes
            if all(any(n["ID"].startswith(v) for v in filters[k]) for k in filters if k == "id")
            and all(n["Spec"]["Role"] in filters[k] for k in filters if k == "role")
        ]
        return 200, [_public(n) for n in nodes]
    node = d.find("node", rest[0])
    if method == "DELETE":
        if node["Spec"]["Role"] == "manager" and query.get("force") != "1":
            raise ValueError(
                f"rpc error: code = FailedPrecondition desc = node {node['ID']} is a cluster manager "
                "and is a member of the raft cluster. It must be demoted to worker before removal"
            )
        d.nodes.remove(node)
        return 200, None
    if method == "POST" and rest[1:] == ["update"]:
        if query.get("version") != str(node["Version"]["Index"]):
            return 500, {"message": "rpc error: code = Unknown desc = update out of sequence"}
        node["Spec"] = body
        node["Version"] = {"Index": d.next_index()}
        return 200, None
    return 200, _public(node)


def _mode_defaults(spec: dict[str, Any]) -> None:
    mode = spec.setdefault("Mode", {})
    if "Replicated" in mode:
        mode["Replicated"].setdefault("Replicas", 1)
    spec["TaskTemplate"].setdefault("ForceUpdate", 0)
    spec["TaskTemplate"]["Runtime"] = "container"
    spec.setdefault("Labels", {})


def _desired(d: FakeDaemon, service: dict[str, Any]) -> list[tuple[int, str]]:
    mode = service["Spec"]["Mode"]
    if "Replicated" in mode:
        return [(slot, "") for slot in range(1, mode["Replicated"]["Replicas"] + 1)]
    if "Global" in mode:
        return [(0, n["ID"]) for n in d.nodes if n["Status"]["State"] != "down"]
    return []


def _spawn(d: FakeDaemon, service: dict[str, Any], *, template_changed: bool) -> None:
    if template_changed:
        service["_template"] = d.next_index()
    wanted = _desired(d, service)
    live = [
        t for t in d.tasks if t["ServiceID"] == service["ID"] and t["DesiredState"] == "running"
    ]
    for task in live:
        key = (task["Slot"], task["NodeID"] if not task["Slot"] else "")
        if template_changed or key not in wanted:
            task["DesiredState"] = "shutdown"
            task["Status"]["State"] = "shutdown"
    for slot, node_id in wanted:
        if any(
            t["Slot"] == slot
            and (slot or t["NodeID"] == node_id)
            and t["DesiredState"] == "running"
            for t in live
            if not template_changed
        ):
            continue
        d.counter += 1
        d.tasks.append(
            {
                "ID": _id("task", d.counter),
                "Version": {"Index": d.next_index()},
                "CreatedAt": f"2024-05-01T10:00:{d.counter % 60:02d}.000000000Z",
                "UpdatedAt": T0,
                "Labels": {},
                "Spec": copy.deepcopy(service["Spec"]["TaskTemplate"]),
                "ServiceID": service["ID"],
                "Slot": slot,
                "NodeID": node_id or _ready(d)[(slot - 1) % len(_ready(d))]["ID"],
                "Status": {"Timestamp": T0, "State": "new", "Message": "created"},
                "DesiredState": "running",
                "_template": service["_template"],
            }
        )


def _ready(d: FakeDaemon) -> list[dict[str, Any]]:
    return [n for n in d.nodes if n["Status"]["State"] == "ready"]


def _services(
    d: FakeDaemon, method: str, rest: list[str], query: dict[str, str], body: Any
) -> Reply:
    if method == "POST" and rest == ["create"]:
        name = body.get("Name") or f"svc{len(d.services)}"
        if any(s["Spec"]["Name"] == name for s in d.services):
            return 409, {
                "message": f"rpc error: code = AlreadyExists desc = name conflicts with an existing "
                f"object: service {name} already exists"
            }
        spec = copy.deepcopy(body)
        spec["Name"] = name
        _mode_defaults(spec)
        d.counter += 1
        service = {
            "ID": _id("svc" + name, d.counter),
            "Version": {"Index": d.next_index()},
            "CreatedAt": T0,
            "UpdatedAt": T0,
            "Spec": spec,
            "Endpoint": {
                "Spec": spec.get("EndpointSpec") or {"Mode": "vip"},
                "Ports": [
                    dict(p, PublishedPort=p.get("PublishedPort") or 30000)
                    for p in (spec.get("EndpointSpec") or {}).get("Ports") or []
                ],
            },
        }
        d.services.append(service)
        _spawn(d, service, template_changed=True)
        return 201, {"ID": service["ID"], "Warnings": None}
    if not rest:
        filters = _filters(query)
        out = []
        for svc in d.services:
            if "id" in filters and not any(svc["ID"].startswith(v) for v in filters["id"]):
                continue
            if "name" in filters and not any(
                svc["Spec"]["Name"].startswith(v) for v in filters["name"]
            ):
                continue
            if "label" in filters and not _labelled(svc["Spec"].get("Labels"), filters["label"]):
                continue
            item = _public(svc)
            if query.get("status") in ("1", "true", "True"):
                tasks = [t for t in d.tasks if t["ServiceID"] == svc["ID"]]
                desired = len(_desired(d, svc))
                item["ServiceStatus"] = {
                    "RunningTasks": sum(1 for t in tasks if t["Status"]["State"] == "running"),
                    "DesiredTasks": desired,
                    "CompletedTasks": 0,
                }
            out.append(item)
        return 200, out
    service = d.find("service", rest[0])
    if method == "DELETE":
        d.services.remove(service)
        d.tasks = [t for t in d.tasks if t["ServiceID"] != service["ID"]]
        return 200, None
    if method == "POST" and rest[1:] == ["update"]:
        if query.get("version") != str(service["Version"]["Index"]):
            return 500, {"message": "rpc error: code = Unknown desc = update out of sequence"}
        if query.get("rollback") == "previous":
            if "PreviousSpec" not in service:
                raise ValueError(
                    f"rpc error: code = FailedPrecondition desc = service {service['ID']} does not "
                    "have a previous spec"
                )
            body = service["PreviousSpec"]
        old = service["Spec"]
        spec = copy.deepcopy(body)
        _mode_defaults(spec)
        service["PreviousSpec"], service["Spec"] = old, spec
        service["Version"] = {"Index": d.next_index()}
        _spawn(d, service, template_changed=spec["TaskTemplate"] != old["TaskTemplate"])
        return 200, {"Warnings": None}
    return 200, _public(service)


def _tasks(d: FakeDaemon, method: str, rest: list[str], query: dict[str, str]) -> Reply:
    if rest:
        return 200, _public(d.find("task", rest[0]))
    filters = _filters(query)
    out = []
    for task in d.tasks:
        service = next((s for s in d.services if s["ID"] == task["ServiceID"]), None)
        if "service" in filters and task["ServiceID"] not in filters["service"]:
            continue
        if "node" in filters and task["NodeID"] not in filters["node"]:
            continue
        if "label" in filters and (
            service is None or not _labelled(service["Spec"].get("Labels"), filters["label"])
        ):
            continue
        if "desired-state" in filters and task["DesiredState"] not in filters["desired-state"]:
            continue
        if "_up-to-date" in filters and (
            service is None or task["_template"] != service["_template"]
        ):
            continue
        out.append(task)
    if d.auto_advance:
        for task in out:
            state = task["Status"]["State"]
            if task["DesiredState"] == "running" and state in STATES[:-1]:
                task["Status"]["State"] = STATES[STATES.index(state) + 1]
    return 200, [_public(t) for t in out]


def _networks(
    d: FakeDaemon, method: str, rest: list[str], query: dict[str, str], body: Any
) -> Reply:
    if method == "POST" and rest == ["create"]:
        if any(n["Name"] == body["Name"] for n in d.networks):
            return 409, {"message": f"network with name {body['Name']} already exists"}
        net = d.add_network(
            body["Name"],
            driver=body.get("Driver") or "bridge",
            scope="swarm" if body.get("Driver") == "overlay" else "local",
        )
        net["Labels"] = body.get("Labels") or {}
        net["Options"] = body.get("Options") or {}
        net["Attachable"] = bool(body.get("Attachable"))
        if body.get("IPAM"):
            net["IPAM"] = body["IPAM"]
        return 201, {"Id": net["Id"], "Warning": ""}
    if not rest:
        filters = _filters(query)
        nets = [
            n
            for n in d.networks
            if ("name" not in filters or any(v in n["Name"] for v in filters["name"]))
            and ("label" not in filters or _labelled(n.get("Labels"), filters["label"]))
        ]
        return 200, copy.deepcopy(nets)
    net = d.find_network(rest[0], query.get("scope", ""))
    if method == "DELETE":
        d.networks.remove(net)
        return 204, None
    return 200, copy.deepcopy(net)


_NAME = re.compile(r"^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$")


def _find_stored(items: list[dict[str, Any]], kind: str, ref: str) -> dict[str, Any]:
    """moby's lookup: full ID, then exact name, then ID prefix."""
    for item in items:
        if item["ID"] == ref:
            return item
    for item in items:
        if item["Spec"]["Name"] == ref:
            return item
    matches = [item for item in items if item["ID"].startswith(ref)]
    if len(matches) > 1:
        raise ValueError(f"{kind} {ref} is ambiguous ({len(matches)} matches found)")
    if not matches:
        raise LookupError(f"{kind} {ref} not found")
    return matches[0]


def _stored_matches(item: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    """swarmkit's ListSecrets/ListConfigs: names and prefixes OR'ed, labels AND'ed."""
    spec = item["Spec"]
    wanted = [
        *(item["ID"].startswith(v) for v in filters.get("id", [])),
        *(spec["Name"].startswith(v) for v in filters.get("name", [])),
        *(spec["Name"] == v for v in filters.get("names", [])),
    ]
    if wanted and not any(wanted):
        return False
    for label in filters.get("label", []):
        key, sep, value = label.partition("=")
        if key not in spec["Labels"] or (sep and spec["Labels"][key] != value):
            return False
    return True


def _stored(
    d: FakeDaemon, kind: str, method: str, rest: list[str], query: dict[str, str], body: Any
) -> Reply:
    # A secret's data lives in "_data" only (`_public` drops it): the API never returns it.
    items = d.secrets if kind == "secret" else d.configs
    if method == "POST" and rest == ["create"]:
        name = body.get("Name", "")
        if not _NAME.match(name) or len(name) > 64:
            raise ValueError(
                "rpc error: code = InvalidArgument desc = invalid name, only 64 [a-zA-Z0-9-_.] "
                "characters allowed, and the start and end character must be [a-zA-Z0-9]"
            )
        if any(item["Spec"]["Name"] == name for item in items):
            return 409, {
                "message": f"rpc error: code = AlreadyExists desc = {kind} {name} already exists"
            }
        data = base64.b64decode(body.get("Data") or "")
        limit = 500 * 1024 if kind == "secret" else 1000 * 1024
        if not body.get("Driver") and not 0 < len(data) < limit:
            raise ValueError(
                f"rpc error: code = InvalidArgument desc = {kind} data must be larger than 0 and "
                f"less than {limit} bytes"
            )
        item = d.add_stored(kind, name, data, body.get("Labels"))
        for key in ("Driver", "Templating"):
            if body.get(key):
                item["Spec"][key] = body[key]
        return 201, {"ID": item["ID"]}
    if not rest:
        filters = _filters(query)
        allowed = {"id", "name", "label"} | ({"names"} if kind == "secret" else set())
        for key in filters:
            if key not in allowed:
                raise ValueError(f"invalid filter '{key}'")
        return 200, [_public(item) for item in items if _stored_matches(item, filters)]
    item = _find_stored(items, kind, rest[0])
    if method == "DELETE":
        title = kind.capitalize()

        def refs(service: dict[str, Any]) -> list[dict[str, Any]]:
            container = service["Spec"]["TaskTemplate"].get("ContainerSpec") or {}
            return list(container.get(f"{title}s") or [])

        users = sorted(
            s["Spec"]["Name"]
            for s in d.services
            if any(ref.get(f"{title}ID") == item["ID"] for ref in refs(s))
        )
        if users:
            plural = "service" if len(users) == 1 else "services"
            raise ValueError(
                f"rpc error: code = InvalidArgument desc = {kind} '{item['Spec']['Name']}' is in "
                f"use by the following {plural}: {', '.join(users)}"
            )
        items.remove(item)
        return 204, None
    if method == "POST" and rest[1:] == ["update"]:
        if query.get("version") != str(item["Version"]["Index"]):
            return 500, {"message": "rpc error: code = Unknown desc = update out of sequence"}
        if body.get("Name") != item["Spec"]["Name"] or (
            body.get("Data") and body["Data"] != item["_data"]
        ):
            raise ValueError(
                "rpc error: code = InvalidArgument desc = only updates to Labels are allowed"
            )
        item["Spec"]["Labels"] = body.get("Labels") or {}
        item["Version"] = {"Index": d.next_index()}
        return 200, None
    return 200, _public(item)
