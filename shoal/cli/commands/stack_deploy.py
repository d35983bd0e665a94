"""``shoal stack deploy``: docker's ``deployCompose`` — load the compose files, check this is a
manager, prune, create the missing networks, create or update secrets and configs, then create
or update each service (with its current version)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from shoal.cli.app import App
from shoal.cli.client import DaemonError, filters_param
from shoal.cli.command import ShoalCommand, changed
from shoal.cli.compose import convert
from shoal.cli.compose.convert import LABEL_IMAGE, LABEL_NAMESPACE, Namespace
from shoal.cli.compose.dump import dump
from shoal.cli.compose.loader import Config, ConfigFile, load
from shoal.cli.errors import CliError
from shoal.cli.progress.watch import wait_on_service
from shoal.cli.registry_auth import HEADER, encoded_auth
from shoal.cli.service.image import resolve_image

__all__ = ["config", "deploy", "read_compose_files"]

_RESOLVE = ("always", "changed", "never")
_DETACH_WARNING = (
    "Since --detach=false was not specified, tasks will be created in the background.\n"
    "In a future release, --detach=false will become the default."
)
_NOT_MANAGER = (
    'this node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect '
    "this node to swarm and try again"
)


def read_compose_files(names: tuple[str, ...]) -> tuple[list[ConfigFile], str]:
    """The files' texts (``-`` is stdin) and the working directory: the first file's."""
    if not names:
        raise CliError("Please specify a Compose file (with --compose-file).")
    files = []
    for name in names:
        try:
            if name == "-":
                data = sys.stdin.buffer.read()
            else:
                with open(name, "rb") as fh:
                    data = fh.read()
        except OSError as exc:
            raise CliError(f"open {name}: {(exc.strerror or str(exc)).lower()}") from None
        try:
            files.append(ConfigFile(name, data.decode("utf-8")))
        except UnicodeDecodeError as exc:  # yaml.v3's words for what it cannot read
            raise CliError(f"{name}: yaml: invalid leading UTF-8 octet at byte {exc.start}") from None
    first = names[0]
    working_dir = os.getcwd() if first == "-" else os.path.dirname(os.path.abspath(first))
    return files, working_dir


@click.command("config", cls=ShoalCommand, use="[OPTIONS]")
@click.option("-c", "--compose-file", "compose_files", multiple=True, metavar="strings",
              help='Path to a Compose file, or "-" to read from stdin')
@click.option("--skip-interpolation", is_flag=True,
              help="Skip interpolation and output only merged config")
@click.argument("args", nargs=-1)
@click.pass_context
def config(ctx: click.Context, /, **params: Any) -> None:
    """Outputs the final config file, after doing merges and interpolations"""
    app: App = ctx.obj
    files, working_dir = read_compose_files(params["compose_files"])
    loaded = load(files, working_dir=working_dir, interpolation=not params["skip_interpolation"])
    app.out(dump(loaded))


def _stack_query(namespace: str) -> dict[str, str]:
    return {"filters": filters_param({"label": [f"{LABEL_NAMESPACE}={namespace}"]})}


@click.command("deploy", cls=ShoalCommand, use="[OPTIONS] STACK", arity=(1, 1))
@click.option("-c", "--compose-file", "compose_files", multiple=True, metavar="strings",
              help='Path to a Compose file, or "-" to read from stdin')
@click.option("-d", "--detach", is_flag=True, default=True,
              help="Exit immediately instead of waiting for the stack services to converge "
                   "(default true)")
@click.option("--prune", is_flag=True, help="Prune services that are no longer referenced")
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output")
@click.option("--resolve-image", default="always",
              help='Query the registry to resolve image digest and supported platforms '
                   '("always", "changed", "never") (default "always")')
@click.option("--with-registry-auth", is_flag=True,
              help="Send registry authentication details to Swarm agents")
@click.argument("args", nargs=-1)
@click.pass_context
def deploy(ctx: click.Context, /, **params: Any) -> None:
    """Deploy a new stack or update an existing stack"""
    app: App = ctx.obj
    namespace = params["args"][0]
    if not namespace.strip() or namespace.strip() != namespace:
        raise CliError(f"invalid stack name: {json.dumps(namespace)}")
    resolve = params["resolve_image"]
    if resolve not in _RESOLVE:
        raise CliError(f"Invalid option {resolve} for flag --resolve-image")
    if params["detach"] and not changed(ctx, "detach"):
        app.eprintln(_DETACH_WARNING)
    files, working_dir = read_compose_files(params["compose_files"])
    config = load(files, working_dir=working_dir)
    for warning in config.warnings:
        app.eprintln(warning)
    info = app.client.get("/info") or {}
    if not (info.get("Swarm") or {}).get("ControlAvailable"):
        raise CliError(_NOT_MANAGER)
    ns = Namespace(namespace)
    if params["prune"]:
        _prune(app, ns, set(config.services))
    _create_networks(app, ns, config)
    _create_file_objects(app, "secret", convert.file_objects(ns, config.secrets))
    _create_file_objects(app, "config", convert.file_objects(ns, config.configs))
    specs = _service_specs(app, ns, config)
    ids = _deploy_services(app, ns, specs, resolve, params["with_registry_auth"])
    if params["detach"]:
        return
    errors = []
    for service_id in ids:
        try:
            wait_on_service(app, service_id, quiet=params["quiet"])
        except (DaemonError, CliError) as exc:
            errors.append(f"failed to wait on service {service_id}: {exc}")
    if errors:
        raise CliError("\n".join(errors))


def _remove_services(app: App, services: list[dict[str, Any]]) -> None:
    for svc in sorted(services, key=lambda s: str((s.get("Spec") or {}).get("Name", ""))):
        app.println(f"Removing service {(svc.get('Spec') or {}).get('Name', '')}")
        try:
            app.client.delete(f"/services/{svc.get('ID', '')}")
        except DaemonError as exc:
            app.err(f"Failed to remove service {svc.get('ID', '')}: {exc}")


def _prune(app: App, ns: Namespace, keep: set[str]) -> None:
    """docker's ``pruneServices``: remove the stack's services no longer in the files."""
    try:
        existing = app.client.get("/services", _stack_query(ns.name)) or []
    except DaemonError as exc:
        app.eprintln(f"Failed to list services: {exc}")
        existing = []
    _remove_services(app, [
        s for s in existing if ns.descope(str((s.get("Spec") or {}).get("Name", ""))) not in keep
    ])


def _create_networks(app: App, ns: Namespace, config: Config) -> None:
    creates, external = convert.networks(ns, config)
    for name in external:
        if name in ("default", "bridge", "host", "none") or name.startswith("container:"):
            continue
        try:
            net = app.client.get(f"/networks/{name}") or {}
        except DaemonError as exc:
            if exc.not_found:
                raise CliError(
                    f'network "{name}" is declared as external, but could not be found. You '
                    "need to create a swarm-scoped network before the stack is deployed"
                ) from None
            raise
        if net.get("Scope") != "swarm":
            raise CliError(
                f'network "{name}" is declared as external, but it is not in the right scope: '
                f'"{net.get("Scope", "")}" instead of "swarm"'
            )
    existing = {str(n.get("Name", "")) for n in app.client.get("/networks", _stack_query(ns.name))
                or []}
    for name, request in creates.items():
        if name in existing:
            continue
        app.println(f"Creating network {name}")
        try:
            app.client.post("/networks/create", request)
        except DaemonError as exc:
            raise CliError(f"failed to create network {name}: {exc}") from None


def _create_file_objects(app: App, kind: str, specs: list[dict[str, Any]]) -> None:
    """docker's ``createSecrets`` / ``createConfigs``: update when it exists, else create."""
    path = f"/{kind}s"
    for spec in specs:
        name = spec["Name"]
        try:
            current = app.client.get(f"{path}/{name}")
        except DaemonError as exc:
            if not exc.not_found:
                raise
            app.println(f"Creating {kind} {name}")
            try:
                app.client.post(f"{path}/create", spec)
            except DaemonError as err:
                raise CliError(f"failed to create {kind} {name}: {err}") from None
            continue
        version = str(((current or {}).get("Version") or {}).get("Index", 0))
        try:
            app.client.post(f"{path}/{current.get('ID', name)}/update", spec,
                            params={"version": version})
        except DaemonError as exc:
            raise CliError(f"failed to update {kind} {name}: {exc}") from None


def _resolve_references(
    app: App, kind: str, refs: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """docker's ``ParseSecrets`` / ``ParseConfigs``: names to IDs, one target per file."""
    if not refs:
        return []
    label = kind.capitalize()
    targets: dict[str, dict[str, Any]] = {}
    for ref in refs:
        if ref["File"]["Name"] in targets:
            raise CliError(f"duplicate {kind} target for {ref['Name']} not allowed")
        targets[ref["File"]["Name"]] = ref
    names = sorted({ref["Name"] for ref in refs})
    found = {
        str((obj.get("Spec") or {}).get("Name", "")): str(obj.get("ID", ""))
        for obj in app.client.get(f"/{kind}s", {"filters": filters_param({"name": names})}) or []
    }
    out = []
    for ref in targets.values():
        if ref["Name"] not in found:
            raise CliError(f"{kind} not found: {ref['Name']}")
        out.append({"File": ref["File"], f"{label}ID": found[ref["Name"]],
                    f"{label}Name": ref["Name"]})
    return sorted(out, key=lambda r: str(r[f"{label}Name"]))


def _service_specs(app: App, ns: Namespace, config: Config) -> dict[str, dict[str, Any]]:
    specs = {}
    for key in sorted(config.services):
        svc = config.services[key]
        try:
            secrets = _resolve_references(app, "secret", convert.file_references(
                ns, svc.get("secrets") or [], config.secrets, "secret"))
            configs = _resolve_references(app, "config", convert.file_references(
                ns, svc.get("configs") or [], config.configs, "config"))
            specs[key] = convert.service_spec(ns, key, svc, config, secrets, configs)
        except CliError as exc:
            raise CliError(f"service {key}: {exc}") from None
    return specs


def _deploy_services(
    app: App, ns: Namespace, specs: dict[str, dict[str, Any]], resolve: str, send_auth: bool
) -> list[str]:
    existing = {
        str((s.get("Spec") or {}).get("Name", "")): s
        for s in app.client.get("/services", _stack_query(ns.name)) or []
    }
    ids = []
    for key, spec in specs.items():
        name = ns.scope(key)
        task = spec["TaskTemplate"]
        image = str(task["ContainerSpec"]["Image"])
        headers = {HEADER: encoded_auth(image)} if send_auth else {}
        current = existing.get(name)
        if current is not None:
            app.println(f"Updating service {name} (id: {current.get('ID', '')})")
            stored = current.get("Spec") or {}
            stored_task = stored.get("TaskTemplate") or {}
            query = resolve == "always" or (
                resolve == "changed" and image != (stored.get("Labels") or {}).get(LABEL_IMAGE)
            )
            if not query and image == (stored.get("Labels") or {}).get(LABEL_IMAGE):
                task["ContainerSpec"]["Image"] = (stored_task.get("ContainerSpec") or {}).get(
                    "Image", image)
            warnings: list[str] = []
            if query:
                warning = resolve_image(app, task, query_registry=True)
                warnings.extend([warning] if warning else [])
            task["ForceUpdate"] = stored_task.get("ForceUpdate", 0)
            version = str((current.get("Version") or {}).get("Index", 0))
            try:
                response = app.client.post(f"/services/{current.get('ID', '')}/update", spec,
                                           params={"version": version}, headers=headers) or {}
            except DaemonError as exc:
                raise CliError(f"failed to update service {name}: {exc}") from None
            for warning in [*(response.get("Warnings") or []), *warnings]:
                app.eprintln(warning)
            ids.append(str(current.get("ID", "")))
        else:
            app.println(f"Creating service {name}")
            if resolve in ("always", "changed"):
                resolve_image(app, task, query_registry=True)
            try:
                response = app.client.post("/services/create", spec, headers=headers) or {}
            except DaemonError as exc:
                raise CliError(f"failed to create service {name}: {exc}") from None
            ids.append(str(response.get("ID", "")))
    return ids
