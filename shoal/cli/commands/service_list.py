"""``shoal service ls|ps|inspect``."""

from __future__ import annotations

from typing import Any

import click

from shoal.cli import flagtypes as ft
from shoal.cli.app import App
from shoal.cli.client import DaemonError, filters_param
from shoal.cli.command import ShoalCommand, pass_app
from shoal.cli.commands.node import node_reference
from shoal.cli.commands.tasks import print_tasks, task_list_options
from shoal.cli.errors import CliError
from shoal.cli.format.natsort import natural_sorted
from shoal.cli.formatting import list_format, parse_template, print_inspect, render_list
from shoal.cli.options import filter_option, inspect_format_option, list_format_option
from shoal.cli.service.format import SERVICE_HEADER, SERVICE_RAW, SERVICE_TABLE, ServiceRow
from shoal.cli.service.pretty import ServicePretty
from shoal.cli.service.pretty_page import SERVICE_PRETTY
from shoal.cli.watch import watch as run_watch
from shoal.cli.watch import watch_option
from shoal.gotemplate import TemplateError

__all__ = ["append_status", "find_services", "inspect", "ls", "ps"]


def append_status(app: App, services: list[dict[str, Any]]) -> None:
    """docker's ``AppendServiceStatus``, for daemons that do not fill ``ServiceStatus``."""
    pending: dict[str, dict[str, int]] = {}
    for svc in services:
        mode = (svc.get("Spec") or {}).get("Mode") or {}
        if svc.get("ServiceStatus") is not None:
            continue
        if mode.get("Replicated") is not None:
            svc["ServiceStatus"] = {
                "RunningTasks": 0,
                "DesiredTasks": mode["Replicated"].get("Replicas", 0),
            }
        elif mode.get("Global") is not None:
            svc["ServiceStatus"] = {"RunningTasks": 0, "DesiredTasks": 0}
        else:
            continue
        pending[str(svc.get("ID"))] = {"RunningTasks": 0, "DesiredTasks": 0}
    if not pending:
        return
    query = {"filters": filters_param({"service": sorted(pending)})}
    tasks = app.client.get("/tasks", query) or []
    if not tasks:
        return
    active = {
        n.get("ID")
        for n in app.client.get("/nodes") or []
        if (n.get("Status") or {}).get("State") != "down"
    }
    for task in tasks:
        status = pending.get(str(task.get("ServiceID")))
        if status is None:
            continue
        if task.get("DesiredState") != "shutdown":
            status["DesiredTasks"] += 1
        if task.get("NodeID") in active and (task.get("Status") or {}).get("State") == "running":
            status["RunningTasks"] += 1
    for svc in services:
        if str(svc.get("ID")) in pending:
            svc["ServiceStatus"] = pending[str(svc.get("ID"))]


@click.command("ls", cls=ShoalCommand, use="[OPTIONS]")
@filter_option()
@list_format_option()
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs")
@watch_option
@click.argument("args", nargs=-1)
@pass_app
def ls(app: App, filters: tuple[Any, ...], fmt: str, quiet: bool, watch: bool,
       args: tuple[str, ...]) -> None:
    """List services"""
    if watch:
        run_watch(app, "shoal service ls", lambda: _ls(app, filters, fmt, quiet))
    else:
        _ls(app, filters, fmt, quiet)


def _ls(app: App, filters: tuple[Any, ...], fmt: str, quiet: bool) -> None:
    query = ft.filter_query(ft.filters_from(filters)) or {}
    if not quiet:
        query["status"] = "true"
    services = app.client.get("/services", query or None) or []
    if not quiet:
        append_status(app, services)
    source = list_format(
        fmt or "table",
        default_table=SERVICE_TABLE,
        quiet=quiet,
        raw=SERVICE_RAW,
        raw_quiet="id: {{.ID}}",
    )
    ordered = natural_sorted(services, key=lambda s: str((s.get("Spec") or {}).get("Name", "")))
    app.out(render_list(source, [ServiceRow(s) for s in ordered], SERVICE_HEADER))


def find_services(app: App, refs: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """docker's ``service ps`` lookup: exact ID, then exact name, then a unique ID prefix.

    Returns the service IDs found and the "no such service" messages for the rest.
    """
    by_id = app.client.get("/services", {"filters": filters_param({"id": list(refs)})}) or []
    by_name = app.client.get("/services", {"filters": filters_param({"name": list(refs)})}) or []
    found: list[str] = []
    missing: list[str] = []
    for ref in refs:
        exact = next((s["ID"] for s in by_id if s.get("ID") == ref), None)
        exact = exact or next(
            (s["ID"] for s in by_name if (s.get("Spec") or {}).get("Name") == ref), None
        )
        if exact:
            found.append(exact)
            continue
        prefixed = [s["ID"] for s in by_id if str(s.get("ID", "")).startswith(ref)]
        if len(prefixed) > 1:
            raise CliError(f"multiple services found with provided prefix: {ref}")
        if prefixed:
            found.extend(prefixed)
        else:
            missing.append(f"no such service: {ref}")
    if not found:
        raise CliError("\n".join(missing))
    return found, missing


@click.command("ps", cls=ShoalCommand, use="[OPTIONS] SERVICE [SERVICE...]", arity=(1, None))
@task_list_options
@watch_option
@click.argument("args", nargs=-1)
@pass_app
def ps(
    app: App,
    filters: tuple[Any, ...],
    fmt: str,
    no_resolve: bool,
    no_trunc: bool,
    quiet: bool,
    watch: bool,
    args: tuple[str, ...],
) -> None:
    """List the tasks of one or more services"""
    def listing() -> None:
        _ps(app, filters, fmt, no_resolve=no_resolve, no_trunc=no_trunc, quiet=quiet, args=args)

    if watch:
        run_watch(app, "shoal service ps " + " ".join(args), listing)
    else:
        listing()


def _ps(app: App, filters: tuple[Any, ...], fmt: str, *, no_resolve: bool, no_trunc: bool,
        quiet: bool, args: tuple[str, ...]) -> None:
    query = ft.filters_from(filters)
    ids, missing = find_services(app, args)
    for ident in ids:
        query.setdefault("service", []).append(ident)
    if "node" in query:
        query["node"] = [node_reference(app, ref) for ref in query["node"]]
    tasks = app.client.get("/tasks", ft.filter_query(query)) or []
    print_tasks(
        app, tasks, resolve=not no_resolve, trunc=not (no_trunc or quiet), quiet=quiet, fmt=fmt
    )
    if missing:
        raise CliError("\n".join(missing))


def _network_names(app: App, service: dict[str, Any]) -> dict[str, str]:
    names = {}
    for attachment in ((service.get("Spec") or {}).get("TaskTemplate") or {}).get("Networks") or []:
        target = str(attachment.get("Target", ""))
        try:
            net = app.client.get(f"/networks/{target}", {"scope": "swarm"}) or {}
        except DaemonError:
            continue
        names[str(net.get("Id", target))] = str(net.get("Name", target))
    return names


@click.command("inspect", cls=ShoalCommand, use="[OPTIONS] SERVICE [SERVICE...]", arity=(1, None))
@inspect_format_option()
@click.option("--pretty", is_flag=True, help="Print the information in a human friendly format")
@click.argument("args", nargs=-1)
@pass_app
def inspect(app: App, fmt: str, pretty: bool, args: tuple[str, ...]) -> None:
    """Display detailed information on one or more services"""
    if pretty:
        fmt = "pretty"
    if fmt.startswith("pretty") and fmt != "pretty":
        raise CliError("Cannot supply extra formatting options to the pretty template")
    fmt = fmt.removeprefix("raw")

    def fetch(ref: str) -> Any:
        try:
            return app.client.get(f"/services/{ref}", {"insertDefaults": "true"})
        except DaemonError as exc:
            if exc.not_found:
                raise CliError(f"Error: no such service: {ref}") from exc
            raise

    if fmt == "pretty":
        template = parse_template(SERVICE_PRETTY)
        pages = []
        for ref in args:
            svc = fetch(ref)
            try:
                pages.append(
                    template.execute(ServicePretty(svc, _network_names(app, svc), app.now_ns()))
                    + "\n"
                )
            except TemplateError as exc:
                raise CliError(f"template parsing error: {exc}") from exc
        app.out("".join(pages))
        return
    print_inspect(app.out, args, fetch, fmt)
