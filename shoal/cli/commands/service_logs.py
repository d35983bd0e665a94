"""``shoal service logs SERVICE|TASK``, as docker/cli's service/logs.go: the multiplexed stream
is split into frames, and each line (with ``details``) gets the ``name.slot.task@node    | ``
prefix unless ``--raw``."""

from __future__ import annotations

import re
import struct
import sys
import time
from collections.abc import Iterator
from typing import Any, BinaryIO

import click

from shoal.cli.app import App
from shoal.cli.client import DaemonError
from shoal.cli.command import ShoalCommand, pass_app
from shoal.cli.errors import CliError
from shoal.cli.format.timefmt import parse_timestamp
from shoal.cli.format.units import parse_duration

__all__ = ["logs", "since_param"]

_DETAIL_KEYS = ("com.docker.swarm.node.id", "com.docker.swarm.service.id", "com.docker.swarm.task.id")


def since_param(text: str, now: float | None = None) -> str:
    """docker's ``timetypes.GetTimestamp``: a duration ago, an RFC 3339 time, or unix seconds."""
    if not text:
        return ""
    now = time.time() if now is None else now
    try:
        ago = parse_duration(text)
    except ValueError:
        pass
    else:
        ns = int(now * 1e9) - ago
        return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"
    ns_at = parse_timestamp(text)
    if ns_at is not None:
        return f"{ns_at // 1_000_000_000}.{ns_at % 1_000_000_000:09d}"
    if re.fullmatch(r"\d+(\.\d{1,9})?", text):
        return text
    raise CliError(f'invalid value for "since": failed to parse value as time or duration: "{text}"')


def _frames(body: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    buf = b""
    for chunk in body:
        buf += chunk
        while len(buf) >= 8:
            stream, size = struct.unpack(">BxxxL", buf[:8])
            if len(buf) < 8 + size:
                break
            yield stream, buf[8:8 + size]
            buf = buf[8 + size:]


class _Formatter:
    """Resolves a line's details to docker's ``name.slot.task@node`` prefix (cached)."""

    def __init__(self, app: App, *, padding: int, no_resolve: bool, no_trunc: bool,
                 no_task_ids: bool) -> None:
        self._app = app
        self._padding = padding
        self._no_resolve = no_resolve
        self._no_trunc = no_trunc
        self._no_task_ids = no_task_ids
        self._cache: dict[tuple[str, str, str], str] = {}

    def _name(self, kind: str, ident: str) -> str:
        if self._no_resolve:
            return ident
        try:
            obj = self._app.client.get(f"/{kind}/{ident}") or {}
        except DaemonError:
            return ident
        if kind == "nodes":
            return str((obj.get("Description") or {}).get("Hostname") or ident)
        return str((obj.get("Spec") or {}).get("Name") or ident)

    def prefix(self, node_id: str, service_id: str, task_id: str) -> str:
        key = (node_id, service_id, task_id)
        if key not in self._cache:
            task = self._app.client.get(f"/tasks/{task_id}") or {}
            slot = int(task.get("Slot") or 0)
            name = f"{self._name('services', service_id)}.{slot}"
            if not self._no_task_ids:
                name += "." + (task_id if self._no_trunc else task_id[:12])
            pad = " " * max(0, self._padding - len(str(slot)))
            self._cache[key] = f"{name}@{self._name('nodes', node_id)}{pad}"
        return self._cache[key]


def _pretty(line: bytes, fmt: _Formatter, *, timestamps: bool, details: bool) -> bytes:
    parts = line.split(b" ", 2 if timestamps else 1)
    if len(parts) != (3 if timestamps else 2):
        raise CliError(f"invalid context in log message: {line.decode(errors='replace')}")
    stamp = parts[0] + b" " if timestamps else b""
    attrs = dict(kv.split("=", 1) for kv in parts[-2].decode().split(",") if "=" in kv)
    for key in _DETAIL_KEYS:
        if key not in attrs:
            raise CliError(f"missing {key.split('.')[-2]} id in details: {attrs}")
    context = fmt.prefix(*(attrs.pop(k) for k in _DETAIL_KEYS))
    extra = (",".join(sorted(f"{k}={v}" for k, v in attrs.items())) + " ") if details else ""
    return stamp + f"{context}    | {extra}".encode() + parts[-1]


@click.command("logs", cls=ShoalCommand, use="[OPTIONS] SERVICE|TASK", arity=(1, 1))
@click.option("--details", is_flag=True, help="Show extra details provided to logs")
@click.option("-f", "--follow", is_flag=True, help="Follow log output")
@click.option("--no-resolve", is_flag=True, help="Do not map IDs to Names in output")
@click.option("--no-task-ids", is_flag=True, help="Do not include task IDs in output")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output")
@click.option("--raw", is_flag=True, help="Do not neatly format logs")
@click.option("--since", default="", help='Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") '
              'or relative (e.g. "42m" for 42 minutes)')
@click.option("-n", "--tail", default="all", help="Number of lines to show from the end of the logs")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps")
@click.argument("args", nargs=-1)
@pass_app
def logs(app: App, args: tuple[str, ...], **opts: Any) -> None:
    """Fetch the logs of a service or task"""
    target = args[0]
    padding = 1
    try:
        svc = app.client.get(f"/services/{target}")
        spec = ((svc.get("Spec") or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}
        replicas = (((svc.get("Spec") or {}).get("Mode") or {}).get("Replicated") or {}).get("Replicas")
        if replicas is not None:
            padding = len(str(replicas))
        path = f"/services/{target}/logs"
    except DaemonError as exc:
        if not exc.not_found:
            raise
        try:
            task = app.client.get(f"/tasks/{target}")
        except DaemonError as texc:
            if texc.not_found:
                raise CliError(f"no such task or service: {target}") from None
            raise
        spec = ((task.get("Spec") or {}).get("ContainerSpec")) or {}
        padding = len(str(task.get("Slot") or 0))
        path = f"/tasks/{target}/logs"
    tty = bool(spec.get("TTY"))
    if tty and not opts["raw"]:
        raise CliError("tty service logs only supported with --raw")
    params = {"stdout": "1", "stderr": "1", "tail": opts["tail"]}
    if opts["follow"]:
        params["follow"] = "1"
    if opts["timestamps"]:
        params["timestamps"] = "1"
    if opts["details"] or not opts["raw"]:
        params["details"] = "1"
    if opts["since"]:
        params["since"] = since_param(opts["since"])
    fmt = _Formatter(app, padding=padding, no_resolve=opts["no_resolve"], no_trunc=opts["no_trunc"],
                     no_task_ids=opts["no_task_ids"])
    outs: dict[int, BinaryIO] = {1: sys.stdout.buffer, 2: sys.stderr.buffer}
    with app.client.stream(path, params) as response:
        if tty:
            for chunk in response.iter_bytes():
                outs[1].write(chunk)
                outs[1].flush()
            return
        for stream, line in _frames(response.iter_bytes()):
            if stream == 3:
                raise CliError(f"Error from daemon in stream: {line.decode(errors='replace')}")
            if not opts["raw"]:
                line = _pretty(line, fmt, timestamps=opts["timestamps"], details=opts["details"])
            out = outs.get(stream, outs[1])
            out.write(line)
            out.flush()
