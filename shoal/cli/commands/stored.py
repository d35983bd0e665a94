"""What ``shoal secret`` and ``shoal config`` share (docker's two packages differ in a few words):
reading the data, the ``ls`` rows, the ``inspect --pretty`` pages and the commands' bodies."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, BinaryIO, ClassVar

from shoal.cli import flagtypes as ft
from shoal.cli.app import App
from shoal.cli.client import DaemonError
from shoal.cli.errors import CliError
from shoal.cli.format.fields import dig, pretty_print
from shoal.cli.format.natsort import natural_sorted
from shoal.cli.format.timefmt import go_time_string, human_duration, parse_timestamp, since
from shoal.cli.formatting import list_format, parse_template, print_inspect, render_list
from shoal.gotemplate import Fields, TemplateError

__all__ = [
    "CONFIG_PRETTY",
    "SECRET_PRETTY",
    "ConfigPretty",
    "ConfigRow",
    "SecretPretty",
    "SecretRow",
    "inspect_objects",
    "list_objects",
    "read_data",
    "spec_annotations",
]

# Verbatim from docker's secret/config formatters: the pages are not tabwritten, tabs print.
SECRET_PRETTY = """ID:              {{.ID}}
Name:              {{.Name}}
{{- if .Labels }}
Labels:
{{- range $k, $v := .Labels }}
 - {{ $k }}{{if $v }}={{ $v }}{{ end }}
{{- end }}{{ end }}
Driver:            {{.Driver}}
Created at:        {{.CreatedAt}}
Updated at:        {{.UpdatedAt}}"""
CONFIG_PRETTY = """ID:\t\t\t{{.ID}}
Name:\t\t\t{{.Name}}
{{- if .Labels }}
Labels:
{{- range $k, $v := .Labels }}
 - {{ $k }}{{if $v }}={{ $v }}{{ end }}
{{- end }}{{ end }}
Created at:            \t{{.CreatedAt}}
Updated at:            \t{{.UpdatedAt}}
Data:
{{.Data}}"""

_HEADER = {
    "ID": "ID",
    "Name": "NAME",
    "Driver": "DRIVER",
    "CreatedAt": "CREATED",
    "UpdatedAt": "UPDATED",
    "Labels": "LABELS",
}


def read_data(path: str, stdin: BinaryIO, limit: int) -> bytes:
    """docker's ``readSecretData``/``readConfigData``: the file or stdin (``-``), at most `limit`
    bytes (twice swarm's maximum: the server judges the size), never empty."""
    if path == "-":
        data = stdin.read(limit)
        if not data:
            raise CliError("error reading from STDIN: data is empty")
        return data
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit)
    except OSError as exc:
        # Go opens a directory, then fails to read it
        verb = "read" if isinstance(exc, IsADirectoryError) else "open"
        reason = (exc.strerror or str(exc)).lower()
        raise CliError(f"error reading from {path}: {verb} {path}: {reason}") from exc
    if not data:
        raise CliError(f"error reading from {path}: data is empty")
    return data


def spec_annotations(name: str, labels: tuple[str, ...], data: bytes | None) -> dict[str, Any]:
    """The start of a SecretSpec/ConfigSpec as Go encodes it: Labels always, Data omitempty."""
    spec: dict[str, Any] = {"Name": name} if name else {}
    spec["Labels"] = {key: value for key, _, value in (item.partition("=") for item in labels)}
    if data:
        spec["Data"] = base64.b64encode(data).decode()
    return spec


class _Row(Fields):
    """docker's ``secretContext``/``configContext``: one ``ls`` row, times relative to now."""

    field_names: ClassVar[tuple[str, ...]] = ("ID", "Name", "CreatedAt", "UpdatedAt", "Labels")

    def __init__(self, obj: dict[str, Any], now_ns: int) -> None:
        self.obj, self.now_ns = obj, now_ns

    def ID(self) -> str:
        return str(self.obj.get("ID", ""))

    def Name(self) -> str:
        return str(dig(self.obj, "Spec", "Name") or "")

    def _ago(self, key: str) -> str:
        return human_duration(since(parse_timestamp(self.obj.get(key)), self.now_ns)) + " ago"

    def CreatedAt(self) -> str:
        return self._ago("CreatedAt")

    def UpdatedAt(self) -> str:
        return self._ago("UpdatedAt")

    def Labels(self) -> str:
        labels = dig(self.obj, "Spec", "Labels") or {}
        return ",".join(f"{k}={v}" for k, v in labels.items())

    def Label(self, name: str) -> str:
        return str((dig(self.obj, "Spec", "Labels") or {}).get(name, ""))


class SecretRow(_Row):
    field_names = (*_Row.field_names, "Driver")
    type_name = "*secret.secretContext"

    def Driver(self) -> str:
        return str(dig(self.obj, "Spec", "Driver", "Name") or "")


class ConfigRow(_Row):
    type_name = "*config.configContext"


class _Pretty(Fields):
    """docker's ``secretInspectContext``/``configInspectContext`` (the object is embedded)."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj

    def embedded(self) -> dict[str, Any]:
        return self.obj

    def ID(self) -> str:
        return str(self.obj.get("ID", ""))

    def Name(self) -> str:
        return str(dig(self.obj, "Spec", "Name") or "")

    def Labels(self) -> dict[str, str]:
        return dig(self.obj, "Spec", "Labels") or {}

    def _time(self, key: str) -> str:
        return pretty_print(go_time_string(parse_timestamp(self.obj.get(key)) or 0))

    def CreatedAt(self) -> str:
        return self._time("CreatedAt")

    def UpdatedAt(self) -> str:
        return self._time("UpdatedAt")


class SecretPretty(_Pretty):
    type_name = "*secret.secretInspectContext"

    def Driver(self) -> str:
        return str(dig(self.obj, "Spec", "Driver", "Name") or "")


class ConfigPretty(_Pretty):
    type_name = "*config.configInspectContext"

    def Data(self) -> str:
        return base64.b64decode(dig(self.obj, "Spec", "Data") or "").decode(errors="replace")


def list_objects(
    app: App,
    path: str,
    row: Callable[[dict[str, Any], int], Fields],
    table: str,
    filters: tuple[Any, ...],
    fmt: str,
    quiet: bool,
) -> None:
    """``secret ls``/``config ls``: natural order by name, a table unless told otherwise."""
    items = app.client.get(path, ft.filter_query(ft.filters_from(filters))) or []
    ordered = natural_sorted(items, key=lambda item: str(dig(item, "Spec", "Name") or ""))
    source = list_format(fmt or "table", default_table=table, quiet=quiet)
    now = app.now_ns()
    app.out(render_list(source, [row(item, now) for item in ordered], _HEADER))


def inspect_objects(
    app: App,
    path: str,
    fmt: str,
    pretty: bool,
    refs: tuple[str, ...],
    page: tuple[str, Callable[[dict[str, Any]], Fields]],
) -> None:
    """``secret inspect``/``config inspect``: JSON, a template, or the pretty `page` (its
    template and context), which stops at the first reference that fails."""
    if pretty:
        fmt = "pretty"
    if fmt.startswith("pretty") and fmt != "pretty":
        raise CliError("cannot supply extra formatting options to the pretty template")
    if fmt != "pretty":
        print_inspect(app.out, refs, lambda ref: app.client.get(f"{path}/{ref}"), fmt)
        return
    template, context = page
    parsed = parse_template(template)
    pages = []
    for ref in refs:
        try:
            pages.append(parsed.execute(context(app.client.get(f"{path}/{ref}"))) + "\n")
        except DaemonError as exc:
            raise CliError(str(exc)) from exc
        except TemplateError as exc:
            raise CliError(f"template parsing error: {exc}") from exc
    app.out("".join(pages))
