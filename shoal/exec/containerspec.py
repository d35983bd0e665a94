"""What a task's container runs: the image config merged with the service's ContainerSpec, as
Docker's engine merges them for swarm tasks (issue 4; the runc executor turns it into an OCI
process).

* ``Command`` replaces the image's ENTRYPOINT and then CMD is not used; ``Args`` replaces CMD.
* ``Env``: the image's, then the service's (a later ``KEY=...`` wins; ``KEY`` alone is kept).
* ``Dir`` / ``User`` / ``Hostname`` win over the image's WORKDIR / USER; the directory defaults
  to ``/``.
* Health check: the service's fields override the image's one by one (zero means "the image's");
  ``Test: ["NONE"]`` (``--no-healthcheck``) disables it. Defaults as Docker's: 30 s interval,
  30 s timeout, 3 retries, no start period, and a 5 s start interval (the interval while the
  container is starting, within its start period).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shoal.errors import InvalidArgument

__all__ = ["DEFAULT_START_INTERVAL", "HealthCheck", "Process", "resolve"]

DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
DEFAULT_START_INTERVAL = 5.0  # Docker 25's


@dataclass(frozen=True, slots=True)
class HealthCheck:
    test: tuple[str, ...]  # ["CMD", ...] or ["CMD-SHELL", "..."]
    interval: float = DEFAULT_INTERVAL  # seconds
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    start_period: float = 0.0
    start_interval: float = DEFAULT_START_INTERVAL

    @property
    def argv(self) -> list[str]:
        """The command to exec in the container."""
        if self.test[0] == "CMD-SHELL":
            return ["/bin/sh", "-c", self.test[1]]
        return list(self.test[1:])


@dataclass(frozen=True, slots=True)
class Process:
    args: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    user: str  # "" = root; "name", "uid", "uid:gid" as Docker accepts
    hostname: str
    health: HealthCheck | None


def _strings(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"invalid {what}: expected a list of strings")
    return list(value)


def _merge_env(*lists: list[str]) -> tuple[str, ...]:
    merged: dict[str, str] = {}
    for env in lists:
        for item in env:
            merged[item.split("=", 1)[0]] = item
    return tuple(merged.values())


def _seconds(ns: Any) -> float:
    return (int(ns) if ns else 0) / 1e9


def _health(image: dict[str, Any] | None, service: dict[str, Any] | None) -> HealthCheck | None:
    image, service = image or {}, service or {}
    test = _strings(service.get("Test"), "health check") or _strings(image.get("Test"), "health check")
    if not test or test[0] == "NONE":
        return None
    if test[0] not in ("CMD", "CMD-SHELL") or len(test) < 2:
        raise InvalidArgument(f"invalid health check test {test!r}")

    def pick(key: str) -> Any:
        return service.get(key) or image.get(key)

    return HealthCheck(tuple(test), interval=_seconds(pick("Interval")) or DEFAULT_INTERVAL,
                       timeout=_seconds(pick("Timeout")) or DEFAULT_TIMEOUT,
                       retries=int(pick("Retries") or DEFAULT_RETRIES),
                       start_period=_seconds(pick("StartPeriod")),
                       start_interval=_seconds(pick("StartInterval")) or DEFAULT_START_INTERVAL)


def resolve(image_config: dict[str, Any], spec: dict[str, Any]) -> Process:
    """``image_config``: the ``config`` object of an image's config blob; ``spec``: the task's
    ContainerSpec (Docker API shape)."""
    command = _strings(spec.get("Command"), "Command")
    args = _strings(spec.get("Args"), "Args")
    entrypoint = command or _strings(image_config.get("Entrypoint"), "image Entrypoint")
    cmd = args if (command or args) else _strings(image_config.get("Cmd"), "image Cmd")
    argv = tuple(entrypoint + cmd)
    if not argv:
        raise InvalidArgument("No command specified")
    return Process(
        args=argv,
        env=_merge_env(_strings(image_config.get("Env"), "image Env"), _strings(spec.get("Env"), "Env")),
        cwd=spec.get("Dir") or image_config.get("WorkingDir") or "/",
        user=spec.get("User") or image_config.get("User") or "",
        hostname=spec.get("Hostname") or "",
        health=_health(image_config.get("Healthcheck"), spec.get("Healthcheck")),
    )
