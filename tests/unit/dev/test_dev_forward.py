"""The ``--publish-host`` forwarder (shoal.dev.forward), as a real detached process: 127.0.0.1:PORT
in this namespace reaches a listener on a simulated host's IP:PORT (1 MiB each way, with a
half-close), a closed port on the host just closes the client's connection, and SIGTERM ends it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.dev import forward, procs
from shoal.dev.hosts import Fabric, Host
from shoal.net import netns

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nsenter") is None,
                                reason="needs root and nsenter")


@pytest.fixture
def host() -> Iterator[Host]:
    fabric = Fabric(f"shoaltest-{uuid.uuid4().hex[:6]}", "172.31.7")
    try:
        yield fabric.add_host("node1", 1)
    finally:
        fabric.remove()


def _echo_upper(listener: socket.socket) -> None:
    """Serve one connection: read to EOF, send it back upper-cased, close."""
    conn, _ = listener.accept()
    with conn:
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
        conn.sendall(data.upper())


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_forwards_to_the_host_and_stops_on_sigterm(host: Host, tmp_path: Path) -> None:
    listeners = forward.bind([0, 0])
    live, dead = (s.getsockname()[1] for s in listeners)
    log = tmp_path / "forward.log"
    proc = forward.spawn(listeners, host.netns_path, host.ip, log)
    assert all(s.fileno() == -1 for s in listeners)  # handed over
    try:
        server = netns.run_in(host.netns_path, lambda: socket.create_server((host.ip, live)))
        with server:
            server.settimeout(20)
            serving = threading.Thread(target=_echo_upper, args=(server,))
            serving.start()
            payload = os.urandom(1 << 20).hex().encode()[: 1 << 20]
            with socket.create_connection(("127.0.0.1", live), timeout=20) as c:
                c.sendall(payload)
                c.shutdown(socket.SHUT_WR)  # the half-close reaches the host's side
                got = b""
                while chunk := c.recv(65536):
                    got += chunk
            serving.join(timeout=20)
        assert got == payload.upper()

        # nothing listens on the host's other port: the client sees its connection closed
        with socket.create_connection(("127.0.0.1", dead), timeout=20) as c:
            assert c.recv(10) == b""
        assert procs.alive(proc.pid, str(log))  # how `shoal dev down` recognises it
    finally:
        _stop(proc)
    assert proc.returncode == 0  # SIGTERM: a clean exit
    assert f"172.31.7.1:{dead}: [Errno 111]".encode() in log.read_bytes()  # logged, then closed
    assert b"Traceback" not in log.read_bytes()


def test_a_port_in_use_is_refused_at_once() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        free = forward.bind([0])[0]
        free_port = free.getsockname()[1]
        free.close()
        with pytest.raises(OSError):
            forward.bind([free_port, port])
        # all or none: the first one was released again
        forward.bind([free_port])[0].close()


def test_sigterm_ends_an_idle_forwarder(host: Host, tmp_path: Path) -> None:
    log = tmp_path / "forward.log"
    proc = forward.spawn(forward.bind([0]), host.netns_path, host.ip, log)
    try:
        deadline = time.monotonic() + 20
        while b"forwarding" not in log.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.terminate()
        assert proc.wait(timeout=20) == 0
    finally:
        _stop(proc)
