"""``docker import --change`` / ``docker commit --change``: Dockerfile instructions applied to an
image's config, as moby's ``dockerfile.BuildFromConfig`` applies them.

The changes are read as the lines of one Dockerfile (line N is the N-th change). Only the
instructions moby accepts for a commit are valid (CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK,
LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR); any other word is refused with moby's
``"<instruction> is not a valid change command"``, and a bad argument with
``dockerfile parse error on line N: ...``. CMD/ENTRYPOINT/VOLUME take the JSON-array form or
the shell form (``["/bin/sh", "-c", "..."]`` for CMD/ENTRYPOINT); ENTRYPOINT resets CMD unless a
CMD came before it in the same changes, as in a Dockerfile.
"""

from __future__ import annotations

import copy
import json
import posixpath
import re
import shlex
from collections.abc import Iterable
from typing import Any

from shoal.errors import InvalidArgument

__all__ = ["apply_changes", "parse_go_duration"]

VALID = ("cmd", "entrypoint", "env", "expose", "healthcheck", "label", "onbuild", "stopsignal",
         "user", "volume", "workdir")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
          "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


class _ParseError(ValueError):
    pass


def parse_go_duration(text: str) -> int:
    """Go's ``time.ParseDuration``, in nanoseconds (``1m30s``, ``500ms``, ``0``)."""
    raw = text
    sign = 1
    if text[:1] in "+-" and text:
        sign, text = (-1 if text[0] == "-" else 1), text[1:]
    if text == "0":
        return 0
    total, pos = 0.0, 0
    while pos < len(text):
        found = _DURATION.match(text, pos)
        if found is None:
            break
        total += float(found.group(1)) * _UNITS[found.group(2)]
        pos = found.end()
    if not text or pos != len(text):
        if text and _DURATION.match(text) is None and re.fullmatch(r"[\d.]+", text):
            raise _ParseError(f'time: missing unit in duration "{raw}"')
        raise _ParseError(f'time: invalid duration "{raw}"')
    return sign * round(total)


def _exec_or_shell(rest: str) -> list[str]:
    """The JSON-array form if ``rest`` is one, else the shell form."""
    stripped = rest.strip()
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
    return ["/bin/sh", "-c", stripped]


def _words(rest: str) -> list[str]:
    try:
        return shlex.split(rest, posix=True)
    except ValueError as exc:
        raise _ParseError(str(exc)) from exc


def _name_values(name: str, rest: str) -> list[tuple[str, str]]:
    """ENV / LABEL arguments: ``k=v k2="v 2"``, or the legacy ``k value with spaces``."""
    if not rest.strip():
        raise _ParseError(f"{name} requires at least one argument")
    first = rest.split(None, 1)[0]
    if "=" not in first:
        parts = rest.strip().split(None, 1)
        if len(parts) < 2:
            raise _ParseError(f"{name} must have two arguments")
        return [(parts[0], parts[1].strip())]
    out = []
    for word in _words(rest):
        key, eq, value = word.partition("=")
        if not eq:
            raise _ParseError(f'Syntax error - can\'t find = in "{word}". Must be of the form: name=value')
        if not key:
            raise _ParseError(f"{name} names can not be blank")
        out.append((key, value))
    return out


def _set_env(config: dict[str, Any], key: str, value: str) -> None:
    env = [e for e in (config.get("Env") or []) if e.split("=", 1)[0] != key]
    env.append(f"{key}={value}")
    config["Env"] = env


def _expose(config: dict[str, Any], rest: str) -> None:
    words = rest.split()
    if not words:
        raise _ParseError("EXPOSE requires at least one argument")
    ports = dict(config.get("ExposedPorts") or {})
    for word in words:
        spec, _, proto = word.partition("/")
        proto = (proto or "tcp").lower()
        if proto not in ("tcp", "udp", "sctp"):
            raise _ParseError(f"invalid proto: {proto}")
        start, dash, end = spec.partition("-")
        try:
            low, high = int(start), int(end) if dash else int(start)
        except ValueError:
            raise _ParseError(f"invalid containerPort: {spec}") from None
        if not 0 < low <= high <= 65535:
            raise _ParseError(f"invalid containerPort: {spec}")
        for port in range(low, high + 1):
            ports[f"{port}/{proto}"] = {}
    config["ExposedPorts"] = ports


def _healthcheck(config: dict[str, Any], rest: str) -> None:
    flags: dict[str, str] = {}
    rest = rest.strip()
    while rest.startswith("--"):
        token, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        name, eq, value = token[2:].partition("=")
        if name not in ("interval", "timeout", "start-period", "start-interval", "retries"):
            raise _ParseError(f"Unknown flag: {name}")
        if not eq:
            raise _ParseError(f"Missing a value on flag: --{name}")
        flags[name] = value
    if not rest:
        raise _ParseError("HEALTHCHECK requires at least one argument")
    kind, _, command = rest.partition(" ")
    kind = kind.upper()
    if kind == "NONE":
        if command.strip() or flags:
            raise _ParseError("HEALTHCHECK NONE takes no arguments")
        config["Healthcheck"] = {"Test": ["NONE"]}
        return
    if kind != "CMD":
        raise _ParseError(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    if not command.strip():
        raise _ParseError("Missing command after HEALTHCHECK CMD")
    argv = _exec_or_shell(command)
    is_json = command.strip().startswith("[") and argv[:2] != ["/bin/sh", "-c"]
    test = ["CMD", *argv] if is_json else ["CMD-SHELL", command.strip()]
    check: dict[str, Any] = {"Test": test}
    for flag, key in (("interval", "Interval"), ("timeout", "Timeout"),
                      ("start-period", "StartPeriod"), ("start-interval", "StartInterval")):
        if flag in flags:
            ns = parse_go_duration(flags[flag])
            if ns != 0 and ns < 1_000_000:
                raise _ParseError(f"{key} \"--{flag}\" cannot be less than 1ms")
            if ns:
                check[key] = ns
    if "retries" in flags:
        try:
            retries = int(flags["retries"])
        except ValueError:
            raise _ParseError(f'strconv.ParseInt: parsing "{flags["retries"]}": invalid syntax') from None
        if retries < 0:
            raise _ParseError(f"--retries cannot be negative ({retries})")
        if retries:
            check["Retries"] = retries
    config["Healthcheck"] = check


def _apply(config: dict[str, Any], word: str, rest: str, state: dict[str, bool]) -> None:
    if word == "cmd":
        config["Cmd"] = _exec_or_shell(rest)
        state["cmd"] = True
    elif word == "entrypoint":
        config["Entrypoint"] = _exec_or_shell(rest)
        if not state["cmd"]:
            config["Cmd"] = None
    elif word == "env":
        for key, value in _name_values("ENV", rest):
            _set_env(config, key, value)
    elif word == "label":
        labels = dict(config.get("Labels") or {})
        labels.update(_name_values("LABEL", rest))
        config["Labels"] = labels
    elif word == "expose":
        _expose(config, rest)
    elif word == "workdir":
        if not rest.strip():
            raise _ParseError("WORKDIR requires exactly one argument")
        path = rest.strip()
        config["WorkingDir"] = posixpath.join(config.get("WorkingDir") or "/", path)
    elif word == "user":
        if not rest.strip():
            raise _ParseError("USER requires exactly one argument")
        config["User"] = rest.strip()
    elif word == "stopsignal":
        if not rest.strip():
            raise _ParseError("STOPSIGNAL requires exactly one argument")
        config["StopSignal"] = rest.strip()
    elif word == "volume":
        paths = _exec_or_shell(rest)
        paths = rest.split() if paths[:2] == ["/bin/sh", "-c"] else paths
        if not paths or any(not p.strip() for p in paths):
            raise _ParseError("VOLUME specified can not be an empty string")
        volumes = dict(config.get("Volumes") or {})
        volumes.update({p: {} for p in paths})
        config["Volumes"] = volumes
    elif word == "onbuild":
        if not rest.strip():
            raise _ParseError("ONBUILD requires at least one argument")
        config["OnBuild"] = [*(config.get("OnBuild") or []), rest.strip()]
    elif word == "healthcheck":
        _healthcheck(config, rest)


def apply_changes(config: dict[str, Any], changes: Iterable[str]) -> dict[str, Any]:
    """A copy of the image config's ``config`` object with ``changes`` applied; InvalidArgument
    with moby's message for a change it would refuse."""
    lines: list[tuple[int, str, str]] = []
    for number, line in enumerate("\n".join(changes).split("\n"), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        lines.append((number, word.lower(), rest))
    for _number, word, _rest in lines:
        if word not in VALID:
            raise InvalidArgument(f"{word} is not a valid change command")
    out = copy.deepcopy(config)
    state = {"cmd": False}
    for number, word, rest in lines:
        try:
            _apply(out, word, rest, state)
        except _ParseError as exc:
            raise InvalidArgument(f"dockerfile parse error on line {number}: {exc}") from None
    return out
