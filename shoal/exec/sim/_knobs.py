"""How tests and users steer a sim task: environment knobs and the run-time control file.

Environment (the task's ContainerSpec.Env, read once per controller):

    SIM_REJECT=<message>        prepare() fails: task REJECTED with <message>
    SIM_START_SECONDS=<s>       start() takes <s> seconds (default a few ms)
    SIM_EXIT_AFTER=<s>          the "process" exits <s> seconds after it started ...
    SIM_EXIT_CODE=<n>           ... with code <n> (default 0: COMPLETE; non-zero: FAILED)
    SIM_UNHEALTHY_AFTER=<s>     with a health check: unhealthy <s> s after start (FAILED)

Control file ``<state_dir>/sim/<task_id>/control``, polled every CONTROL_POLL by wait() (and
read once by start() with a health check); one word per file, trailing whitespace ignored:

    exit N       the process exits with code N (0: COMPLETE, else FAILED "non-zero exit (N)")
    fail         the same as ``exit 1``
    unhealthy    the health check fails: FAILED "...: dockerexec: unhealthy container"

Anything else is ignored, with a warning in the log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CONTROL_POLL", "UNHEALTHY_EXIT_CODE", "Knobs", "Verdict", "read_control"]

log = logging.getLogger(__name__)

CONTROL_POLL = 0.1  # seconds between reads of the control file
UNHEALTHY_EXIT_CODE = 137  # the container is killed after it turned unhealthy
STEP_SECONDS = 0.005  # how long prepare and start take by default: "a few ms"
FIRST_CHECK_CAP = 0.05  # the first health check passes after min(interval, this)
_DEFAULT_INTERVAL = 30.0  # Docker's default health check interval


@dataclass(frozen=True)
class Verdict:
    """How the process ended: an exit code, or killed for being unhealthy."""

    code: int
    unhealthy: bool = False


def _seconds(env: dict[str, str], key: str) -> float | None:
    raw = env.get(key)
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        log.warning("sim: ignoring %s=%r: not a number of seconds", key, raw)
        return None


@dataclass(frozen=True)
class Knobs:
    reject: str | None = None
    start_seconds: float = STEP_SECONDS
    exit_after: float | None = None
    exit_code: int = 0
    unhealthy_after: float | None = None
    healthcheck: bool = False
    first_check: float = 0.0  # seconds until the first health check passes

    @classmethod
    def from_spec(cls, container_spec: dict[str, Any] | None) -> Knobs:
        spec = container_spec or {}
        env: dict[str, str] = {}
        for item in spec.get("Env") or []:
            key, _, value = str(item).partition("=")
            env[key] = value
        health = spec.get("Healthcheck") or {}
        test = health.get("Test") or []
        has_check = bool(test) and test[0] != "NONE"
        interval_ns = health.get("Interval") or 0
        interval = interval_ns / 1e9 if interval_ns else _DEFAULT_INTERVAL
        try:
            code = int(env.get("SIM_EXIT_CODE", "0"))
        except ValueError:
            code = 1
        start = _seconds(env, "SIM_START_SECONDS")
        return cls(
            reject=env.get("SIM_REJECT"),
            start_seconds=STEP_SECONDS if start is None else start,
            exit_after=_seconds(env, "SIM_EXIT_AFTER"),
            exit_code=code,
            unhealthy_after=_seconds(env, "SIM_UNHEALTHY_AFTER") if has_check else None,
            healthcheck=has_check,
            first_check=min(interval, FIRST_CHECK_CAP),
        )

    def verdict_after(self, elapsed: float) -> Verdict | None:
        """What the env knobs say has happened ``elapsed`` seconds after start, if anything."""
        sick = self.unhealthy_after
        if sick is not None and elapsed >= sick and (
                self.exit_after is None or sick <= self.exit_after):
            return Verdict(UNHEALTHY_EXIT_CODE, unhealthy=True)
        if self.exit_after is not None and elapsed >= self.exit_after:
            return Verdict(self.exit_code)
        return None

    def next_event(self, elapsed: float) -> float | None:
        """Seconds until the next env-driven event, or None if there is none."""
        times = [t for t in (self.exit_after, self.unhealthy_after) if t is not None]
        future = [t - elapsed for t in times if t > elapsed]
        return min(future) if future else (0.0 if times else None)


def read_control(path: Path) -> Verdict | None:
    """The verdict written in a control file, or None if there is none (or it is invalid)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        log.warning("sim: cannot read %s: %s", path, exc)
        return None
    words = text.split()
    if not words:
        return None
    if words[0] == "fail" and len(words) == 1:
        return Verdict(1)
    if words[0] == "unhealthy" and len(words) == 1:
        return Verdict(UNHEALTHY_EXIT_CODE, unhealthy=True)
    if words[0] == "exit" and len(words) == 2 and words[1].lstrip("-").isdigit():
        return Verdict(int(words[1]))
    log.warning("sim: ignoring control file %s: %r (want 'exit N', 'fail' or 'unhealthy')",
                path, text)
    return None
