"""The node's containers as the Engine API's /containers shows and drives them: found by ID,
ID prefix or name as dockerd resolves them, their state read from the shim's files, their
inspect and list shapes, and kill, stop and wait. Called by shoal.api.routes_containers.

A task container stopped or killed here is seen by its controller (it waits on the shim): its
task ends (FAILED for a non-zero exit) and the swarm replaces it, as with Docker.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

from shoal.errors import Conflict, InvalidArgument, NotFound
from shoal.events import EventLog
from shoal.exec.runc.health import HealthState
from shoal.exec.runc.logfile import format_time, parse_time
from shoal.exec.runc.record import publish, read_record
from shoal.exec.runc.state import RuncConfig, read_json, shim_alive, wait_pid

__all__ = ["ContainerState", "Containers", "parse_signal"]

DEFAULT_STOP = 10  # seconds: Docker's stop timeout
ZERO_TIME = "0001-01-01T00:00:00Z"


def parse_signal(value: str | None, default: int = int(signal.SIGKILL)) -> int:
    """"KILL", "SIGKILL", "9" as a number (moby's signal.ParseSignal words on error)."""
    text = (value or "").strip().upper()
    if not text:
        return default
    if text.isdigit():
        number = int(text)
        if number == 0 or number > 64:
            raise InvalidArgument(f"Invalid signal: {value}")
        return number
    try:
        return int(signal.Signals[text if text.startswith("SIG") else "SIG" + text])
    except KeyError:
        raise InvalidArgument(f"Invalid signal: {value}") from None


class ContainerState:
    """What the shim's files say of one container, read once."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.cid = directory.name
        self.shim = read_json(directory / "shim.json")
        self.exit = read_json(directory / "exit.json")
        self.running = self.shim is not None and self.exit is None and shim_alive(self.shim,
                                                                                  self.cid)

    @property
    def pid(self) -> int:
        return int((self.shim or {}).get("pid", 0)) if self.running else 0

    @property
    def shim_pid(self) -> int:
        return int((self.shim or {}).get("shim_pid", 0)) if self.running else 0

    @property
    def status(self) -> str:
        if self.running:
            return "running"
        if self.exit is not None and "error" not in self.exit:
            return "exited"
        if self.shim is not None:  # its shim died without a word
            return "dead"
        return "created"

    @property
    def exit_code(self) -> int:
        if self.exit is None:
            return 0
        return 128 if "error" in self.exit else max(int(self.exit.get("code", 0)), 0)

    def started_at(self) -> str:
        if self.shim is None:
            return ZERO_TIME
        return format_time(int((self.dir / "shim.json").stat().st_mtime_ns))

    def finished_at(self) -> str:
        if self.exit is None or not self.exit.get("finished_at"):
            return ZERO_TIME
        return format_time(int(self.exit["finished_at"]))

    def health(self) -> dict[str, Any] | None:
        if not (self.dir / "healthcheck.json").exists():
            return None
        h = HealthState.load(self.dir / "health.json")
        return {"Status": h.status if self.running else "unhealthy" if h.status == "unhealthy"
                else h.status, "FailingStreak": h.failing_streak, "Log": []}

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Status": self.status, "Running": self.running, "Paused": False,
            "Restarting": False, "OOMKilled": bool((self.exit or {}).get("oom")),
            "Dead": self.status == "dead", "Pid": self.pid, "ExitCode": self.exit_code,
            "Error": str((self.exit or {}).get("error", "")), "StartedAt": self.started_at(),
            "FinishedAt": self.finished_at()}
        health = self.health()
        if health is not None:
            out["Health"] = health
        return out

    def status_text(self, now: float) -> str:
        """docker ps's STATUS column: "Up 5 minutes (healthy)", "Exited (0) 3 seconds ago"."""
        if self.running:
            started = (self.dir / "shim.json").stat().st_mtime
            health = self.health()
            suffix = ""
            if health is not None:
                suffix = (" (health: starting)" if health["Status"] == "starting"
                          else f" ({health['Status']})")
            return f"Up {human_duration(now - started)}{suffix}"
        if self.status == "created":
            return "Created"
        if self.status == "dead":
            return "Dead"
        finished = int((self.exit or {}).get("finished_at", 0)) / 1e9
        return f"Exited ({self.exit_code}) {human_duration(now - finished)} ago"


def human_duration(seconds: float) -> str:
    """go-units HumanDuration."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // (24 * 7)} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // (24 * 30)} months"
    return f"{hours // (24 * 365)} years"


class Containers:
    """The node's containers (those with a record), by ID or name."""

    def __init__(self, config: RuncConfig, events: EventLog | None = None) -> None:
        self.cfg = config
        self.events = events
        self._waiters: dict[str, list[tuple[str, asyncio.Future[int]]]] = {}

    def ids(self) -> list[str]:
        root = self.cfg.containers
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir()
                      if len(p.name) == 64 and (p / "container.json").is_file())

    def record(self, cid: str) -> dict[str, Any]:
        rec = read_record(self.cfg.containers / cid)
        if rec is None:
            raise NotFound(f"No such container: {cid}")
        return rec

    def resolve(self, ref: str) -> str:
        """dockerd's order: full ID, exact name, then a unique ID prefix."""
        ids = self.ids()
        if ref in ids:
            return ref
        name = "/" + ref.lstrip("/")
        for cid in ids:
            rec = read_record(self.cfg.containers / cid)
            if rec is not None and rec.get("Name") == name:
                return cid
        found = [cid for cid in ids if ref and cid.startswith(ref)]
        if len(found) > 1:
            raise InvalidArgument(f"multiple IDs found with provided prefix: {ref}")
        if not found:
            raise NotFound(f"No such container: {ref}")
        return found[0]

    def state(self, cid: str) -> ContainerState:
        return ContainerState(self.cfg.containers / cid)

    def log_path(self, cid: str) -> Path:
        return self.cfg.containers / cid / f"{cid}-json.log"

    def publish(self, cid: str, action: str, extra: dict[str, str] | None = None) -> None:
        publish(self.events, self.cfg.containers / cid, action, extra)

    # --- actions -------------------------------------------------------------------------------

    async def _runc_kill(self, cid: str, sig: int) -> None:
        proc = await asyncio.create_subprocess_exec(
            *self.cfg.runc, "kill", cid, str(sig), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        if proc.returncode and self.state(cid).running:
            raise Conflict(f"Cannot kill container: {cid}: {err.decode(errors='replace').strip()}")

    async def kill(self, cid: str, sig: int) -> None:
        st = self.state(cid)
        if not st.running:
            raise Conflict(f"Cannot kill container: {cid}: container {cid} is not running")
        self.publish(cid, "kill", {"signal": str(sig)})
        await self._runc_kill(cid, sig)
        if sig == signal.SIGKILL:
            await wait_pid(st.shim_pid, DEFAULT_STOP)

    async def stop(self, cid: str, timeout: int | None = None, sig: int | None = None) -> bool:
        """False when it was not running (the API's 304)."""
        st = self.state(cid)
        if not st.running:
            return False
        config = self.record(cid).get("Config") or {}
        if sig is None:
            sig = parse_signal(config.get("StopSignal"), int(signal.SIGTERM))
        if timeout is None:
            timeout = int(config.get("StopTimeout", DEFAULT_STOP))
        self.publish(cid, "kill", {"signal": str(sig)})
        await self._runc_kill(cid, sig)
        if timeout < 0 or not await wait_pid(st.shim_pid, timeout):
            if timeout >= 0:
                self.publish(cid, "kill", {"signal": str(int(signal.SIGKILL))})
            if self.state(cid).running:
                await self._runc_kill(cid, int(signal.SIGKILL))
            await wait_pid(st.shim_pid, DEFAULT_STOP)
        self.publish(cid, "stop")
        return True

    async def wait(self, cid: str, condition: str = "not-running") -> int:
        """The exit code once the condition holds: ``not-running`` (now if it is not),
        ``next-exit``, ``removed``. Standalone containers are told of here (``exited``,
        ``removed``), so an exit followed at once by its removal (--rm) keeps its code."""
        condition = condition or "not-running"
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidArgument(f"invalid condition: {condition!r}")
        st = self.state(cid)
        if condition == "not-running" and not st.running and st.status != "created":
            return st.exit_code
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(cid, []).append((condition, future))
        try:
            if st.running and not (st.dir / "run.json").exists():
                # a task's container: its shim is waited for (nobody calls exited)
                waiter: asyncio.Future[bool] = asyncio.ensure_future(wait_pid(st.shim_pid))
                done, _ = await asyncio.wait([waiter, future],  # type: ignore[type-var]
                                             return_when=asyncio.FIRST_COMPLETED)
                if future in done:
                    waiter.cancel()
                    return future.result()
                if condition != "removed":
                    return self.state(cid).exit_code
            return await future
        finally:
            waiters = self._waiters.get(cid, [])
            if (condition, future) in waiters:
                waiters.remove((condition, future))

    def exited(self, cid: str, code: int) -> None:
        for condition, future in self._waiters.get(cid, []):
            if condition != "removed" and not future.done():
                future.set_result(code)

    def removed(self, cid: str, code: int) -> None:
        for _condition, future in self._waiters.pop(cid, []):
            if not future.done():
                future.set_result(code)


def since_param(value: str) -> int:
    """``since``/``until`` of /logs: unix seconds with an optional fraction, or RFC 3339."""
    if not value:
        return 0
    try:
        return int(float(value) * 1_000_000_000)
    except ValueError:
        pass
    try:
        return parse_time(value.replace("+00:00", "Z"))
    except ValueError:
        raise InvalidArgument(f"invalid value for since/until: {value!r}") from None


def now() -> float:
    return time.time()
