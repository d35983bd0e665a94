"""``EtcdMember``: start, health-check, restart and stop the one etcd process of a manager.

Called by shoald on managers (and by tests): ``await member.start()`` returns once etcd serves
client requests over mutual TLS (which needs a quorum: a lone new member, or a running cluster it
joins); ``await member.run()`` supervises until cancelled, restarting etcd with bounded, jittered
backoff when it exits and keeping ``healthy`` current so the manager stops acting as leader while
etcd is down; ``await member.stop()`` ends it (SIGTERM, then SIGKILL after ``stop_timeout``).
etcd runs in its own session with PR_SET_PDEATHSIG=SIGKILL, so it dies with shoald even when
shoald is SIGKILLed. Its output goes to ``<data_dir>.log``, kept under 16 MiB (one older
``.log.1``). Settings and flags live in
``settings.py``. The health check is etcd's status over gRPC: once the managers turn etcd's
authentication on, its JSON gateway refuses every request that carries a client certificate.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
from collections.abc import Awaitable, Callable
from contextlib import suppress
from io import FileIO
from pathlib import Path

from shoal import aio
from shoal.errors import ShoalError, Unavailable
from shoal.store.etcd.grpc_client import GrpcEtcdClient
from shoal.store.etcd.messages import Status
from shoal.store.etcd.settings import EtcdMemberSettings, command_line, find_etcd

__all__ = ["EtcdMember", "EtcdMemberSettings"]

log = logging.getLogger(__name__)


class EtcdMember:
    def __init__(
        self,
        settings: EtcdMemberSettings,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._backoff = aio.Backoff(initial=settings.restart_backoff_initial,
                                    cap=settings.restart_backoff_max, jitter=0.25)
        self._process: asyncio.subprocess.Process | None = None
        self._probe: GrpcEtcdClient | None = None
        self._launches = 0
        self._served = False  # once etcd has served, --force-new-cluster is never passed again
        self._started_at = 0.0
        self._stopping = False
        self._healthy = asyncio.Event()
        self._unhealthy = asyncio.Event()
        self._unhealthy.set()
        self.status: Status | None = None  # the last answer to a health check
        self._reason = "not started"  # why it is unhealthy, as last seen

    @property
    def healthy(self) -> bool:
        """etcd is running and answered its last health check."""
        return self._healthy.is_set()

    @property
    def trouble(self) -> str | None:
        """Why etcd cannot serve now, in one line; None while healthy. A paused or stuck etcd
        is running but does not answer, which is not the same as not running."""
        if self.healthy:
            return None
        state = "does not answer" if self.pid is not None else "is not running"
        return f"this manager's store (etcd) {state}: {self._reason}"

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    @property
    def restarts(self) -> int:
        return max(0, self._launches - 1)

    async def reload_certificate(self) -> None:
        """After the certificate files were replaced (a renewal): etcd reads them again on each
        handshake by itself; the health checks' own connections present the new pair from now
        on (those already open keep theirs)."""
        settings = self.settings
        if self._probe is not None:
            await self._probe.use_certificate(cert_pem=settings.cert_file.read_bytes(),
                                              key_pem=settings.key_file.read_bytes(),
                                              ca_pem=settings.trusted_ca_file.read_bytes())

    async def wait_healthy(self) -> None:
        await self._healthy.wait()

    async def wait_unhealthy(self) -> None:
        await self._unhealthy.wait()

    async def start(self) -> None:
        """Spawn etcd and wait until it serves; raises Unavailable (and leaves nothing running)."""
        self._stopping = False
        if self.pid is None:
            try:
                await self._launch()
            except BaseException:
                await self.stop()
                raise

    async def run(self) -> None:
        """Supervise until cancelled; then (or after ``stop()``) etcd is stopped."""
        find_etcd(self.settings.etcd_binary)  # a missing binary is permanent: raise, no retries
        self._stopping = False
        try:
            if self.pid is None:
                await self._relaunch()
            while not self._stopping:
                process = self._process
                assert process is not None
                if await self._exited_or_probed(process):
                    if self._stopping:
                        break
                    uptime = asyncio.get_running_loop().time() - self._started_at
                    if uptime >= self.settings.restart_backoff_reset_after:
                        self._backoff.reset()
                    self._set_health(False, f"etcd exited with code {process.returncode} after "
                                            f"{uptime:.1f} s ({log_tail(self.settings.log_path)})")
                    await self._relaunch()
        finally:
            await self.stop()

    async def stop(self) -> None:
        """SIGTERM, wait up to ``stop_timeout``, then SIGKILL; reap. Idempotent."""
        self._stopping = True
        process, self._process = self._process, None
        if process is not None:
            await self._terminate(process)
        self._set_health(False, "stopped")
        if self._probe is not None:
            probe, self._probe = self._probe, None
            await probe.close()

    async def _terminate(self, process: asyncio.subprocess.Process) -> None:
        if process.returncode is not None:
            return
        with suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        if await _reaped(process, self.settings.stop_timeout):
            return
        log.warning("etcd %s ignored SIGTERM for %g s; killing it",
                    self.settings.name, self.settings.stop_timeout)
        with suppress(ProcessLookupError):
            process.kill()
        if not await _reaped(process, self.settings.stop_timeout):
            log.error("etcd %s (pid %d) did not exit after SIGKILL", self.settings.name, process.pid)

    async def _relaunch(self) -> None:
        """Launch, retrying with backoff until it serves or ``stop()`` is called."""
        failed = False  # a launch that failed before spawning counts no launch: back off too
        while not self._stopping:
            if self._launches or failed:
                delay = self._backoff.next()
                log.warning("etcd %s: restarting in %.1f s (attempt %d)",
                            self.settings.name, delay, self._backoff.attempt)
                await self._sleep(delay)
                if self._stopping:
                    return
            try:
                await self._launch()
                return
            except Unavailable as e:
                failed = True
                self._set_health(False, e.message)
                log.error("etcd %s: start failed: %s", self.settings.name, e)

    async def _launch(self) -> None:
        settings = self.settings
        binary = find_etcd(settings.etcd_binary)
        args = die_with_parent(command_line(binary, settings, first_launch=not self._served))
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
        try:  # a full or read-only disk: said in one line, and the supervisor tries again later
            settings.data_dir.parent.mkdir(parents=True, exist_ok=True)
            with _open_log(settings.log_path, args) as out:
                process = await asyncio.create_subprocess_exec(
                    *args, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out, env=env,
                    start_new_session=True)
        except OSError as exc:
            raise Unavailable(f"etcd {settings.name} cannot start: {exc.strerror or exc}"
                              f"{f' ({exc.filename})' if exc.filename else ''}") from exc
        self._launches += 1
        self._process = process
        self._started_at = asyncio.get_running_loop().time()
        if self._probe is None:
            self._probe = GrpcEtcdClient([settings.client_url], cert_file=settings.cert_file,
                                         key_file=settings.key_file,
                                         ca_file=settings.trusted_ca_file,
                                         timeout=settings.probe_timeout)
        try:
            await self._wait_serving(process)
        except BaseException:
            self._process = None
            await self._terminate(process)  # a failed start leaves nothing running
            raise
        self._served = True
        self._set_health(True, f"serving on {settings.client_url} (pid {process.pid})")

    async def _wait_serving(self, process: asyncio.subprocess.Process) -> None:
        settings, probe = self.settings, self._probe
        assert probe is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.start_timeout
        while True:
            try:
                self.status = await probe.status()
                return
            except ShoalError as e:
                reason = e.message
            if process.returncode is not None:
                raise Unavailable(f"etcd {settings.name} exited with code {process.returncode} "
                                  f"while starting: {log_tail(settings.log_path)}")
            if loop.time() >= deadline:
                raise Unavailable(f"etcd {settings.name} did not serve within "
                                  f"{settings.start_timeout:g} s ({reason}); see "
                                  f"{settings.log_path}")
            with suppress(TimeoutError):
                async with aio.timeout(0.05):  # poll period; returns at once if etcd exits
                    await process.wait()

    async def _exited_or_probed(self, process: asyncio.subprocess.Process) -> bool:
        """Wait one health interval: True if etcd exited, else probe it and return False."""
        try:
            async with aio.timeout(self.settings.health_interval):
                await process.wait()
            return True
        except TimeoutError:
            pass
        if self._probe is None:  # stop() is under way
            return False
        await asyncio.to_thread(cap_log, self.settings.log_path)
        try:
            self.status = await self._probe.status()
            self._set_health(True, "answering again")
        except ShoalError as e:
            self._set_health(False, f"health check failed: {e.message}")
        return False

    def _set_health(self, healthy: bool, reason: str) -> None:
        if not healthy:
            self._reason = reason
        if healthy == self.healthy:
            return
        level = logging.INFO if healthy else logging.WARNING
        before, after = ("unhealthy", "healthy") if healthy else ("healthy", "unhealthy")
        log.log(level, "etcd %s: %s->%s: %s", self.settings.name, before, after, reason)
        (self._healthy if healthy else self._unhealthy).set()
        (self._unhealthy if healthy else self._healthy).clear()


LOG_MAX_BYTES = 16 * 1024 * 1024  # then the log moves to <log>.1 (one kept) and starts again


def cap_log(path: Path, max_bytes: int = LOG_MAX_BYTES) -> bool:
    """Keep etcd's log under ``max_bytes``: past it, its content moves to ``<log>.1`` and the
    file is emptied in place (etcd holds it open with O_APPEND, so its next line lands at the
    start again; a rename would leave etcd writing to the moved file). Blocking; True if it
    rotated."""
    try:
        if path.stat().st_size <= max_bytes:
            return False
        shutil.copyfile(path, path.with_name(path.name + ".1"))
        os.truncate(path, 0)
    except OSError as exc:
        log.warning("etcd log %s not rotated: %s", path, exc)
        return False
    return True


def _open_log(path: Path, args: list[str]) -> FileIO:
    """etcd's log, opened for appending, with a marker line naming this launch."""
    cap_log(path)
    # Unbuffered: a marker that cannot be written (ENOSPC) fails here, not again on close.
    out = open(path, "ab", buffering=0)  # noqa: SIM115 - the caller closes it once etcd has it
    try:
        out.write(f"--- shoal: {' '.join(args)}\n".encode())
    except OSError as exc:
        out.close()
        if exc.filename is None:
            exc.filename = str(path)
        raise
    return out


async def _reaped(process: asyncio.subprocess.Process, timeout: float) -> bool:
    """Whether ``process`` is gone within ``timeout``. The child watcher's wake-up can be lost
    (its callback goes to the loop that started the process), so the process table is checked
    as well: a bounded wait, never a hang."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            async with aio.timeout(0.2):
                await process.wait()
            return True
        except TimeoutError:
            if not _alive(process.pid):
                return True
    return not _alive(process.pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def die_with_parent(args: list[str]) -> list[str]:
    """``args`` run through setpriv(1) (util-linux), which sets PR_SET_PDEATHSIG=SIGKILL and
    execs them: the child dies when shoald's event-loop thread does, even by SIGKILL.

    Not a ``preexec_fn``: Python code between fork and exec is unsafe in a threaded process (the
    gRPC client's threads; a restarted etcd was seen to abort there), and without one Python
    spawns with vfork, which runs no fork handlers at all.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise Unavailable("setpriv is not installed (Debian package util-linux): shoald needs it "
                          "to tie etcd's life to its own")
    return [setpriv, "--pdeathsig", "KILL", "--", *args]


def log_tail(path: Path) -> str:
    """The most telling line etcd wrote since its last launch (an error, else the last one)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 16384))
            text = f.read().decode(errors="replace")
    except OSError:
        return f"no log at {path}"
    lines = [line for line in text.rsplit("--- shoal:", 1)[-1].splitlines()[1:] if line.strip()]
    errors = [line for line in lines if any(f'"level":"{lv}"' in line for lv in _BAD_LEVELS)]
    line = (errors or lines or [""])[-1]
    try:
        doc = json.loads(line)
        line = f"{doc.get('msg', '')}: {doc['error']}" if "error" in doc else doc.get("msg", line)
    except (ValueError, AttributeError):
        pass
    return f"{line[:300]} (log: {path})"


_BAD_LEVELS = ("error", "fatal", "panic")
