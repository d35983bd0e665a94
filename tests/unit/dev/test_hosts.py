"""Simulated hosts (shoal.dev.hosts): two hosts on a fabric reach each other over the switch and
nothing else; a socket made inside it (``shoal.net.netns.run_in``) lives in the host; ``remove_all`` cleans
up after a crash with no state (processes inside included); the machine's own namespace is the
same before, during and after; base addresses are checked."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from shoal.dev import hosts
from shoal.dev.hosts import Fabric, nsenter, remove_all
from shoal.errors import Conflict, InvalidArgument
from shoal.net import netns

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nsenter") is None
                                or shutil.which("busybox") is None,
                                reason="needs root, nsenter and busybox")

BASE = "172.31.7"


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"shoaltest-{uuid.uuid4().hex[:6]}"
    try:
        yield name
    finally:
        remove_all(name)


def _run(path: str, *argv: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(nsenter(path) + list(argv), capture_output=True, text=True,
                          timeout=timeout, check=False)


def _root_view() -> tuple[str, str]:
    link = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    addr = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    return link, addr


def test_two_hosts_ping_each_other_and_the_root_is_untouched(prefix: str) -> None:
    before = _root_view()
    fabric = Fabric(prefix, BASE)
    a = fabric.add_host("node1", 1)
    b = fabric.add_host("node2", 2)
    assert (a.netns, a.netns_path, a.ip) == (f"{prefix}-node1", f"/run/netns/{prefix}-node1",
                                              f"{BASE}.1")
    assert hosts.list_netns(prefix) == sorted([f"{prefix}-node1", f"{prefix}-node2",
                                               f"{prefix}-sw"])
    assert _root_view() == before  # nothing in the machine's namespace while it runs either

    addrs = _run(a.netns_path, "ip", "-o", "-4", "addr").stdout
    assert f"eth0    inet {BASE}.1/24" in addrs and "lo    inet 127.0.0.1/8" in addrs
    ping = _run(a.netns_path, "busybox", "ping", "-c", "1", "-W", "5", b.ip)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    back = _run(b.netns_path, "busybox", "ping", "-c", "1", "-W", "5", a.ip)
    assert back.returncode == 0, back.stdout + back.stderr
    bridge = _run(fabric.switch_path, "ip", "-o", "link", "show", "master", "br0").stdout
    assert " p1@" in bridge and " p2@" in bridge

    assert sorted(fabric.remove()) == sorted([a.netns, b.netns, fabric.switch])
    assert hosts.list_netns(prefix) == []
    assert _root_view() == before


def test_a_socket_made_in_a_host_talks_from_this_process(prefix: str) -> None:
    fabric = Fabric(prefix, BASE)
    a = fabric.add_host("node1", 1)
    b = fabric.add_host("node2", 2)
    listener = netns.run_in(b.netns_path, lambda: _listen(b.ip))
    client = netns.run_in(a.netns_path, socket.socket)
    with listener, client:
        client.settimeout(10)
        client.connect((b.ip, listener.getsockname()[1]))
        conn, peer = listener.accept()
        with conn:
            assert peer[0] == a.ip
            client.sendall(b"ping")
            assert conn.recv(4) == b"ping"
    fabric.remove()


def _listen(ip: str) -> socket.socket:
    s = socket.socket()
    s.bind((ip, 0))
    s.listen(1)
    s.settimeout(10)
    return s


def test_remove_all_after_a_crash(prefix: str) -> None:
    """A process built a fabric, left a process inside a host, and died: remove_all needs only
    the prefix."""
    script = ("import subprocess; from shoal.dev.hosts import Fabric, nsenter; "
              f"f = Fabric({prefix!r}, {BASE!r}); h = f.add_host('node1', 1); "
              "f.add_host('node2', 2); "
              "print(subprocess.Popen(nsenter(h.netns_path) + ['sleep', '60'], "
              "start_new_session=True, stdout=subprocess.DEVNULL, "
              "stderr=subprocess.DEVNULL).pid)")
    package_dir = os.path.dirname(os.path.dirname(os.path.dirname(hosts.__file__)))
    built = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           timeout=60, check=False, env={**os.environ, "PYTHONPATH": package_dir})
    assert built.returncode == 0, built.stderr
    orphan = int(built.stdout)
    try:
        assert hosts.pids_in(f"/run/netns/{prefix}-node1") == [orphan]
        assert Fabric(prefix, BASE).hosts == {}  # a new object knows nothing of them
        with pytest.raises(Conflict):
            Fabric(prefix, BASE).add_host("node3", 3)  # the switch exists: the prefix is taken
        removed = remove_all(prefix)
        assert sorted(removed) == [f"{prefix}-node1", f"{prefix}-node2", f"{prefix}-sw"]
        # killed: it would have kept its namespace alive (init reaps it: gone or a zombie)
        assert hosts._zombie(orphan)
        assert hosts.list_netns(prefix) == []
        assert remove_all(prefix) == []
    finally:
        if not hosts._zombie(orphan):
            os.kill(orphan, 9)


def test_names_and_bases_are_checked(prefix: str) -> None:
    for base in ("10.0.0", "127.0.7", "8.8.8", "172.31", "192.168.1.2", "x.y.z"):
        with pytest.raises(InvalidArgument):
            Fabric(prefix, base)
    hosts.check_base("127.0.7", allow_loopback=True)
    hosts.check_base("192.168.50", allow_loopback=False)
    with pytest.raises(InvalidArgument):
        Fabric("Bad/Prefix", BASE)
    fabric = Fabric(prefix, BASE)
    for name, index in (("sw", 1), ("node1", 0), ("node1", 255), ("a/b", 1)):
        with pytest.raises(InvalidArgument):
            fabric.add_host(name, index)
    assert hosts.list_netns(prefix) == []  # refused before anything was made
    fabric.add_host("node1", 1)
    with pytest.raises(Conflict):
        fabric.add_host("node2", 1)
    fabric.remove()
