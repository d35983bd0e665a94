"""Task listings shared by ``service ps`` and ``node ps``: names, order, resolution, columns."""

from __future__ import annotations

from collections.abc import Callable
from functools import cmp_to_key
from typing import Any

import click

from shoal.cli.app import App
from shoal.cli.client import DaemonError
from shoal.cli.format.fields import pretty_print
from shoal.cli.format.natsort import natural_less
from shoal.cli.format.timefmt import human_duration, parse_timestamp, since
from shoal.cli.formatting import list_format, render_list
from shoal.cli.images import display_image
from shoal.cli.options import filter_option
from shoal.gotemplate import Fields

__all__ = ["TASK_TABLE", "Resolver", "TaskRow", "ellipsis", "print_tasks", "task_list_options"]

TASK_TABLE = (
    "table {{.ID}}\t{{.Name}}\t{{.Image}}\t{{.Node}}\t{{.DesiredState}}\t{{.CurrentState}}"
    "\t{{.Error}}\t{{.Ports}}"
)
_TASK_RAW = (
    "id: {{.ID}}\\nname: {{.Name}}\\nimage: {{.Image}}\\nnode: {{.Node}}\\ndesired_state: "
    "{{.DesiredState}}\\ncurrent_state: {{.CurrentState}}\\nerror: {{.Error}}\\nports: {{.Ports}}\\n"
)
TASK_HEADER = {
    "ID": "ID",
    "Name": "NAME",
    "Image": "IMAGE",
    "Node": "NODE",
    "DesiredState": "DESIRED STATE",
    "CurrentState": "CURRENT STATE",
    "Error": "ERROR",
    "Ports": "PORTS",
}
_MAX_ERROR = 30


def ellipsis(text: str, width: int) -> str:
    """docker's ``Ellipsis``: cut to `width` characters, ending with an ellipsis."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    return text[: width - 1] + "…"


class Resolver:
    """docker's ``IDResolver``: service and node IDs to names, cached, best effort."""

    def __init__(self, app: App, *, enabled: bool = True) -> None:
        self.app, self.enabled = app, enabled
        self._cache: dict[tuple[str, str], str] = {}

    def service(self, service_id: str) -> str:
        return self._resolve("service", service_id, self._service_name)

    def node(self, node_id: str) -> str:
        return self._resolve("node", node_id, self._node_name)

    def _resolve(self, kind: str, ident: str, fetch: Callable[[str], str]) -> str:
        if not self.enabled or not ident:
            return ident
        key = (kind, ident)
        if key not in self._cache:
            try:
                self._cache[key] = fetch(ident)
            except DaemonError:
                self._cache[key] = ident
        return self._cache[key]

    def _service_name(self, service_id: str) -> str:
        service = self.app.client.get(f"/services/{service_id}", {"insertDefaults": "false"})
        return str(((service or {}).get("Spec") or {}).get("Name", ""))

    def _node_name(self, node_id: str) -> str:
        node = self.app.client.get(f"/nodes/{node_id}") or {}
        name = (node.get("Spec") or {}).get("Name") or (node.get("Description") or {}).get(
            "Hostname"
        )
        return str(name or node_id)


class TaskRow(Fields):
    """One task row (docker's ``taskContext``)."""

    field_names = ("ID", "Name", "Image", "Node", "DesiredState", "CurrentState", "Error", "Ports")
    type_name = "*task.taskContext"

    def __init__(
        self, task: dict[str, Any], *, name: str, node: str, trunc: bool, now_ns: int
    ) -> None:
        self.task, self.name, self.node, self.trunc, self.now_ns = task, name, node, trunc, now_ns

    def ID(self) -> str:
        ident = str(self.task.get("ID", ""))
        return ident[:12] if self.trunc else ident

    def Name(self) -> str:
        return self.name

    def Image(self) -> str:
        image = str(((self.task.get("Spec") or {}).get("ContainerSpec") or {}).get("Image", ""))
        return display_image(image) if self.trunc else image

    def Node(self) -> str:
        return self.node

    def DesiredState(self) -> str:
        return pretty_print(self.task.get("DesiredState") or "")

    def CurrentState(self) -> str:
        status = self.task.get("Status") or {}
        age = since(parse_timestamp(status.get("Timestamp")), self.now_ns)
        return f"{pretty_print(status.get('State') or '')} {human_duration(age).lower()} ago"

    def Error(self) -> str:
        error = str((self.task.get("Status") or {}).get("Err") or "")
        if self.trunc:
            error = ellipsis(error, _MAX_ERROR)
        return f'"{error}"' if error else ""

    def Ports(self) -> str:
        ports = ((self.task.get("Status") or {}).get("PortStatus") or {}).get("Ports") or []
        return ",".join(
            f"*:{p.get('PublishedPort', 0)}->{p.get('TargetPort', 0)}/{p.get('Protocol', '')}"
            for p in ports
        )


def _task_order(a: tuple[str, dict[str, Any]], b: tuple[str, dict[str, Any]]) -> int:
    name_a, name_b = a[0], b[0]
    if name_a != name_b:
        return -1 if natural_less(name_a, name_b) else 1
    created_a = parse_timestamp(a[1].get("CreatedAt")) or 0
    created_b = parse_timestamp(b[1].get("CreatedAt")) or 0
    return -1 if created_b < created_a else (1 if created_a < created_b else 0)


def print_tasks(
    app: App, tasks: list[dict[str, Any]], *, resolve: bool, trunc: bool, quiet: bool, fmt: str
) -> None:
    """docker's ``task.Print``: name tasks (service and node names unless not `resolve`), sort
    them, indent history rows, render."""
    resolver = Resolver(app, enabled=resolve)
    named = []
    for task in tasks:
        service = resolver.service(str(task.get("ServiceID", "")))
        slot = task.get("Slot") or 0
        named.append((f"{service}.{slot}" if slot else f"{service}.{task.get('NodeID', '')}", task))
    named.sort(key=cmp_to_key(_task_order))
    source = list_format(
        fmt or "table",
        default_table=TASK_TABLE,
        quiet=quiet,
        raw=_TASK_RAW,
        raw_quiet="id: {{.ID}}",
    )
    indent = " \\_ " if source.startswith("table") else ""
    rows, previous, now = [], None, app.now_ns()
    for name, task in named:
        shown = indent + name if name == previous else name
        previous = name
        node = resolver.node(str(task.get("NodeID", "")))
        rows.append(TaskRow(task, name=shown, node=node, trunc=trunc, now_ns=now))
    app.out(render_list(source, rows, TASK_HEADER))


def task_list_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The flags `node ps` and `service ps` share, as docker declares them."""
    for option in reversed([
        filter_option(),
        click.option("--format", "fmt", default="", help="Pretty-print tasks using a Go template"),
        click.option("--no-resolve", is_flag=True, help="Do not map IDs to Names"),
        click.option("--no-trunc", is_flag=True, help="Do not truncate output"),
        click.option("-q", "--quiet", is_flag=True, help="Only display task IDs"),
    ]):
        fn = option(fn)
    return fn
