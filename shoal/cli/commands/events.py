"""``shoal events`` (``docker events`` / ``docker system events``, docker/cli
cli/command/system/events.go): ``GET /events`` read line by line as it arrives, each event
printed at once, as docker's text line or through ``--format`` (``json`` is ``{{json .}}``).

``--since``/``--until`` as the docker client sends them (moby ``timetypes.GetTimestamp``): a
duration ago in whole seconds, an RFC 3339 time (a local one without a zone), or unix
``sec[.nanos]`` as it is. The stream ends when the daemon ends it (``--until``) or on ^C.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta
from typing import Any, ClassVar

import click

from shoal.cli import flagtypes as ft
from shoal.cli.app import App
from shoal.cli.command import ShoalCommand, pass_app
from shoal.cli.errors import CliError
from shoal.cli.format.timefmt import parse_timestamp
from shoal.cli.format.units import parse_duration
from shoal.cli.options import filter_option
from shoal.cli.template.engine import Fields, Template, TemplateError, TemplateSyntaxError

__all__ = ["event_line", "event_time", "events"]

_UNIX = re.compile(r"-?\d+(\.\d+)?")
_LOCAL_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H", "%Y-%m-%d")


def event_time(value: str, now: float | None = None) -> str:
    """moby's ``timetypes.GetTimestamp``: what ``since``/``until`` carry for ``value``."""
    now = time.time() if now is None else now
    if value != "0":
        try:
            ago = parse_duration(value)
        except ValueError:
            pass
        else:
            return str((int(now * 1e9) - ago) // 1_000_000_000)
    stamp = parse_timestamp(value) if re.search(r"[zZ+]|-.*-.*-", value) else _local(value)
    if stamp is not None:
        return f"{stamp // 1_000_000_000}.{stamp % 1_000_000_000:09d}"
    if "-" not in value and _UNIX.fullmatch(value):
        return value
    raise CliError(f'failed to parse value as time or duration: "{value}"')


def _local(value: str) -> int | None:
    """A time without a zone, in the local one (Go's ParseInLocation); fractions up to 9."""
    head, _, frac = value.partition(".")
    if frac and not frac.isdigit():
        return None
    for fmt in _LOCAL_FORMATS:
        try:
            moment = datetime.strptime(head, fmt).astimezone()
        except ValueError:
            continue
        if frac and fmt != _LOCAL_FORMATS[0]:
            return None
        return int(moment.timestamp()) * 1_000_000_000 + int((frac + "0" * 9)[:9] or 0)
    return None


def _rfc3339_nano_fixed(ns: int) -> str:
    """Go's ``2006-01-02T15:04:05.000000000Z07:00`` in the local zone."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds).astimezone()
    offset = moment.utcoffset() or timedelta(0)
    if offset == timedelta(0):
        zone = "Z"
    else:
        minutes = int(offset.total_seconds()) // 60
        sign = "+" if minutes >= 0 else "-"
        zone = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}{zone}"


def event_line(msg: dict[str, Any]) -> str:
    """docker's prettyPrintEvent: ``TIME TYPE ACTION ID (k=v, ...)``."""
    out = ""
    nano, secs = int(msg.get("timeNano") or 0), int(msg.get("time") or 0)
    if nano:
        out = _rfc3339_nano_fixed(nano) + " "
    elif secs:
        out = _rfc3339_nano_fixed(secs * 1_000_000_000) + " "
    actor = msg.get("Actor") or {}
    out += f"{msg.get('Type', '')} {msg.get('Action', '')} {actor.get('ID', '')}"
    attrs = actor.get("Attributes") or {}
    if attrs:
        out += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return out


class _Actor(Fields):
    field_names = ("ID", "Attributes")
    type_name = "events.Actor"
    json_escape_html = False

    def __init__(self, actor: dict[str, Any]) -> None:
        self._actor = actor

    def ID(self) -> str:
        return str(self._actor.get("ID") or "")

    def Attributes(self) -> dict[str, str]:
        return dict(self._actor.get("Attributes") or {})

    def json_fields(self) -> dict[str, Any]:
        attrs = self._actor.get("Attributes")
        return {"ID": self.ID(), "Attributes": None if attrs is None else dict(sorted(attrs.items()))}


class _Message(Fields):
    """moby's ``events.Message`` for ``--format``: Go's field names, and its JSON for ``json``."""

    field_names = ("Status", "ID", "From", "Type", "Action", "Actor", "Scope", "Time", "TimeNano")
    type_name = "*events.Message"
    json_escape_html = False  # docker's json function: SetEscapeHTML(false)
    _TAGS: ClassVar[dict[str, str]] = {"Status": "status", "ID": "id", "From": "from",
                                       "Scope": "scope", "Time": "time", "TimeNano": "timeNano"}

    def __init__(self, msg: dict[str, Any]) -> None:
        self._msg = msg

    def Status(self) -> str:
        return str(self._msg.get("status") or "")

    def ID(self) -> str:
        return str(self._msg.get("id") or "")

    def From(self) -> str:
        return str(self._msg.get("from") or "")

    def Type(self) -> str:
        return str(self._msg.get("Type") or "")

    def Action(self) -> str:
        return str(self._msg.get("Action") or "")

    def Actor(self) -> _Actor:
        return _Actor(self._msg.get("Actor") or {})

    def Scope(self) -> str:
        return str(self._msg.get("scope") or "")

    def Time(self) -> int:
        return int(self._msg.get("time") or 0)

    def TimeNano(self) -> int:
        return int(self._msg.get("timeNano") or 0)

    def json_fields(self) -> dict[str, Any]:
        """Go's encoding of the struct: its order, ``omitempty`` on the tagged fields."""
        out: dict[str, Any] = {}
        for name in self.field_names:
            value = getattr(self, name)()
            tag = self._TAGS.get(name)
            if tag is None:
                out[name] = value
            elif value:
                out[tag] = value
        return out


def _template(fmt: str) -> Template | None:
    if not fmt:
        return None
    source = "{{json .}}" if fmt == "json" else fmt
    try:
        template = Template(source)
        template.execute(_Message({}))  # docker checks the template on an empty message
    except (TemplateSyntaxError, TemplateError) as exc:
        raise CliError(f"Error parsing format: {exc}", 64) from exc
    return template


@click.command("events", cls=ShoalCommand, use="[OPTIONS]")
@click.option("--since", default="", help="Show all events created since timestamp")
@click.option("--until", default="", help="Stream events until this timestamp")
@filter_option()
@click.option("--format", "fmt", default="",
              help="Format output using a custom template: 'json' or 'TEMPLATE'")
@click.argument("args", nargs=-1)
@pass_app
def events(app: App, since: str, until: str, filters: tuple[Any, ...], fmt: str,
           args: tuple[str, ...]) -> None:
    """Get real time events from the server"""
    template = _template(fmt)
    params: dict[str, str] = {}
    now = time.time()
    if since:
        params["since"] = event_time(since, now)
    if until:
        params["until"] = event_time(until, now)
    query = ft.filter_query(ft.filters_from(filters))
    if query:
        params.update(query)
    with app.client.stream("/events", params) as response:
        for line in response.iter_lines():
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
            except ValueError as exc:
                raise CliError(str(exc)) from exc
            if not isinstance(msg, dict):
                continue
            if template is None:
                app.println(event_line(msg))
                continue
            try:
                app.println(template.execute(_Message(msg)))
            except TemplateError as exc:
                raise CliError(str(exc)) from exc
