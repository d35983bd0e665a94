"""/_ping, /version and /info: what every docker command asks first (/distribution is in
routes_images)."""

from __future__ import annotations

import asyncio
import os
import platform

from aiohttp import web

from shoal import __version__
from shoal.api.common import engine, reply
from shoal.api.engine import API_WARNINGS
from shoal.api.render import swarm_json
from shoal.api.server import API_VERSION, MIN_API_VERSION, Router
from shoal.exec.executor import memory_bytes
from shoal.model.objects import Node
from shoal.model.states import NodeRole

__all__ = ["register"]


def _swarm_header(request: web.Request) -> str:
    state = engine(request).swarm_state()
    if state.local_node_state != "active":
        return state.local_node_state
    return "active/manager" if state.control_available else "active/worker"


async def ping(request: web.Request) -> web.StreamResponse:
    headers = {
        "Swarm": _swarm_header(request), "Docker-Experimental": "false", "Builder-Version": "2",
        "Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache",
    }
    if request.method == "HEAD":
        return web.Response(status=200, headers={**headers, "Content-Type": "text/plain; charset=utf-8", "Content-Length": "0"})
    return web.Response(status=200, text="OK", headers=headers)


def _version_body() -> dict[str, object]:
    details = {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux",
               "Arch": "amd64", "GitCommit": "shoal", "GoVersion": f"python{platform.python_version()}",
               "BuildTime": "", "KernelVersion": platform.release(), "Experimental": "false"}
    return {"Platform": {"Name": "Shoal"},
            "Components": [{"Name": "Engine", "Version": __version__, "Details": details}],
            "Version": __version__, **{k: v for k, v in details.items() if k != "Experimental"}}


async def version(request: web.Request) -> web.StreamResponse:
    return reply(_version_body())


def _registry_config(insecure: list[str], mirrors: list[str]) -> dict[str, object]:
    """dockerd's: `docker info` prints "Insecure Registries" and "Registry Mirrors" from it."""
    cidrs = ["::1/128", "127.0.0.0/8", *(r for r in insecure if "/" in r)]
    indexes: dict[str, object] = {
        "docker.io": {"Name": "docker.io", "Mirrors": mirrors, "Secure": True, "Official": True}}
    for name in (r for r in insecure if "/" not in r):
        indexes[name] = {"Name": name, "Mirrors": [], "Secure": False, "Official": False}
    return {"InsecureRegistryCIDRs": cidrs, "IndexConfigs": indexes, "Mirrors": mirrors}


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


async def info(request: web.Request) -> web.StreamResponse:
    eng = engine(request)
    state = eng.swarm_state()
    swarm: dict[str, object] = {
        "NodeID": state.node_id, "NodeAddr": state.node_addr, "LocalNodeState": state.local_node_state,
        "ControlAvailable": state.control_available, "Error": state.error,
        "RemoteManagers": [{"NodeID": n, "Addr": a} for n, a in state.remote_managers],
    }
    st = eng.store
    if st is not None and state.local_node_state == "active":
        view = st.view()
        nodes = view.all(Node)
        swarm["Nodes"] = len(nodes)
        swarm["Managers"] = sum(1 for n in nodes if n.spec.role == NodeRole.MANAGER)
        cluster = view.cluster()
        if cluster is not None:
            swarm["Cluster"] = swarm_json(cluster, with_tokens=False)
    labels = [f"{k}={v}" for k, v in sorted(eng.engine_labels.items())]
    body = {
        "ID": state.node_id or "", "Name": eng.hostname, "ServerVersion": __version__,
        "OperatingSystem": "Shoal", "OSType": "linux", "Architecture": platform.machine(),
        "KernelVersion": platform.release(), "NCPU": os.cpu_count() or 1, "MemTotal": memory_bytes(),
        "DockerRootDir": eng.data_root, "Labels": labels, "Driver": "overlay2",
        "Plugins": {"Volume": ["local"], "Network": ["overlay"], "Authorization": [], "Log": ["json-file"]},
        "Containers": 0, "ContainersRunning": 0, "ContainersPaused": 0, "ContainersStopped": 0,
        "Images": 0, "SecurityOptions": [], "Warnings": request.app.get(API_WARNINGS) or [],
        # dockerd's open files and goroutines; here the daemon's asyncio tasks (soak benches)
        "NFd": _open_fds(), "NGoroutines": len(asyncio.all_tasks()),
        "Swarm": swarm,
        "RegistryConfig": _registry_config(eng.images.insecure_registries,
                                           eng.images.registry_mirrors),
    }
    return reply(body)


def register(router: Router) -> None:
    router.add("GET", "/_ping", ping, reads_store=False)
    router.add("HEAD", "/_ping", ping, reads_store=False)
    router.add("GET", "/version", version, reads_store=False)
    router.add("GET", "/info", info)
