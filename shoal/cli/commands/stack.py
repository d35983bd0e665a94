"""``shoal stack ls|services|ps|rm`` (``deploy`` is in `shoal.cli.commands.stack_deploy`).

A stack is no server object: it is the services, networks, secrets and configs carrying the
label ``com.docker.stack.namespace=STACK``, as docker's ``cli/command/stack/swarm`` sees it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from shoal.cli import flagtypes as ft
from shoal.cli.app import App
from shoal.cli.client import DaemonError, filters_param
from shoal.cli.command import ShoalGroup, pass_app
from shoal.cli.commands.node import node_reference
from shoal.cli.commands.service_list import append_status
from shoal.cli.commands.stack_deploy import config, deploy
from shoal.cli.commands.tasks import print_tasks
from shoal.cli.compose.convert import LABEL_NAMESPACE
from shoal.cli.errors import CliError
from shoal.cli.format.natsort import natural_sorted
from shoal.cli.formatting import list_format, render_list
from shoal.cli.options import filter_option, list_format_option
from shoal.cli.service.format import SERVICE_HEADER, SERVICE_RAW, SERVICE_TABLE, ServiceRow
from shoal.gotemplate import Fields

__all__ = ["stack", "stack_filter", "stack_objects"]

_STACK_TABLE = "table {{.Name}}\t{{.Services}}"
_STACK_HEADER = {"Name": "NAME", "Services": "SERVICES"}
_TERMINAL = {"complete", "shutdown", "failed", "rejected", "orphaned", "remove"}


def stack_filter(namespace: str, extra: dict[str, list[str]] | None = None) -> dict[str, str]:
    """The ``filters`` query of a stack's objects: its label, plus the user's filters."""
    filters = {key: list(values) for key, values in (extra or {}).items()}
    filters.setdefault("label", []).append(f"{LABEL_NAMESPACE}={namespace}")
    return {"filters": filters_param(filters)}


def stack_objects(app: App, kind: str, namespace: str) -> list[dict[str, Any]]:
    """``GET /services|/networks|/secrets|/configs`` filtered by the stack's label."""
    return list(app.client.get(f"/{kind}", stack_filter(namespace)) or [])


class StackRow(Fields):
    """One ``stack ls`` row (docker's ``stackContext``)."""

    field_names = ("Name", "Services")
    type_name = "*formatter.stackContext"

    def __init__(self, name: str, services: int) -> None:
        self.name, self.services = name, services

    def Name(self) -> str:
        return self.name

    def Services(self) -> str:
        return str(self.services)


@click.group(cls=ShoalGroup)
def stack() -> None:
    """Manage Swarm stacks"""


stack.alias("list", "ls")
stack.alias("remove", "rm")
stack.alias("down", "rm")
stack.alias("up", "deploy")
stack.add_command(deploy)
stack.add_command(config)


@stack.command("ls", use="[OPTIONS]")
@list_format_option()
@click.argument("args", nargs=-1)
@pass_app
def ls(app: App, fmt: str, args: tuple[str, ...]) -> None:
    """List stacks"""
    query = {"filters": filters_param({"label": [LABEL_NAMESPACE]})}
    counts: dict[str, int] = {}
    for svc in app.client.get("/services", query) or []:
        name = ((svc.get("Spec") or {}).get("Labels") or {}).get(LABEL_NAMESPACE)
        if name is None:
            continue
        counts[name] = counts.get(name, 0) + 1
    rows = [StackRow(name, counts[name]) for name in natural_sorted(counts, key=lambda n: n)]
    source = list_format(fmt or "table", default_table=_STACK_TABLE, quiet=False)
    app.out(render_list(source, rows, _STACK_HEADER))


@stack.command("services", use="[OPTIONS] STACK", arity=(1, 1))
@filter_option()
@list_format_option()
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs")
@click.argument("args", nargs=-1)
@pass_app
def services(
    app: App, filters: tuple[Any, ...], fmt: str, quiet: bool, args: tuple[str, ...]
) -> None:
    """List the services in the stack"""
    namespace = args[0]
    query = stack_filter(namespace, ft.filters_from(filters))
    if not quiet:
        query["status"] = "true"
    found = list(app.client.get("/services", query) or [])
    if not quiet:
        append_status(app, found)
    if not found:
        if not quiet:
            app.eprintln(f"Nothing found in stack: {namespace}")
        return
    source = list_format(
        fmt or "table", default_table=SERVICE_TABLE, quiet=quiet, raw=SERVICE_RAW,
        raw_quiet="id: {{.ID}}",
    )
    ordered = natural_sorted(found, key=lambda s: str((s.get("Spec") or {}).get("Name", "")))
    app.out(render_list(source, [ServiceRow(s) for s in ordered], SERVICE_HEADER))


@stack.command("ps", use="[OPTIONS] STACK", arity=(1, 1))
@filter_option()
@list_format_option()
@click.option("--no-resolve", is_flag=True, help="Do not map IDs to Names")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output")
@click.option("-q", "--quiet", is_flag=True, help="Only display task IDs")
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
    """List the tasks in the stack"""
    namespace = args[0]
    extra = ft.filters_from(filters)
    if "node" in extra:
        extra["node"] = [node_reference(app, ref) for ref in extra["node"]]
    tasks = app.client.get("/tasks", stack_filter(namespace, extra)) or []
    if not tasks:
        raise CliError(f"nothing found in stack: {namespace}")
    print_tasks(
        app, tasks, resolve=not no_resolve, trunc=not (no_trunc or quiet), quiet=quiet, fmt=fmt
    )


def _remove(
    app: App, kind: str, items: list[dict[str, Any]], name: Callable[[dict[str, Any]], str],
    ident: str = "ID",
) -> bool:
    """docker's ``removeServices`` and friends: True when one failed."""
    failed = False
    path = {"service": "services", "secret": "secrets", "config": "configs",
            "network": "networks"}[kind]
    for item in sorted(items, key=name):
        app.println(f"Removing {kind} {name(item)}")
        try:
            app.client.delete(f"/{path}/{item.get(ident, '')}")
        except DaemonError as exc:
            app.err(f"Failed to remove {kind} {item.get(ident, '')}: {exc}")
            failed = True
    return failed


def _spec_name(item: dict[str, Any]) -> str:
    return str((item.get("Spec") or {}).get("Name", ""))


def _wait_for_tasks(app: App, namespace: str) -> None:
    """docker's ``waitOnTasks``: until every task of the stack is in a terminal state."""
    while True:
        tasks = app.client.get("/tasks", stack_filter(namespace)) or []
        if all((t.get("Status") or {}).get("State") in _TERMINAL for t in tasks):
            return
        app.sleep(0.1)


@stack.command("rm", use="[OPTIONS] STACK [STACK...]", arity=(1, None))
@click.option("-d", "--detach", is_flag=True, default=True,
              help="Do not wait for stack removal (default true)")
@click.argument("args", nargs=-1)
@pass_app
def rm(app: App, detach: bool, args: tuple[str, ...]) -> None:
    """Remove one or more stacks"""
    errors = []
    for namespace in args:
        found = {kind: stack_objects(app, kind, namespace)
                 for kind in ("services", "networks", "secrets", "configs")}
        if not any(found.values()):
            app.eprintln(f"Nothing found in stack: {namespace}")
            continue
        failed = _remove(app, "service", found["services"], _spec_name)
        failed = _remove(app, "secret", found["secrets"], _spec_name) or failed
        failed = _remove(app, "config", found["configs"], _spec_name) or failed
        failed = _remove(app, "network", found["networks"], lambda n: str(n.get("Name", "")),
                         ident="Id") or failed
        if failed:
            errors.append(f"failed to remove some resources from stack: {namespace}")
            continue
        if not detach:
            _wait_for_tasks(app, namespace)
    if errors:
        raise CliError("\n".join(errors))
