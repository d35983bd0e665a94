"""An in-memory stand-in for shoald's Engine API, for CLI unit tests (httpx.MockTransport).

It answers like the daemon described in docs/reference engine-api.md: version prefixes,
``{"message": ...}`` errors with ``application/json``, ID/name/prefix lookups, filters, and
tasks that advance one state per ``GET /tasks`` so progress loops converge.  Every request is
recorded in `requests` as (method, path without version, query dict, JSON body).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import parse_qsl, unquote

import httpx

STATES = ["new", "pending", "assigned", "accepted", "preparing", "starting", "running"]
T0 = "2024-05-01T10:00:00.000000000Z"


def _id(prefix: str, n: int) -> str:
    return (prefix + str(n)).ljust(25, "0")[:25]


class FakeDaemon:
    def __init__(self, *, swarm: bool = True, api_version: str = "1.50") -> None:
        self.api_version = api_version
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.index = 10
        self.counter = 0
        self.auto_advance = True
        self.digest = "sha256:" + "ab" * 32
        self.distribution_fails = False
        self.swarm_active = swarm
        self.nodes: list[dict[str, Any]] = []
        self.services: list[dict[str, Any]] = []
        self.tasks: list[dict[str, Any]] = []
        self.networks: list[dict[str, Any]] = []
        self.secrets: list[dict[str, Any]] = []
        self.configs: list[dict[str, Any]] = []
        self.unlock_key = ""
        self.locked = False  # an autolocked manager after a restart
        self.swarm: dict[str, Any] = {
            "ID": "clusterid0000000000000000a",
            "Version": {"Index": 1},
            "Spec": {
                "Name": "default",
                "Labels": {},
                "Orchestration": {"TaskHistoryRetentionLimit": 5},
                "Raft": {"SnapshotInterval": 10000, "ElectionTick": 10, "HeartbeatTick": 1},
                "Dispatcher": {"HeartbeatPeriod": 5000000000},
                "CAConfig": {"NodeCertExpiry": 7776000000000000},
                "TaskDefaults": {},
                "EncryptionConfig": {"AutoLockManagers": False},
            },
            "JoinTokens": {"Worker": "SWMTKN-1-worker", "Manager": "SWMTKN-1-manager"},
        }
        if swarm:
            self.add_node("manager-1", role="manager", leader=True)

    # -- fixtures -------------------------------------------------------------------------

    def next_index(self) -> int:
        self.index += 1
        return self.index

    def add_node(
        self,
        hostname: str,
        *,
        role: str = "worker",
        leader: bool = False,
        state: str = "ready",
        ident: str | None = None,
    ) -> dict[str, Any]:
        node = {
            "ID": ident or _id(hostname.replace("-", ""), len(self.nodes)),
            "Version": {"Index": self.next_index()},
            "CreatedAt": T0,
            "UpdatedAt": T0,
            "Spec": {"Labels": {}, "Role": role, "Availability": "active"},
            "Description": {
                "Hostname": hostname,
                "Platform": {"Architecture": "x86_64", "OS": "linux"},
                "Resources": {"NanoCPUs": 4000000000, "MemoryBytes": 8589934592},
                "Engine": {"EngineVersion": "28.2.2"},
            },
            "Status": {"State": state, "Addr": f"10.0.0.{len(self.nodes) + 1}"},
        }
        if role == "manager":
            node["ManagerStatus"] = {
                "Leader": leader,
                "Reachability": "reachable",
                "Addr": f"10.0.0.{len(self.nodes) + 1}:2377",
            }
        self.nodes.append(node)
        return node

    def add_network(
        self, name: str, *, driver: str = "overlay", scope: str = "swarm", ingress: bool = False
    ) -> dict[str, Any]:
        net = {
            "Name": name,
            "Id": _id("net" + name, len(self.networks)),
            "Created": T0,
            "Scope": scope,
            "Driver": driver,
            "EnableIPv4": True,
            "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": None, "Config": []},
            "Internal": False,
            "Attachable": False,
            "Ingress": ingress,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": False,
            "Containers": None,
            "Options": {},
            "Labels": {},
        }
        self.networks.append(net)
        return net

    def add_stored(
        self, kind: str, name: str, data: bytes = b"x", labels: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """A secret or config (`kind`) as the API shows it; a secret's Data stays hidden."""
        items = self.secrets if kind == "secret" else self.configs
        self.counter += 1
        item = {
            "ID": _id(kind[:3] + name.replace("-", "").replace(".", ""), self.counter),
            "Version": {"Index": self.next_index()},
            "CreatedAt": T0,
            "UpdatedAt": T0,
            "Spec": {"Name": name, "Labels": labels or {}},
            "_data": base64.b64encode(data).decode(),
        }
        if kind == "config":
            item["Spec"]["Data"] = item["_data"]
        items.append(item)
        return item

    # -- transport --------------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = unquote(request.url.path)
        query = dict(parse_qsl(request.url.query.decode(), keep_blank_values=True))
        body = json.loads(request.content) if request.content else None
        if path == "/_ping":
            return httpx.Response(
                200,
                headers={"Api-Version": self.api_version, "Swarm": "active/manager"},
                content=b"" if request.method == "HEAD" else b"OK",
            )
        match = re.match(r"^/v(\d+\.\d+)(/.*)$", path)
        if match:
            path = match.group(2)
        self.requests.append((request.method, path, query, body))
        try:
            status, payload = self.route(request.method, path, query, body)
        except LookupError as exc:
            return self.error(404, str(exc.args[0]))
        except ValueError as exc:
            return self.error(400, str(exc))
        except PermissionError as exc:
            return self.error(503, str(exc))
        if payload is None:
            return httpx.Response(status)
        return httpx.Response(status, json=payload)

    @staticmethod
    def error(status: int, message: str) -> httpx.Response:
        return httpx.Response(
            status,
            content=json.dumps({"message": message}).encode(),
            headers={"Content-Type": "application/json"},
        )

    def calls(
        self, method: str | None = None, prefix: str = ""
    ) -> list[tuple[str, str, dict[str, str], Any]]:
        return [
            r
            for r in self.requests
            if (method is None or r[0] == method) and r[1].startswith(prefix)
        ]

    # -- routing ----------------------------------------------------------------------------

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        from . import fake_routes

        return fake_routes.route(self, method, path, query, body)

    # -- lookups ----------------------------------------------------------------------------

    def find(self, kind: str, ref: str) -> dict[str, Any]:
        items = {"node": self.nodes, "service": self.services, "task": self.tasks}[kind]
        for item in items:
            if item["ID"] == ref:
                return item
        for item in items:
            name = (
                (item.get("Description") or {}).get("Hostname")
                if kind == "node"
                else (item.get("Spec") or {}).get("Name")
            )
            if name is not None and (
                name == ref or (kind == "node" and name.lower() == ref.lower())
            ):
                return item
        matches = [item for item in items if item["ID"].startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ValueError(f"{kind} {ref} is ambiguous ({len(matches)} matches found)")
        raise LookupError(f"{kind} {ref} not found")

    def find_network(self, ref: str, scope: str = "") -> dict[str, Any]:
        for net in self.networks:
            if ref in (net["Id"], net["Name"]) or net["Id"].startswith(ref):
                if scope and net["Scope"] != scope:
                    break
                return net
        raise LookupError(f"network {ref} not found")
