"""``shoal service create|update|scale|rollback|rm`` (the listing commands are in
`shoal.cli.commands.service_list`)."""

from __future__ import annotations

from typing import Any

import click

from shoal.cli.app import App
from shoal.cli.client import DaemonError
from shoal.cli.command import ShoalGroup, changed, pass_app
from shoal.cli.commands.common import remove_each
from shoal.cli.commands.service_list import inspect, ls, ps
from shoal.cli.commands.service_logs import logs
from shoal.cli.errors import CliError
from shoal.cli.format import units
from shoal.cli.progress.watch import wait_on_service
from shoal.cli.registry_auth import HEADER, encoded_auth
from shoal.cli.service.flags import create_flags, update_flags
from shoal.cli.service.image import resolve_image
from shoal.cli.service.spec import build_spec
from shoal.cli.service.update import prune_empty, update_spec

__all__ = ["service"]


@click.group(cls=ShoalGroup)
def service() -> None:
    """Manage Swarm services"""


service.alias("list", "ls")
service.alias("remove", "rm")


def _print_warnings(app: App, warnings: list[str] | None) -> None:
    for warning in warnings or []:
        app.eprintln(warning)


@service.command(
    "create",
    use="[OPTIONS] IMAGE [COMMAND] [ARG...]",
    arity=(1, None),
    context_settings={"allow_interspersed_args": False},
)
@create_flags
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def create(ctx: click.Context, /, **params: Any) -> None:
    """Create a new service"""
    app: App = ctx.obj
    spec = build_spec(app, params, lambda name: changed(ctx, name))
    warning = resolve_image(
        app, spec["TaskTemplate"], query_registry=not params["no_resolve_image"]
    )
    headers = {}
    if params["with_registry_auth"]:
        image = str((spec["TaskTemplate"].get("ContainerSpec") or {}).get("Image", ""))
        headers[HEADER] = encoded_auth(image)
    response = app.client.post("/services/create", spec, headers=headers) or {}
    _print_warnings(app, (response.get("Warnings") or []) + ([warning] if warning else []))
    service_id = str(response.get("ID", ""))
    app.println(service_id)
    if not params["detach"]:
        wait_on_service(app, service_id, quiet=params["quiet"])


@service.command("update", use="[OPTIONS] SERVICE", arity=(1, 1))
@update_flags
@click.argument("args", nargs=-1)
@click.pass_context
def update(ctx: click.Context, /, **params: Any) -> None:
    """Update a service"""
    app: App = ctx.obj
    name = params["args"][0]
    current = app.client.get(f"/services/{name}", {"insertDefaults": "false"})
    query = {"registryAuthFrom": "spec"}
    if params["rollback"]:
        others = [
            p.name
            for p in ctx.command.params
            if p.name not in ("rollback", "detach", "quiet", "args") and changed(ctx, p.name or "")
        ]
        if others:
            raise CliError("other flags may not be combined with --rollback")
        query["rollback"] = "previous"
    spec = current.setdefault("Spec", {})
    update_spec(app, spec, params, lambda flag: changed(ctx, flag))
    warning = resolve_image(
        app,
        spec.setdefault("TaskTemplate", {}),
        query_registry=changed(ctx, "image") and not params["no_resolve_image"],
    )
    query["version"] = str((current.get("Version") or {}).get("Index", 0))
    headers = {}
    if params["with_registry_auth"]:
        image = str(((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image", ""))
        headers[HEADER] = encoded_auth(image)
    response = (
        app.client.post(
            f"/services/{current.get('ID', name)}/update", prune_empty(spec), params=query,
            headers=headers,
        )
        or {}
    )
    _print_warnings(app, (response.get("Warnings") or []) + ([warning] if warning else []))
    app.println(name)
    if not params["detach"]:
        wait_on_service(app, name, quiet=params["quiet"])


def _scale_one(app: App, name: str, replicas: int) -> list[str]:
    current = app.client.get(f"/services/{name}", {"insertDefaults": "false"})
    mode = (current.get("Spec") or {}).get("Mode") or {}
    if mode.get("Replicated") is not None:
        mode["Replicated"]["Replicas"] = replicas
    elif mode.get("ReplicatedJob") is not None:
        mode["ReplicatedJob"]["TotalCompletions"] = replicas
    else:
        raise CliError("scale can only be used with replicated or replicated-job mode")
    version = str((current.get("Version") or {}).get("Index", 0))
    spec = current.get("Spec") or {}
    resolve_image(app, spec.get("TaskTemplate") or {}, query_registry=False)
    response = (
        app.client.post(
            f"/services/{current.get('ID', name)}/update", spec, params={"version": version}
        )
        or {}
    )
    return list(response.get("Warnings") or [])


@service.command("scale", use="SERVICE=REPLICAS [SERVICE=REPLICAS...]", arity=(1, None))
@click.option(
    "-d",
    "--detach",
    is_flag=True,
    help="Exit immediately instead of waiting for the service to converge",
)
@click.argument("args", nargs=-1)
@click.pass_context
def scale(ctx: click.Context, detach: bool, args: tuple[str, ...]) -> None:
    """Scale one or multiple replicated services"""
    app: App = ctx.obj
    for arg in args:
        name, _, count = arg.partition("=")
        if not name or not count:
            raise CliError(
                f"invalid scale specifier '{arg}'.\nSee '{ctx.command_path} --help'.\n\n"
                f"Usage:  {ctx.command_path} SERVICE=REPLICAS [SERVICE=REPLICAS...]\n\n"
                "Scale one or multiple replicated services"
            )
    errors: list[str] = []
    scaled: list[str] = []
    for arg in args:
        name, _, count = arg.partition("=")
        try:
            replicas = units.parse_uint(count, 64, base=10)
        except ValueError as exc:
            errors.append(f"{name}: invalid replicas value {count}: {exc}")
            continue
        try:
            _print_warnings(app, _scale_one(app, name, replicas))
        except (DaemonError, CliError) as exc:
            errors.append(f"{name}: {exc}")
            continue
        app.println(f"{name} scaled to {replicas}")
        scaled.append(name)
    if not detach:
        for name in scaled:
            try:
                wait_on_service(app, name)
            except (DaemonError, CliError) as exc:
                errors.append(f"{name}: {exc}")
    if errors:
        raise CliError("\n".join(errors))


@service.command("rollback", use="[OPTIONS] SERVICE", arity=(1, 1))
@click.option(
    "-d",
    "--detach",
    is_flag=True,
    help="Exit immediately instead of waiting for the service to converge",
)
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output")
@click.argument("args", nargs=-1)
@pass_app
def rollback(app: App, detach: bool, quiet: bool, args: tuple[str, ...]) -> None:
    """Revert changes to a service's configuration"""
    name = args[0]
    current = app.client.get(f"/services/{name}", {"insertDefaults": "false"})
    spec = current.get("Spec") or {}
    resolve_image(app, spec.get("TaskTemplate") or {}, query_registry=False)
    version = str((current.get("Version") or {}).get("Index", 0))
    response = (
        app.client.post(
            f"/services/{current.get('ID', name)}/update",
            spec,
            params={"rollback": "previous", "version": version},
        )
        or {}
    )
    _print_warnings(app, response.get("Warnings"))
    app.println(name)
    if not detach:
        wait_on_service(app, name, quiet=quiet)


@service.command("rm", use="SERVICE [SERVICE...]", arity=(1, None))
@click.argument("args", nargs=-1)
@pass_app
def rm(app: App, args: tuple[str, ...]) -> None:
    """Remove one or more services"""
    remove_each(app, args, lambda name: app.client.delete(f"/services/{name}"))


for _command in (ls, ps, inspect, logs):  # defined in their own modules, listed under `service`
    service.add_command(_command)
