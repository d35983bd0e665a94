"""shoal.net.netns on the real kernel: namespaces as bind mounts, made and entered by threads.
Every namespace is ours (under tmp_path or /run/netns/shoaltest-*) and removed even on failure;
the root netns is only read."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from shoal.net import netns
from shoal.net.errors import NetError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="namespaces need CAP_SYS_ADMIN")


def mounted(path: Path) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == str(path) for line in f)


def own_netns_inode() -> int:
    return os.stat(f"/proc/self/task/{threading.get_native_id()}/ns/net").st_ino


def lo_is_up() -> bool:
    with IPRoute() as ipr:
        lo = ipr.link("get", index=ipr.link_lookup(ifname="lo")[0])[0]
        return bool(lo["flags"] & 1)


@pytest.fixture
def run_path() -> Iterator[Path]:
    path = Path(f"/run/netns/shoaltest-ns-{os.getpid()}")
    yield path
    netns.remove(path)


@pytest.fixture
def tmp_ns(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "deeper" / "ns"
    yield path
    netns.remove(path)


@pytest.mark.parametrize("where", ["tmp", "run"])
def test_create_enter_remove(where: str, tmp_ns: Path, run_path: Path) -> None:
    path = tmp_ns if where == "tmp" else run_path
    assert not netns.exists(path)
    netns.create(path)
    assert netns.exists(path) and mounted(path)
    inside = netns.run_in(path, own_netns_inode)
    assert inside == os.stat(path).st_ino != own_netns_inode()
    assert netns.run_in(path, lo_is_up)
    with pytest.raises(NetError, match="already exists"):
        netns.create(path)
    assert netns.exists(path)                       # the failed create left it alone
    netns.remove(path)
    assert not netns.exists(path) and not mounted(path) and not path.exists()
    netns.remove(path)                              # idempotent


def test_exists_is_false_for_a_plain_file(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("")
    assert not netns.exists(plain)
    assert not netns.exists(tmp_path / "missing")


def test_failed_create_leaves_nothing(tmp_ns: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise OSError("lo refused")

    # Fails after the bind mount is made: the mount and the file must both go.
    monkeypatch.setattr(netns, "_lo_up", broken)
    with pytest.raises(OSError, match="lo refused"):
        netns.create(tmp_ns)
    assert not mounted(tmp_ns) and not tmp_ns.exists()


def test_run_in_returns_and_raises(tmp_ns: Path) -> None:
    netns.create(tmp_ns)
    assert netns.run_in(tmp_ns, lambda: 42) == 42

    def fail() -> None:
        raise KeyError("from inside")

    with pytest.raises(KeyError, match="from inside"):
        netns.run_in(tmp_ns, fail)
    with pytest.raises(NetError, match="open netns"):
        netns.run_in(tmp_ns.parent / "missing", lambda: None)
    plain = tmp_ns.parent / "plain"
    plain.write_text("")
    with pytest.raises(NetError, match="setns"):
        netns.run_in(plain, lambda: None)


def test_sockets_made_inside_stay_inside(tmp_ns: Path) -> None:
    # lo of the new netns carries the connection, whichever thread uses the sockets later.
    netns.create(tmp_ns)

    def listener() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        return s

    with netns.run_in(tmp_ns, listener) as server:
        port = server.getsockname()[1]

        def connect() -> socket.socket:
            return socket.create_connection(("127.0.0.1", port), timeout=5)

        with netns.run_in(tmp_ns, connect) as client:
            server.settimeout(5)
            conn, _ = server.accept()
            with conn:
                client.sendall(b"ping")
                assert conn.recv(4) == b"ping"


def read_forward() -> str:
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        return f.read().strip()


def test_write_sysctl_only_in_that_netns(tmp_ns: Path) -> None:
    netns.create(tmp_ns)
    root_before = read_forward()                    # the root netns: read, never written
    flipped = "0" if root_before == "1" else "1"
    netns.run_in(tmp_ns, lambda: netns.write_sysctl("net.ipv4.ip_forward", flipped))
    assert netns.run_in(tmp_ns, read_forward) == flipped
    assert read_forward() == root_before
    netns.run_in(tmp_ns, lambda: netns.write_sysctl("net/ipv4/conf/lo/forwarding", "0"))
    with pytest.raises(NetError, match="net.ipv4.no_such_key"):
        netns.run_in(tmp_ns, lambda: netns.write_sysctl("net.ipv4.no_such_key", "1"))
