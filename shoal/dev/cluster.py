"""``shoal dev``: a swarm of shoald daemons on this machine, with a local registry holding the demo
images, that outlives the command which started it and that ``down`` removes without a trace.

Everything lives in one dev root (default ``/var/lib/shoal-dev``): ``state.json`` (the nodes,
their addresses, sockets, pids and roles; the registry's address and pid), a marker file, and per
node its data root, exec root, API socket and log. Daemons listen on ``<base>.1``...``<base>.N``
(loopback; default base 127.0.10, the README demo uses 127.0.9 and the tests 127.0.7/127.0.8),
the registry on ``<base>.254:5000``. Processes are stopped by pid, and only while
``/proc/<pid>/cmdline`` still names the dev root, so a recycled pid is never signalled.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from shoal.dev import cleanup, procs
from shoal.dev.images import build_all
from shoal.dev.local import Daemon
from shoal.dev.registry import LocalRegistry, RegistryError, check_free

__all__ = ["DEFAULT_BASE", "DEFAULT_ROOT", "DevError", "DevState", "NodeState", "RegistryState",
           "default_root", "down", "env_line", "load_state", "node_running", "registry_running",
           "status", "up"]

DEFAULT_ROOT = Path("/var/lib/shoal-dev")
DEFAULT_BASE = "127.0.10"
PREFIX = "shoaldev"
REGISTRY_PORT = 5000
SWARM_PORT = 2377
MARKER = ".shoal-dev"
STATE = "state.json"

Echo = Callable[[str], None]


class DevError(Exception):
    """``shoal dev`` cannot do what was asked; the message is one line."""


@dataclass
class NodeState:
    hostname: str
    ip: str
    root: str
    socket: str
    pid: int
    role: str  # "manager" or "worker"


@dataclass
class RegistryState:
    addr: str
    pid: int
    root: str


@dataclass
class DevState:
    root: str
    base_ip: str
    executor: str
    nodes: list[NodeState] = field(default_factory=list)
    registry: RegistryState | None = None
    images: list[str] = field(default_factory=list)  # "<registry>/shoal/web:latest"...

    @property
    def path(self) -> Path:
        return Path(self.root) / STATE

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(self.path)

    def node(self, name: str) -> NodeState:
        for n in self.nodes:
            if n.hostname == name:
                return n
        names = ", ".join(n.hostname for n in self.nodes) or "none"
        raise DevError(f"no node {name!r} in the dev swarm at {self.root} (nodes: {names})")


def default_root() -> Path:
    """``$SHOAL_DEV_ROOT``, else /var/lib/shoal-dev."""
    return Path(os.environ.get("SHOAL_DEV_ROOT") or DEFAULT_ROOT)


def load_state(root: Path) -> DevState | None:
    """The dev swarm recorded in ``root``, or None when there is none."""
    path = root / STATE
    if not path.exists():
        return None
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
        reg = doc.get("registry")
        return DevState(root=doc["root"], base_ip=doc["base_ip"], executor=doc["executor"],
                        nodes=[NodeState(**n) for n in doc.get("nodes") or []],
                        registry=RegistryState(**reg) if reg else None,
                        images=list(doc.get("images") or []))
    except (ValueError, KeyError, TypeError) as exc:
        raise DevError(f"{path} is unreadable ({exc}); remove the dev root by hand") from None


def node_running(node: NodeState) -> bool:
    return procs.alive(node.pid, node.root)


def registry_running(reg: RegistryState) -> bool:
    return procs.alive(reg.pid, reg.root)


def _check_base(base_ip: str) -> None:
    try:
        ok = (base_ip.count(".") == 2
              and ipaddress.ip_address(base_ip + ".1").is_loopback)
    except ValueError:
        ok = False
    if not ok:
        raise DevError(f"--base-ip {base_ip!r}: expected the first three octets of a loopback "
                       "address, such as 127.0.10")


def _prepare_root(root: Path, addrs: list[str]) -> None:
    """Refuse a root in use (or not ours) and addresses in use, then mark the root as ours."""
    if (root / STATE).exists():
        state = load_state(root)
        running = state is not None and any(node_running(n) for n in state.nodes)
        what = "already up" if running else "left over (its processes are gone)"
        raise DevError(f"a dev swarm is {what} in {root}; run 'shoal dev down' first")
    if root.exists() and any(root.iterdir()) and not (root / MARKER).exists():
        raise DevError(f"{root} is not empty and is not a dev root; choose another --root")
    for addr in addrs:
        try:
            check_free(addr)
        except RegistryError as exc:
            raise DevError(f"{exc}: another swarm on this --base-ip?") from None
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text("a shoal dev root: 'shoal dev down' deletes this directory\n")


def _api(d: Daemon, method: str, path: str, body: Any = None, timeout: float = 90) -> Any:
    with d.client(timeout=timeout) as c:
        r = c.request(method, path, json=body)
        if r.status_code >= 400:
            try:
                message = r.json().get("message") or r.text
            except ValueError:
                message = r.text
            raise DevError(f"{d.hostname}: {method} {path}: {message.strip()}")
        return r.json() if r.content else None


def _wait(what: str, fn: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            if fn():
                return
        except (httpx.HTTPError, OSError, DevError, ValueError) as exc:
            last = f" (last: {exc})"
        time.sleep(0.25)
    raise DevError(f"timed out after {timeout:.0f}s waiting for {what}{last}")


def _start_daemon(d: Daemon) -> None:
    try:
        d.start()
    except AssertionError:
        tail = d.log.read_text(errors="replace").strip().splitlines() if d.log.exists() else []
        raise DevError(f"{d.hostname}'s shoald did not start: "
                       f"{tail[-1] if tail else 'no output'}") from None


def _all_ready(first: Daemon, nodes: int, managers: int) -> bool:
    listed = _api(first, "GET", "/nodes", timeout=10)
    ready = [n for n in listed if (n.get("Status") or {}).get("State") == "ready"]
    reachable = [n for n in listed
                 if (n.get("ManagerStatus") or {}).get("Reachability") == "reachable"]
    return len(ready) == nodes and len(reachable) == managers


def up(root: Path, *, nodes: int, managers: int = 1, executor: str = "runc",
       base_ip: str = DEFAULT_BASE, echo: Echo = lambda _: None, timeout: float = 120) -> DevState:
    """Start the registry, push the demo images, start ``nodes`` daemons (the first
    ``managers`` of them managers) and form the swarm; everything is removed again if a step
    fails."""
    if nodes < 1 or nodes > 250:
        raise DevError(f"--nodes {nodes}: expected 1 to 250")
    if managers < 1 or managers > nodes:
        raise DevError(f"--managers {managers}: expected 1 to --nodes ({nodes})")
    if executor not in ("sim", "runc"):
        raise DevError(f"--executor {executor!r}: expected sim or runc")
    _check_base(base_ip)
    root = root.absolute()
    _prepare_root(root, [f"{base_ip}.{i}:{SWARM_PORT}" for i in range(1, nodes + 1)]
                  + [f"{base_ip}.254:{REGISTRY_PORT}"])
    state = DevState(root=str(root), base_ip=base_ip, executor=executor)
    state.save()
    try:
        _up(state, nodes, managers, echo, timeout)
    except BaseException:
        echo("failed: removing what was started")
        down(root)
        raise
    return state


def _up(state: DevState, nodes: int, managers: int, echo: Echo, timeout: float) -> None:
    root = Path(state.root)
    registry = LocalRegistry(root / "registry", f"{state.base_ip}.254:{REGISTRY_PORT}")
    echo(f"starting the registry on {registry.addr}")
    try:
        registry.start()
    except RegistryError as exc:
        raise DevError(str(exc)) from None
    finally:
        if registry.pid:
            state.registry = RegistryState(registry.addr, registry.pid, str(registry.root))
            state.save()
    images = build_all()
    for image in images:
        try:
            registry.push(image)
        except (RegistryError, httpx.HTTPError) as exc:
            raise DevError(f"pushing {image.reference(registry.addr)}: {exc}") from None
        state.images.append(image.reference(registry.addr))
        echo(f"pushed {image.reference(registry.addr)}")
    state.save()

    daemons = [Daemon(index=i, ip=f"{state.base_ip}.{i}", root=root / f"node{i}", prefix=PREFIX,
                      executor=state.executor, name=f"node{i}") for i in range(1, nodes + 1)]
    # cgroups /shoaldev-N: `down` removes them by that prefix
    echo(f"starting {nodes} shoald ({state.executor} executor) on "
         f"{daemons[0].ip}..{daemons[-1].ip}")
    try:
        with ThreadPoolExecutor(max_workers=min(nodes, 4)) as pool:
            list(pool.map(_start_daemon, daemons))
    finally:
        state.nodes = [NodeState(d.hostname, d.ip, str(d.root), str(d.sock),
                                 d.proc.pid if d.proc else 0,
                                 "manager" if d.index <= managers else "worker")
                       for d in daemons]
        state.save()

    first = daemons[0]
    _api(first, "POST", "/swarm/init", {"ListenAddr": f"{first.ip}:{SWARM_PORT}",
                                        "AdvertiseAddr": first.ip})
    echo(f"node1: swarm initialized ({first.ip}:{SWARM_PORT})")
    tokens = _api(first, "GET", "/swarm")["JoinTokens"]
    for d in daemons[1:]:
        role = "manager" if d.index <= managers else "worker"
        _api(d, "POST", "/swarm/join", {
            "ListenAddr": f"{d.ip}:{SWARM_PORT}", "AdvertiseAddr": d.ip,
            "RemoteAddrs": [f"{first.ip}:{SWARM_PORT}"],
            "JoinToken": tokens["Manager" if role == "manager" else "Worker"]})
        echo(f"{d.hostname}: joined as a {role}")
    _wait(f"{nodes} nodes ready and {managers} managers reachable",
          lambda: _all_ready(first, nodes, managers), timeout)


def env_line(root: Path, node: str | None = None) -> str:
    """``export DOCKER_HOST=unix://...`` for ``node``'s daemon (a running manager's by
    default)."""
    state = _require(root)
    chosen: NodeState | None
    if node:
        chosen = state.node(node)
    else:
        managers = [n for n in state.nodes if n.role == "manager"]
        chosen = next((n for n in managers if node_running(n)), managers[0] if managers else None)
        if chosen is None:
            raise DevError(f"the dev swarm at {root} has no manager")
    return f"export DOCKER_HOST=unix://{chosen.socket}"


def _require(root: Path) -> DevState:
    state = load_state(root.absolute())
    if state is None:
        raise DevError(f"no dev swarm in {root} ('shoal dev up' starts one)")
    return state


def status(root: Path) -> DevState:
    return _require(root)


# -- down ---------------------------------------------------------------------------------------

def down(root: Path, echo: Echo = lambda _: None) -> bool:
    """Stop and remove the dev swarm in ``root``: daemons, registry, their children, runc
    containers, mounts, cgroups, and the root itself. Idempotent; False when there was nothing."""
    root = root.absolute()
    if not root.exists():
        return False
    if not (root / MARKER).exists() and not (root / STATE).exists():
        if any(root.iterdir()):
            raise DevError(f"{root} is not a dev root (no {MARKER}); not removing it")
        root.rmdir()
        return False
    state = load_state(root) if (root / STATE).exists() else None
    for node in state.nodes if state else []:
        if procs.terminate(node.pid, node.root):
            echo(f"stopped {node.hostname} (pid {node.pid})")
    reg = state.registry if state is not None else None
    if reg is not None and procs.terminate(reg.pid, reg.root, timeout=10):
        echo(f"stopped the registry (pid {reg.pid})")
    inside = str(root) + "/"
    for pid in procs.matching(inside):  # etcd, or a daemon missing from a partial state
        if procs.terminate(pid, inside):
            echo(f"stopped leftover process {pid}")
    for node_root in sorted(root.glob("node*")):
        cleanup.remove_containers(node_root / "exec" / "runc", echo)
    cleanup.umount_under(root, echo)
    cleanup.remove_cgroups(PREFIX, echo)
    shutil.rmtree(root, ignore_errors=True)
    if root.exists():
        shutil.rmtree(root)  # again, to report why
    echo(f"removed {root}")
    return True
