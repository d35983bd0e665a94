"""A swarm of real shoald processes on this machine: on 127.0.x.y loopback addresses, or each in
a simulated host (its own network namespace on a virtual switch, shoal.dev.hosts) with
``hosts=True``.

Used by the integration tests, the benches and ``shoal dev``. Each daemon gets its own data root,
exec root, API socket and hostname (``<prefix>-N``), runs the sim executor (unless told
otherwise), and is stopped (SIGTERM, then SIGKILL) by ``close()``. The API socket is a path, so it
answers from the machine's own namespace wherever the daemon's network is.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from shoal.dev import cleanup, procs
from shoal.dev.hosts import Fabric, nsenter
from shoal.dev.registry import LocalRegistry
from shoal.dev.wait import wait_for

T = TypeVar("T")

SHOALD = [sys.executable, "-c", "from shoal.daemon import main; main()"]
SHOAL = [sys.executable, "-c", "from shoal.cli.main import main; main()"]


@dataclass
class Daemon:
    index: int
    ip: str
    root: Path
    labels: dict[str, str] = field(default_factory=dict)
    prefix: str = "shoaltest"
    proc: subprocess.Popen[bytes] | None = None
    executor: str = "sim"  # or "runc"
    name: str = ""  # the hostname, when not ``<prefix>-<index>`` (``shoal dev``: node1...)
    netns: str | None = None  # a simulated host's namespace path: shoald runs inside it
    insecure_registries: list[str] = field(default_factory=list)  # plain-HTTP registries
    registry_mirrors: list[str] = field(default_factory=list)  # tried before Docker Hub
    api_hosts: list[str] = field(default_factory=list)  # more API listeners (-H tcp://127.0.x.y:N)
    metrics_addr: str = ""  # --metrics-addr IP:PORT
    web_addr: str = ""  # the web view's IP:PORT (--web-addr), if any
    # A callback holding the event loop this long is logged (a test then fails on the line,
    # tests/integration/conftest.py). 1 s: GC pauses and a loaded 2-core machine stay below;
    # SHOAL_LOOP_BLOCK_LIMIT in the environment overrides it (0.1 to find blockers; 0: off).
    loop_block_limit: float = 1.0

    @property
    def hostname(self) -> str:
        return self.name or f"{self.prefix}-{self.index}"

    @property
    def cgroup_parent(self) -> str:
        """Its containers' parent cgroup, named after the prefix so cleanup finds it."""
        return f"/{self.prefix}-{self.index}"

    @property
    def sock(self) -> Path:
        return self.root / "api.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.sock}"

    @property
    def log(self) -> Path:
        return self.root / "shoald.log"

    def start(self) -> None:
        args = SHOALD + ["--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
                         "-H", self.host, "--hostname", self.hostname, "--executor", self.executor]
        if self.executor == "runc":
            args += ["--cgroup-parent", self.cgroup_parent]
            if not self.netns:  # the machine's own namespace: no gateway bridge made in it
                args += ["--bridge", "none"]
        for k, v in self.labels.items():
            args += ["--label", f"{k}={v}"]
        for registry in self.insecure_registries:
            args += ["--insecure-registry", registry]
        for mirror in self.registry_mirrors:
            args += ["--registry-mirror", mirror]
        for host in self.api_hosts:
            args += ["-H", host]
        if self.metrics_addr:
            args += ["--metrics-addr", self.metrics_addr]
        if self.web_addr:
            args += ["--web-addr", self.web_addr]
        if self.netns:
            args = nsenter(self.netns) + args  # nsenter execs: the pid stays shoald's
        self.root.mkdir(parents=True, exist_ok=True)
        self.sock.unlink(missing_ok=True)  # left behind by a SIGKILL
        env = {"SHOAL_LOOP_BLOCK_LIMIT": str(self.loop_block_limit), **os.environ}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True,
                                         env=env)
        try:
            wait_for(f"{self.hostname} API", self.ping, timeout=20)
        except AssertionError as exc:
            tail = self.log.read_text(errors="replace").splitlines()[-15:]
            raise AssertionError(f"{exc}\n--- {self.log} ---\n" + "\n".join(tail)) from None

    def ping(self) -> bool:
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(str(self.sock))
            except OSError:
                return False
            s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=15)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        self.proc = None
        self.sock.unlink(missing_ok=True)

    def remove_containers(self) -> None:
        """After ``stop()``: its runc containers (and their shims), overlay mounts, cgroups."""
        inside = str(self.root) + "/"
        for pid in procs.matching(inside):  # container shims
            procs.terminate(pid, inside)
        cleanup.remove_containers(self.root / "exec" / "runc")
        cleanup.umount_under(self.root)
        cleanup.remove_cgroups(self.cgroup_parent.lstrip("/"))

    def exec(self, *argv: str, check: bool = False, timeout: float = 60,
             input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in this daemon's network namespace (the machine's own without one),
        output captured as text, with DOCKER_HOST set to this daemon."""
        prefix = nsenter(self.netns) if self.netns else []
        return subprocess.run(prefix + list(argv), env=self.env(), capture_output=True, text=True,
                              timeout=timeout, check=check, input=input)

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host, "DOCKER_CLI_HINTS": "false"}

    def docker(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self._run(["docker", *args], check, timeout)

    def shoal(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self._run(SHOAL + list(args), check, timeout)

    def _run(self, argv: list[str], check: bool, timeout: float) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(argv, env=self.env(), capture_output=True, text=True, timeout=timeout, check=False)
        if check and res.returncode != 0:
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-10:]) if self.log.exists() else ""
            raise AssertionError(f"{' '.join(argv[-6:])} failed ({res.returncode}): {res.stderr.strip()}\n"
                                 f"{res.stdout}\n--- {self.log} ---\n{tail}")
        return res

    def client(self, timeout: float = 10) -> httpx.Client:
        """An HTTP client on this daemon's Engine API socket."""
        return httpx.Client(transport=httpx.HTTPTransport(uds=str(self.sock)), base_url="http://shoal",
                            timeout=timeout)

    def api(self, path: str) -> Any:
        """GET ``path`` from this daemon's Engine API and return the decoded JSON."""
        with self.client() as c:
            r = c.get(path)
            r.raise_for_status()
            return r.json()


REGISTRY_INDEX = 254  # the registry's host: <base>.254
REGISTRY_PORT = 5000


class Swarm:
    """Daemons ``<prefix>-1``...: on loopback ``<base_ip>.N`` (default 127.0.7), or with
    ``hosts=True`` each in a simulated host ``<prefix>-nodeN`` on ``<base_ip>.N`` (default
    172.31.7) of a `Fabric` of its own. Use a prefix no other swarm on the machine uses: the
    fabric's namespaces are named, and removed, by it."""

    def __init__(self, root: Path, *, base_ip: str | None = None, prefix: str = "shoaltest",
                 hosts: bool = False) -> None:
        self.root = root
        self.base_ip = base_ip or ("172.31.7" if hosts else "127.0.7")
        self.prefix = prefix
        self.daemons: list[Daemon] = []
        self.fabric = Fabric(prefix, self.base_ip) if hosts else None
        self.registry: LocalRegistry | None = None

    @property
    def registry_addr(self) -> str:
        """Where `start_registry` puts the registry, as the nodes reach it."""
        return f"{self.base_ip}.{REGISTRY_INDEX}:{REGISTRY_PORT}"

    def add(self, labels: dict[str, str] | None = None, *, start: bool = True,
            executor: str = "sim") -> Daemon:
        i = len(self.daemons) + 1
        d = Daemon(index=i, ip=f"{self.base_ip}.{i}", root=self.root / f"node{i}", labels=labels or {},
                   prefix=self.prefix, executor=executor)
        if self.fabric is not None:
            d.netns = self.fabric.add_host(f"node{i}", i).netns_path
            d.insecure_registries = [self.registry_addr]  # plain HTTP, off loopback
            d.registry_mirrors = [f"http://{self.registry_addr}/"]  # and Docker Hub's names
        self.daemons.append(d)
        if start:
            d.start()
        return d

    def start_registry(self) -> LocalRegistry:
        """A docker-registry in host ``<prefix>-registry`` at `registry_addr` (needs
        ``hosts=True``), which is also the nodes' Docker Hub mirror; its ``push``, ``get`` and ``catalog`` work from this namespace."""
        if self.fabric is None:
            raise ValueError("start_registry needs Swarm(hosts=True)")
        if self.registry is None:
            host = self.fabric.add_host("registry", REGISTRY_INDEX)
            self.registry = LocalRegistry(self.root / "registry", self.registry_addr,
                                          netns=host.netns_path)
            self.registry.start()
        return self.registry

    def close(self) -> None:
        """Stop every daemon and remove what their containers leave (containers outlive
        shoald on purpose: a restarted daemon re-attaches to them), then the registry and the
        simulated hosts."""
        try:
            for d in self.daemons:
                d.stop()
            for d in self.daemons:
                if d.executor == "runc":
                    d.remove_containers()
            if self.registry is not None:
                self.registry.stop()
        finally:
            if self.fabric is not None:
                self.fabric.remove()



def leader(daemons: list[Daemon]) -> Daemon | None:
    """The daemon the running managers among ``daemons`` that answer name as Leader in
    ``node ls``, if they agree on one."""
    names = set()
    for d in daemons:
        if d.proc is None:
            continue
        try:
            nodes = d.api("/nodes")
        except (httpx.HTTPError, OSError, ValueError):
            continue
        names |= {n["Description"]["Hostname"] for n in nodes if (n.get("ManagerStatus") or {}).get("Leader")}
    if len(names) != 1:
        return None
    name = names.pop()
    return next((d for d in daemons if d.hostname == name), None)
