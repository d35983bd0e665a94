"""Simulated hosts: network namespaces joined by a virtual switch, for ``shoal dev`` and the tests.

A `Fabric` is a switch namespace ``<prefix>-sw`` holding bridge ``br0`` and, per host, a namespace
``<prefix>-<name>`` whose ``eth0`` (``<base>.<index>/24``) is the veth peer of port ``p<index>`` on
that bridge (../shared/reference/linux.md section 3). Every fabric lives in namespaces of its own,
so two fabrics may use the same addresses; only the namespace names must differ, which is why they
carry the prefix. Nothing is ever created in, or changed in, the machine's own namespace.

Namespaces are made with ``ip netns add`` (it sets up the shared ``/run/netns`` mount that a
bind-mounted namespace needs) and configured over netlink from a short-lived thread that entered
the namespace (``shoal.net.netns.run_in``): ``setns`` moves only the calling thread, so the
process stays where it is and no helper process is forked. `remove_all` needs no state: it scans ``/run/netns`` by prefix, which is
what makes cleanup after a crash possible.
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from pyroute2 import IPRoute

from shoal.errors import Conflict, InvalidArgument, Unavailable
from shoal.net import netns

__all__ = ["NETNS_DIR", "SWITCH", "Fabric", "Host", "list_netns", "netns_path", "nsenter",
           "pids_in", "remove_all", "remove_netns"]

NETNS_DIR = Path("/run/netns")
SWITCH = "sw"  # the switch namespace is <prefix>-sw
BRIDGE = "br0"
PREFIX_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")



def netns_path(name: str) -> str:
    return str(NETNS_DIR / name)


def nsenter(path: str) -> list[str]:
    """The argv prefix running a command in the namespace at ``path``. Not ``ip netns exec``: that
    remounts /sys in a new mount namespace, which hides the cgroup hierarchies shoald needs."""
    return ["nsenter", f"--net={path}"]


def list_netns(prefix: str) -> list[str]:
    """The names in /run/netns that start with ``<prefix>-``."""
    try:
        names = [p.name for p in NETNS_DIR.iterdir()]
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(prefix + "-"))


def _ns_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def pids_in(path: str) -> list[int]:
    """Processes (their main thread) in the namespace at ``path``, as ``ip netns pids`` finds
    them; this process is never among them."""
    target = _ns_id(path)
    if target is None:
        return []
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid() \
                and _ns_id(str(entry / "ns" / "net")) == target:
            out.append(int(entry.name))
    return sorted(out)


def _kill_all(pids: list[int], timeout: float = 5.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while pids and time.monotonic() < deadline:
            for pid in list(pids):
                try:
                    os.waitpid(pid, os.WNOHANG)  # our own child: no zombie left behind
                except ChildProcessError:
                    pass
                if not Path(f"/proc/{pid}").exists() or _zombie(pid):
                    pids.remove(pid)
            time.sleep(0.05)
        if not pids:
            return


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def remove_netns(name: str) -> bool:
    """Unmount and unlink /run/netns/NAME (as ``ip netns del``); False if it was not there. The
    namespace itself, with its links, goes once no process is left in it."""
    path = netns_path(name)
    if not os.path.lexists(path):
        return False
    netns.remove(path)
    return True


def remove_all(prefix: str, *, kill: bool = True) -> list[str]:
    """Delete every namespace named ``<prefix>-*``, first killing the processes still inside
    them (``kill``): a process would keep its namespace, and its links, alive. Needs no state, so
    it works after a crash. Returns the names removed."""
    _check_prefix(prefix)
    names = list_netns(prefix)
    if kill:
        _kill_all([pid for name in names for pid in pids_in(netns_path(name))])
    return [name for name in names if remove_netns(name)]


def _check_prefix(prefix: str) -> None:
    if not PREFIX_RE.fullmatch(prefix):
        raise InvalidArgument(f"prefix {prefix!r}: expected lower-case letters, digits and '-'")


def _create_netns(name: str) -> str:
    path = netns_path(name)
    if os.path.lexists(path):
        raise Conflict(f"network namespace {name} exists already (another fabric with this "
                       "prefix? remove it first)")
    done = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True,
                          timeout=30, check=False)
    if done.returncode != 0:
        raise Unavailable(f"ip netns add {name}: {done.stderr.strip()}")
    return path


def _index(ipr: IPRoute, name: str) -> int:
    found: list[int] = ipr.link_lookup(ifname=name)
    if not found:
        raise Unavailable(f"no link {name}")
    return found[0]


@dataclass(frozen=True)
class Host:
    """One simulated host: its namespace (``netns_path``) and its underlay address."""

    name: str
    index: int
    netns: str  # <prefix>-<name>
    netns_path: str
    ip: str


class Fabric:
    """A virtual switch and the hosts plugged into it, all named ``<prefix>-...``.

    The switch namespace is made by the first `add_host` (or `create`); `remove` deletes every
    ``<prefix>-*`` namespace, whether this object made it or a crashed predecessor did.
    """

    def __init__(self, prefix: str, base_ip: str) -> None:
        _check_prefix(prefix)
        check_base(base_ip, allow_loopback=False)
        self.prefix = prefix
        self.base_ip = base_ip
        self.hosts: dict[str, Host] = {}
        self._made_switch = False

    @property
    def switch(self) -> str:
        """The switch namespace's name."""
        return f"{self.prefix}-{SWITCH}"

    @property
    def switch_path(self) -> str:
        return netns_path(self.switch)

    def create(self) -> None:
        """Make the switch namespace with ``br0`` up (once)."""
        if self._made_switch:
            return
        path = _create_netns(self.switch)
        self._made_switch = True

        def setup() -> None:
            with IPRoute() as ipr:
                ipr.link("set", index=_index(ipr, "lo"), state="up")
                ipr.link("add", ifname=BRIDGE, kind="bridge")
                ipr.link("set", index=_index(ipr, BRIDGE), state="up")

        netns.run_in(path, setup)

    def add_host(self, name: str, index: int) -> Host:
        """A host namespace ``<prefix>-<name>`` with ``eth0`` = ``<base>.<index>/24`` on the
        switch and ``lo`` up; ``ip_forward`` and the other sysctls are left as the kernel made
        them."""
        if not NAME_RE.fullmatch(name) or name == SWITCH:
            raise InvalidArgument(f"host name {name!r}: expected lower-case letters, digits, '-'")
        if not 1 <= index <= 254:
            raise InvalidArgument(f"host index {index}: expected 1 to 254")
        if name in self.hosts or any(h.index == index for h in self.hosts.values()):
            raise Conflict(f"host {name} or index {index} is taken in fabric {self.prefix}")
        self.create()
        host = Host(name=name, index=index, netns=f"{self.prefix}-{name}",
                    netns_path=netns_path(f"{self.prefix}-{name}"), ip=f"{self.base_ip}.{index}")
        _create_netns(host.netns)
        self.hosts[name] = host
        port = f"p{index}"

        def plug() -> None:
            # the veth is made in the switch and its peer born inside the host as eth0
            fd = os.open(host.netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                with IPRoute() as ipr:
                    ipr.link("add", ifname=port, kind="veth",
                             peer={"ifname": "eth0", "net_ns_fd": fd})
                    ipr.link("set", index=_index(ipr, port), master=_index(ipr, BRIDGE),
                             state="up")
            finally:
                os.close(fd)

        def configure() -> None:
            with IPRoute() as ipr:
                ipr.link("set", index=_index(ipr, "lo"), state="up")
                eth0 = _index(ipr, "eth0")
                ipr.addr("add", index=eth0, address=host.ip, prefixlen=24)
                ipr.link("set", index=eth0, state="up")

        netns.run_in(self.switch_path, plug)
        netns.run_in(host.netns_path, configure)
        return host

    def remove(self) -> list[str]:
        """Delete every ``<prefix>-*`` namespace (their veths go with them)."""
        self.hosts.clear()
        self._made_switch = False
        return remove_all(self.prefix)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.remove()


def check_base(base_ip: str, *, allow_loopback: bool) -> None:
    """``base_ip`` is the first three octets of a private /24 (RFC 1918, but not 10.0.0.0/8, the
    overlay networks' default pool), or of loopback when ``allow_loopback``."""
    try:
        addr = ipaddress.IPv4Address(base_ip + ".0") if base_ip.count(".") == 2 else None
    except ValueError:
        addr = None
    ok = addr is not None and (
        (allow_loopback and addr.is_loopback)
        or any(addr in ipaddress.IPv4Network(n) for n in ("172.16.0.0/12", "192.168.0.0/16")))
    if not ok:
        raise InvalidArgument(
            f"base address {base_ip!r}: expected the first three octets of a private /24 in "
            "172.16.0.0/12 or 192.168.0.0/16, such as 172.31.10 (10.x is the overlay pool)")
