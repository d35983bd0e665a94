"""``shoal dev``: a swarm of shoald daemons on simulated hosts of this machine, with a local
registry holding the demo images, that outlives the command which started it and that ``down``
removes without a trace.

Each node is a network namespace ``<prefix>-nodeN`` (default prefix shoaldev) on a virtual switch
(shoal.dev.hosts), its shoald inside on the underlay address ``<base>.N`` (default base
172.31.10; scripts/demo uses 172.31.9, the tests 172.31.7/172.31.8: every swarm's switch is its
own, so only the prefixes must differ); the registry runs in ``<prefix>-registry`` on
``<base>.254:5000``, which is also every node's Docker Hub mirror (holding the stand-ins of the
voting app's images, shoal.dev.votingapp, so examples/voting-app deploys). The machine's own namespace gets nothing but, with ``--publish-host PORT``,
a forwarder listening on 127.0.0.1:PORT that connects to node1's ``<base>.1:PORT``.

Everything else lives in one dev root (default ``/var/lib/shoal-dev``): ``state.json`` (the
prefix; the nodes, their addresses, namespaces, sockets, pids and roles; the registry's and the
forwarder's), a marker file naming the prefix, and per node its data root, exec root, API socket
and log. Processes are stopped by pid, and only while ``/proc/<pid>/cmdline`` still names the dev
root, so a recycled pid is never signalled; the namespaces are found by prefix, so ``down`` works
with a missing or stale state too.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from shoal.dev import cleanup, forward, hosts, procs
from shoal.dev.images import build_all
from shoal.dev.local import Daemon
from shoal.dev.registry import LocalRegistry, RegistryError
from shoal.dev.votingapp import voting_app_images
from shoal.dev.wait import wait_for
from shoal.errors import ShoalError
from shoal.fsutil import write_atomic

__all__ = ["DEFAULT_BASE", "DEFAULT_ROOT", "PREFIX", "DevError", "DevState", "ForwarderState",
           "NodeState", "RegistryState", "default_root", "down", "env_line", "exec_argv",
           "forwarder_running", "load_state", "node_running", "registry_running", "status", "up"]

DEFAULT_ROOT = Path("/var/lib/shoal-dev")
DEFAULT_BASE = "172.31.10"
PREFIX = "shoaldev"
REGISTRY_HOST = "registry"
REGISTRY_INDEX = 254
REGISTRY_PORT = 5000
SWARM_PORT = 2377
MARKER = ".shoal-dev"
STATE = "state.json"
FORWARD_LOG = "forward.log"

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
    netns: str = ""  # /run/netns/<prefix>-<hostname>


@dataclass
class RegistryState:
    addr: str
    pid: int
    root: str
    netns: str = ""


@dataclass
class ForwarderState:
    pid: int
    ports: list[int]
    target: str  # node1's underlay IP
    log: str  # under the dev root: it names the process for `down`


@dataclass
class DevState:
    root: str
    base_ip: str
    executor: str
    prefix: str = PREFIX
    nodes: list[NodeState] = field(default_factory=list)
    registry: RegistryState | None = None
    images: list[str] = field(default_factory=list)  # "<registry>/shoal/web:latest"...
    forwarder: ForwarderState | None = None

    @property
    def path(self) -> Path:
        return Path(self.root) / STATE

    def save(self) -> None:
        write_atomic(self.path, json.dumps(asdict(self), indent=2) + "\n")

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
        fwd = doc.get("forwarder")
        return DevState(root=doc["root"], base_ip=doc["base_ip"], executor=doc["executor"],
                        prefix=doc.get("prefix") or PREFIX,
                        nodes=[NodeState(**n) for n in doc.get("nodes") or []],
                        registry=RegistryState(**reg) if reg else None,
                        images=list(doc.get("images") or []),
                        forwarder=ForwarderState(**fwd) if fwd else None)
    except (ValueError, KeyError, TypeError) as exc:
        raise DevError(f"{path} is unreadable ({exc}); remove the dev root by hand") from None


def node_running(node: NodeState) -> bool:
    return procs.alive(node.pid, node.root)


def registry_running(reg: RegistryState) -> bool:
    return procs.alive(reg.pid, reg.root)


def forwarder_running(fwd: ForwarderState) -> bool:
    return procs.alive(fwd.pid, fwd.log)


def _check_base(base_ip: str) -> None:
    try:
        hosts.check_base(base_ip, allow_loopback=False)
    except ShoalError as exc:
        raise DevError(f"--base-ip: {exc}") from None


def _check_prefix(prefix: str) -> None:
    if not hosts.PREFIX_RE.fullmatch(prefix):
        raise DevError(f"--prefix {prefix!r}: expected lower-case letters, digits and '-'")


def _prepare_root(root: Path, prefix: str) -> None:
    """Refuse a root in use (or not ours) and a prefix in use, then mark the root as ours."""
    if (root / STATE).exists():
        state = load_state(root)
        running = state is not None and any(node_running(n) for n in state.nodes)
        what = "already up" if running else "left over (its processes are gone)"
        raise DevError(f"a dev swarm is {what} in {root}; run 'shoal dev down' first")
    if root.exists() and any(root.iterdir()) and not (root / MARKER).exists():
        raise DevError(f"{root} is not empty and is not a dev root; choose another --root")
    taken = hosts.list_netns(prefix)
    if taken:
        raise DevError(f"network namespaces {', '.join(taken)} exist: another dev swarm uses "
                       f"--prefix {prefix} (or one crashed: 'shoal dev down --prefix {prefix}' "
                       "removes them)")
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text("a shoal dev root: 'shoal dev down' deletes this directory\n"
                               f"prefix: {prefix}\n")


def _marker_prefix(root: Path) -> str | None:
    try:
        text = (root / MARKER).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("prefix: "):
            return line.split(": ", 1)[1].strip() or None
    return None


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
    wait_for(what, fn, timeout, interval=0.25,
             retry_on=(httpx.HTTPError, OSError, DevError, ValueError), error=DevError)


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
       base_ip: str = DEFAULT_BASE, prefix: str = PREFIX, publish: tuple[int, ...] = (),
       echo: Echo = lambda _: None, timeout: float = 120) -> DevState:
    """Build the simulated hosts, start the registry, push the demo images, start ``nodes``
    daemons (the first ``managers`` of them managers), form the swarm, and forward each
    ``publish`` port from 127.0.0.1 to node1; everything is removed again if a step fails."""
    if nodes < 1 or nodes > 250:
        raise DevError(f"--nodes {nodes}: expected 1 to 250")
    if managers < 1 or managers > nodes:
        raise DevError(f"--managers {managers}: expected 1 to --nodes ({nodes})")
    if executor not in ("sim", "runc"):
        raise DevError(f"--executor {executor!r}: expected sim or runc")
    if any(not 1 <= p <= 65535 for p in publish) or len(set(publish)) != len(publish):
        raise DevError(f"--publish-host {list(publish)}: expected distinct ports 1 to 65535")
    _check_base(base_ip)
    _check_prefix(prefix)
    root = root.absolute()
    _prepare_root(root, prefix)
    try:
        listeners = forward.bind(sorted(publish))  # a port in use fails before anything starts
    except OSError as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise DevError(f"--publish-host: 127.0.0.1: {exc.strerror}") from None
    state = DevState(root=str(root), base_ip=base_ip, executor=executor, prefix=prefix)
    try:
        state.save()
        _up(state, nodes, managers, listeners, echo, timeout)
    except BaseException:
        for s in listeners:
            s.close()
        echo("failed: removing what was started")
        down(root)
        raise
    return state


def _up(state: DevState, nodes: int, managers: int, listeners: list[socket.socket], echo: Echo,
        timeout: float) -> None:
    root = Path(state.root)
    fabric = hosts.Fabric(state.prefix, state.base_ip)
    reg_host = fabric.add_host(REGISTRY_HOST, REGISTRY_INDEX)
    registry = LocalRegistry(root / "registry", f"{reg_host.ip}:{REGISTRY_PORT}",
                             netns=reg_host.netns_path)
    echo(f"starting the registry on {registry.addr} (netns {reg_host.netns})")
    try:
        registry.start()
    except RegistryError as exc:
        raise DevError(str(exc)) from None
    finally:
        if registry.pid:
            state.registry = RegistryState(registry.addr, registry.pid, str(registry.root),
                                           reg_host.netns_path)
            state.save()
    images = [*build_all(), *voting_app_images()]
    for image in images:
        try:
            registry.push(image)
        except (RegistryError, httpx.HTTPError) as exc:
            raise DevError(f"pushing {image.reference(registry.addr)}: {exc}") from None
        state.images.append(image.reference(registry.addr))
        echo(f"pushed {image.reference(registry.addr)}")
    state.save()

    daemons = []
    for i in range(1, nodes + 1):
        host = fabric.add_host(f"node{i}", i)
        # cgroups /<prefix>-N: `down` removes them by that prefix
        daemons.append(Daemon(index=i, ip=host.ip, root=root / f"node{i}", prefix=state.prefix,
                              executor=state.executor, name=host.name, netns=host.netns_path,
                              insecure_registries=[registry.addr],
                              registry_mirrors=[f"http://{registry.addr}/"]))
    echo(f"starting {nodes} shoald ({state.executor} executor) in netns "
         f"{state.prefix}-node1..{nodes} on {daemons[0].ip}..{daemons[-1].ip}")
    try:
        with ThreadPoolExecutor(max_workers=min(nodes, 4)) as pool:
            list(pool.map(_start_daemon, daemons))
    finally:
        state.nodes = [NodeState(d.hostname, d.ip, str(d.root), str(d.sock),
                                 d.proc.pid if d.proc else 0,
                                 "manager" if d.index <= managers else "worker", d.netns or "")
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
    if listeners:
        ports = [s.getsockname()[1] for s in listeners]
        log = root / FORWARD_LOG
        pid = forward.spawn(listeners, first.netns or "", first.ip, log).pid
        state.forwarder = ForwarderState(pid, ports, first.ip, str(log))
        state.save()
        echo(f"forwarding 127.0.0.1:{','.join(map(str, ports))} to node1 ({first.ip})")


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


def exec_argv(root: Path, node: str, command: list[str]) -> tuple[list[str], dict[str, str]]:
    """The argv (``nsenter --net=...``) and environment running ``command`` in ``node``'s
    namespace (``registry``: the registry's); DOCKER_HOST names the node's daemon."""
    state = _require(root)
    env = dict(os.environ)
    if node == REGISTRY_HOST and state.registry is not None:
        path = state.registry.netns
    else:
        chosen = state.node(node)
        path = chosen.netns
        env["DOCKER_HOST"] = f"unix://{chosen.socket}"
    if not path or not os.path.exists(path):
        raise DevError(f"{node} has no network namespace (is the dev swarm up?)")
    if not command:
        raise DevError("no command given: shoal dev exec NODE -- COMMAND...")
    return hosts.nsenter(path) + command, env


def _require(root: Path) -> DevState:
    state = load_state(root.absolute())
    if state is None:
        raise DevError(f"no dev swarm in {root} ('shoal dev up' starts one)")
    return state


def status(root: Path) -> DevState:
    return _require(root)


# -- down ---------------------------------------------------------------------------------------

def _remove_netns(prefix: str, echo: Echo) -> list[str]:
    removed = hosts.remove_all(prefix)  # kills what still runs inside: `dev exec` leftovers
    for name in removed:
        echo(f"removed netns {name}")
    return removed


def down(root: Path, echo: Echo = lambda _: None, prefix: str | None = None) -> bool:
    """Stop and remove the dev swarm in ``root``: daemons, registry, forwarder, their children,
    runc containers, the ``<prefix>-*`` network namespaces, mounts, cgroups, and the root itself.
    The prefix comes from the state, else from the root's marker, else from ``prefix``: with no
    root at all, only an explicit ``prefix`` is cleaned (after a crash that lost the root).
    Idempotent; False when there was nothing."""
    root = root.absolute()
    if prefix is not None:
        _check_prefix(prefix)
    if not root.exists():
        return bool(prefix and _remove_netns(prefix, echo))
    if not (root / MARKER).exists() and not (root / STATE).exists():
        if any(root.iterdir()):
            raise DevError(f"{root} is not a dev root (no {MARKER}); not removing it")
        root.rmdir()
        return bool(prefix and _remove_netns(prefix, echo))
    try:
        state = load_state(root) if (root / STATE).exists() else None
    except DevError as exc:  # a torn state: clean by the root and the prefix instead
        echo(str(exc))
        state = None
    prefix = state.prefix if state is not None else _marker_prefix(root) or prefix
    for node in state.nodes if state else []:
        if procs.terminate(node.pid, node.root):
            echo(f"stopped {node.hostname} (pid {node.pid})")
    reg = state.registry if state is not None else None
    if reg is not None and procs.terminate(reg.pid, reg.root, timeout=10):
        echo(f"stopped the registry (pid {reg.pid})")
    fwd = state.forwarder if state is not None else None
    if fwd is not None and procs.terminate(fwd.pid, fwd.log, timeout=5):
        echo(f"stopped the forwarder (pid {fwd.pid})")
    inside = str(root) + "/"
    for pid in procs.matching(inside):  # etcd, or a process missing from a partial state
        if procs.terminate(pid, inside):
            echo(f"stopped leftover process {pid}")
    for node_root in sorted(root.glob("node*")):
        cleanup.remove_containers(node_root / "exec" / "runc", echo)
    if prefix:
        _remove_netns(prefix, echo)
    cleanup.umount_under(root, echo)
    if prefix:
        cleanup.remove_cgroups(prefix + "-", echo)
    shutil.rmtree(root, ignore_errors=True)
    if root.exists():
        shutil.rmtree(root)  # again, to report why
    echo(f"removed {root}")
    return True
