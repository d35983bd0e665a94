"""``shoal node ls|inspect|update|promote|demote|rm|ps``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from shoal.cli import flagtypes as ft
from shoal.cli.app import App
from shoal.cli.client import DaemonError
from shoal.cli.command import ShoalGroup, changed, pass_app
from shoal.cli.commands.common import remove_each
from shoal.cli.commands.tasks import print_tasks, task_list_options
from shoal.cli.errors import CliError
from shoal.cli.format.natsort import natural_sorted
from shoal.cli.formatting import list_format, parse_template, print_inspect, render_list
from shoal.cli.node.format import (
    NODE_HEADER,
    NODE_RAW,
    NODE_TABLE,
    NodeRow,
)
from shoal.cli.node.pretty import NodePretty
from shoal.cli.node.pretty_page import NODE_PRETTY
from shoal.cli.options import filter_option, inspect_format_option, list_format_option
from shoal.cli.watch import watch as run_watch
from shoal.cli.watch import watch_option
from shoal.gotemplate import TemplateError

__all__ = ["node", "node_reference"]

def node_reference(app: App, ref: str) -> str:
    """docker's ``node.Reference``: ``self`` is this node's ID, read from /info."""
    if ref != "self":
        return ref
    node_id = ((app.client.get("/info") or {}).get("Swarm") or {}).get("NodeID", "")
    if not node_id:
        app.client.get("/nodes")
        raise CliError("node ID not found in /info")
    return str(node_id)


@click.group(cls=ShoalGroup)
def node() -> None:
    """Manage Swarm nodes"""


node.alias("list", "ls")
node.alias("remove", "rm")


@node.command("ls", use="[OPTIONS]")
@filter_option()
@list_format_option()
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs")
@watch_option
@click.argument("args", nargs=-1)
@pass_app
def ls(app: App, filters: tuple[Any, ...], fmt: str, quiet: bool, watch: bool,
       args: tuple[str, ...]) -> None:
    """List nodes in the swarm"""
    if watch:
        run_watch(app, "shoal node ls", lambda: _ls(app, filters, fmt, quiet))
    else:
        _ls(app, filters, fmt, quiet)


def _ls(app: App, filters: tuple[Any, ...], fmt: str, quiet: bool) -> None:
    nodes = app.client.get("/nodes", ft.filter_query(ft.filters_from(filters))) or []
    info = app.client.get("/info") if nodes and not quiet else {}
    source = list_format(
        fmt or "table",
        default_table=NODE_TABLE,
        quiet=quiet,
        raw=NODE_RAW,
        raw_quiet="node_id: {{.ID}}",
    )
    ordered = natural_sorted(
        nodes, key=lambda n: str((n.get("Description") or {}).get("Hostname", ""))
    )
    app.out(render_list(source, [NodeRow(n, info or {}) for n in ordered], NODE_HEADER))


@node.command("inspect", use="[OPTIONS] self|NODE [NODE...]", arity=(1, None))
@inspect_format_option()
@click.option("--pretty", is_flag=True, help="Print the information in a human friendly format")
@click.argument("args", nargs=-1)
@pass_app
def inspect(app: App, fmt: str, pretty: bool, args: tuple[str, ...]) -> None:
    """Display detailed information on one or more nodes"""
    if pretty:
        fmt = "pretty"
    if fmt.startswith("pretty") and fmt != "pretty":
        raise CliError("cannot supply extra formatting options to the pretty template")

    def fetch(ref: str) -> Any:
        return app.client.get(f"/nodes/{node_reference(app, ref)}")

    if fmt == "pretty":
        template = parse_template(NODE_PRETTY)
        pages = []
        for ref in args:
            try:
                pages.append(template.execute(NodePretty(fetch(ref))) + "\n")
            except (DaemonError, CliError) as exc:
                raise CliError(str(exc)) from exc
            except TemplateError as exc:
                raise CliError(f"template parsing error: {exc}") from exc
        app.out("".join(pages))
        return
    print_inspect(app.out, args, fetch, fmt)


def _update_nodes(
    app: App,
    refs: tuple[str, ...],
    merge: Callable[[dict[str, Any]], bool],
    success: Callable[[str], None],
) -> None:
    for ref in refs:
        current = app.client.get(f"/nodes/{ref}")
        spec = current.setdefault("Spec", {})
        if not merge(spec):
            app.println(f"Node {current.get('ID', '')} is already a {spec.get('Role', '')}.")
            continue
        version = (current.get("Version") or {}).get("Index", 0)
        app.client.post(
            f"/nodes/{current.get('ID', ref)}/update", spec, params={"version": str(version)}
        )
        success(ref)


@node.command("update", use="[OPTIONS] NODE", arity=(1, 1))
@click.option(
    "--availability", default="", help='Availability of the node ("active", "pause", "drain")'
)
@click.option(
    "--label-add", type=ft.LABEL, multiple=True, help='Add or update a node label ("key=value")'
)
@click.option("--label-rm", multiple=True, help="Remove a node label if exists")
@click.option("--role", default="", help='Role of the node ("worker", "manager")')
@click.argument("args", nargs=-1)
@click.pass_context
def update(
    ctx: click.Context,
    availability: str,
    label_add: tuple[str, ...],
    label_rm: tuple[str, ...],
    role: str,
    args: tuple[str, ...],
) -> None:
    """Update a node"""
    app: App = ctx.obj

    def merge(spec: dict[str, Any]) -> bool:
        if changed(ctx, "role"):
            spec["Role"] = role
        if changed(ctx, "availability"):
            spec["Availability"] = availability
        labels = spec.get("Labels") or {}
        spec["Labels"] = labels
        for item in label_add:
            key, _, value = item.partition("=")
            labels[key] = value
        for key in label_rm:
            if key not in labels:
                raise CliError(f"key {key} doesn't exist in node's labels")
            del labels[key]
        return True

    _update_nodes(app, args, merge, lambda _ref: app.println(args[0]))


def _role_command(name: str, role: str, summary: str, message: Callable[[str], str]) -> None:
    @node.command(name, use="NODE [NODE...]", arity=(1, None), help=summary)
    @click.argument("args", nargs=-1)
    @pass_app
    def command(app: App, args: tuple[str, ...]) -> None:
        def merge(spec: dict[str, Any]) -> bool:
            if spec.get("Role") == role:
                return False
            spec["Role"] = role
            return True

        _update_nodes(app, args, merge, lambda ref: app.println(message(ref)))


_role_command(
    "promote",
    "manager",
    "Promote one or more nodes to manager in the swarm",
    lambda ref: f"Node {ref} promoted to a manager in the swarm.",
)
_role_command(
    "demote",
    "worker",
    "Demote one or more nodes from manager in the swarm",
    lambda ref: f"Manager {ref} demoted in the swarm.",
)


@node.command("rm", use="[OPTIONS] NODE [NODE...]", arity=(1, None))
@click.option("-f", "--force", is_flag=True, help="Force remove a node from the swarm")
@click.argument("args", nargs=-1)
@pass_app
def rm(app: App, force: bool, args: tuple[str, ...]) -> None:
    """Remove one or more nodes from the swarm"""
    params = {"force": "1"} if force else None
    remove_each(app, args, lambda ref: app.client.delete(f"/nodes/{ref}", params=params))


@node.command("ps", use="[OPTIONS] [NODE...]", arity=(0, None))
@task_list_options
@click.argument("args", nargs=-1)
@pass_app
def ps(
    app: App,
    filters: tuple[Any, ...],
    fmt: str,
    no_resolve: bool,
    no_trunc: bool,
    quiet: bool,
    args: tuple[str, ...],
) -> None:
    """List tasks running on one or more nodes, defaults to current node"""
    errors: list[str] = []
    tasks: list[dict[str, Any]] = []
    for ref in args or ("self",):
        try:
            current = app.client.get(f"/nodes/{node_reference(app, ref)}")
            query = ft.filters_from(filters)
            query.setdefault("node", []).append(str(current.get("ID", "")))
            tasks.extend(app.client.get("/tasks", ft.filter_query(query)) or [])
        except (DaemonError, CliError) as exc:
            errors.append(str(exc))
    if not errors or tasks:
        print_tasks(app, tasks, resolve=not no_resolve, trunc=not no_trunc, quiet=quiet, fmt=fmt)
    if errors:
        raise CliError("\n".join(errors))
