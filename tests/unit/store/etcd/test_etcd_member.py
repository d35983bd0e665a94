"""EtcdMember: start, supervision after SIGKILL, clean stop, dying with its parent, bad setups."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shoal.dev.wait import wait_for_async
from shoal.errors import Unavailable
from shoal.store.backend import Op
from shoal.store.etcd import EtcdBackend, EtcdMember
from shoal.store.etcd.testing import client_context, make_pki, member_settings, throwaway_member


@pytest.fixture
async def member(tmp_path: Path) -> AsyncIterator[EtcdMember]:
    async with throwaway_member(tmp_path) as started:
        yield started


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie nobody reaps (our parent may be a lazy init)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


async def _until_gone(pid: int, timeout: float, what: str) -> None:
    await wait_for_async(f"{what}: etcd pid {pid} gone", lambda: _gone(pid), timeout, interval=0.02)


async def test_run_restarts_etcd_after_sigkill_and_stops_it_when_cancelled(
    member: EtcdMember,
) -> None:
    backend = EtcdBackend([member.settings.client_url],
                          ssl_context=client_context(member.settings), timeout=2.0)
    supervisor = asyncio.create_task(member.run(), name="etcd supervisor")
    try:
        written = await backend.txn([], [Op("/m/k", b"kept")])
        first = member.pid
        assert first is not None and member.healthy
        os.kill(first, signal.SIGKILL)
        async with asyncio.timeout(5):
            await member.wait_unhealthy()
        async with asyncio.timeout(15):
            await member.wait_healthy()
        assert member.pid not in (None, first) and member.restarts == 1
        revision, kvs = await backend.list("/m/")  # the data survived, the client reconnected
        assert revision == written.revision and [kv.value for kv in kvs] == [b"kept"]
    finally:
        second = member.pid
        supervisor.cancel()
        with pytest.raises(asyncio.CancelledError):
            await supervisor
        await backend.close()
    assert second is not None and _gone(second) and member.pid is None and not member.healthy


async def test_stop_leaves_no_etcd_process(member: EtcdMember) -> None:
    pid = member.pid
    assert pid is not None
    await member.stop()
    assert _gone(pid) and member.pid is None and not member.healthy
    await member.stop()  # idempotent


async def test_etcd_dies_with_its_parent_even_on_sigkill(tmp_path: Path) -> None:
    settings = member_settings(tmp_path, make_pki(tmp_path / "pki"))
    script = textwrap.dedent(f"""
        import asyncio, sys
        from pathlib import Path
        from shoal.store.etcd import EtcdMember
        from shoal.store.etcd.testing import make_pki, member_settings
        async def main():
            member = EtcdMember(member_settings(Path({str(tmp_path)!r}),
                                                make_pki(Path({str(tmp_path / "pki")!r})),
                                                client_url={settings.client_url!r},
                                                peer_url={settings.peer_url!r}))
            await member.start()
            print(member.pid, flush=True)
            await asyncio.Event().wait()
        asyncio.run(main())
    """)
    parent = await asyncio.create_subprocess_exec(sys.executable, "-c", script,
                                                  stdout=asyncio.subprocess.PIPE)
    etcd_pid = 0
    try:
        async with asyncio.timeout(20):
            line = await parent.stdout.readline() if parent.stdout else b""
        etcd_pid = int(line or 0)
        assert etcd_pid and not _gone(etcd_pid), "the child shoald did not start etcd"
        parent.kill()
        await parent.wait()
        await _until_gone(etcd_pid, 5, "after SIGKILL of its parent")
    finally:
        if parent.returncode is None:
            parent.kill()
            await parent.wait()
        if etcd_pid and not _gone(etcd_pid):
            os.kill(etcd_pid, signal.SIGKILL)
        shutil.rmtree(settings.data_dir, ignore_errors=True)


async def test_missing_etcd_binary_is_one_clear_line(tmp_path: Path) -> None:
    settings = member_settings(tmp_path, make_pki(tmp_path / "pki"),
                               etcd_binary=str(tmp_path / "no-such-etcd"))
    with pytest.raises(Unavailable) as caught:
        await EtcdMember(settings).start()
    assert str(caught.value) == "etcd is not installed: apt-get install etcd-server"


async def test_a_failed_start_says_why_and_leaves_nothing_running(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = member_settings(tmp_path, make_pki(tmp_path / "pki"),
                                   client_url=f"https://127.0.0.1:{port}")
        member = EtcdMember(settings)
        try:
            with pytest.raises(Unavailable, match="exited with code 1 while starting.*in use"):
                await member.start()
            assert member.pid is None and not member.healthy
        finally:
            await member.stop()
            shutil.rmtree(settings.data_dir, ignore_errors=True)


async def test_a_paused_etcd_does_not_answer_and_is_not_called_stopped(member: EtcdMember) -> None:
    supervisor = asyncio.create_task(member.run(), name="etcd supervisor")
    pid = member.pid
    assert pid is not None and member.trouble is None
    os.kill(pid, signal.SIGSTOP)
    try:
        async with asyncio.timeout(10):
            await member.wait_unhealthy()
        assert member.pid == pid  # not restarted: it runs, it does not answer
        trouble = member.trouble or ""
        assert trouble.startswith("this manager's store (etcd) does not answer: health check failed"), trouble
    finally:
        os.kill(pid, signal.SIGCONT)
    try:
        async with asyncio.timeout(10):
            await member.wait_healthy()
        assert member.trouble is None
    finally:
        supervisor.cancel()
        with pytest.raises(asyncio.CancelledError):
            await supervisor


async def test_a_full_disk_fails_a_launch_in_one_line_and_the_supervisor_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    settings = member_settings(tmp_path, make_pki(tmp_path / "pki"))
    settings.data_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.log_path.symlink_to("/dev/full")  # every write to etcd's log: ENOSPC
    member = EtcdMember(settings)
    supervisor = asyncio.create_task(member.run(), name="etcd supervisor")
    try:
        await wait_for_async("a failed launch logged", lambda: "start failed" in caplog.text, timeout=10)
        line = next(r.getMessage() for r in caplog.records if "start failed" in r.getMessage())
        assert line == (f"etcd {settings.name}: start failed: etcd {settings.name} cannot start: "
                        f"No space left on device ({settings.log_path})")
        assert not supervisor.done() and not member.healthy and member.pid is None
        assert member.trouble == (f"this manager's store (etcd) is not running: etcd {settings.name} "
                                  f"cannot start: No space left on device ({settings.log_path})")
        settings.log_path.unlink()  # space again: the next attempt starts etcd
        async with asyncio.timeout(30):
            await member.wait_healthy()
    finally:
        supervisor.cancel()
        with pytest.raises(asyncio.CancelledError):
            await supervisor
        shutil.rmtree(settings.data_dir, ignore_errors=True)


def _listening_ports(pid: int) -> set[int]:
    """TCP ports ``pid`` listens on, from /proc (no ss/netstat needed)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


async def test_etcd_listens_only_on_the_two_tls_urls(member: EtcdMember) -> None:
    assert member.pid is not None
    settings = member.settings
    expected = {int(settings.client_url.rsplit(":", 1)[1]), int(settings.peer_url.rsplit(":", 1)[1])}
    assert _listening_ports(member.pid) == expected


def test_etcd_log_is_capped_in_place(tmp_path: Path) -> None:
    """The log file etcd holds open (O_APPEND) is emptied in place past the cap, its content
    kept as .log.1, and etcd's next write lands at the start of the same file."""
    from shoal.store.etcd.member import cap_log

    path = tmp_path / "etcd.log"
    with open(path, "ab") as held:  # as etcd holds it
        held.write(b"x" * 100)
        held.flush()
        assert cap_log(path, max_bytes=1000) is False
        held.write(b"y" * 1000)
        held.flush()
        assert cap_log(path, max_bytes=1000) is True
        held.write(b"after\n")
        held.flush()
    assert path.read_bytes() == b"after\n"
    assert (tmp_path / "etcd.log.1").read_bytes() == b"x" * 100 + b"y" * 1000
