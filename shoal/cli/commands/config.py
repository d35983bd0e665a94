"""``shoal config create|ls|inspect|rm``, as docker's ``cli/command/config``."""

from __future__ import annotations

import sys
from typing import Any

import click

from shoal.cli import flagtypes as ft
from shoal.cli.app import App
from shoal.cli.command import ShoalGroup, pass_app
from shoal.cli.commands.common import remove_each
from shoal.cli.commands.stored import (
    CONFIG_PRETTY,
    ConfigPretty,
    ConfigRow,
    inspect_objects,
    list_objects,
    read_data,
    spec_annotations,
)
from shoal.cli.errors import CliError
from shoal.cli.options import filter_option, inspect_format_option, list_format_option

__all__ = ["config"]

_TABLE = "table {{.ID}}\t{{.Name}}\t{{.CreatedAt}}\t{{.UpdatedAt}}"
_MAX_SIZE = 1000 * 1024  # swarmkit's MaxConfigSize; the CLI reads twice that at most


@click.group(cls=ShoalGroup)
def config() -> None:
    """Manage Swarm configs"""


config.alias("list", "ls")
config.alias("remove", "rm")


@config.command("create", use="[OPTIONS] CONFIG file|-", arity=(2, 2))
@click.option("-l", "--label", type=ft.LABEL, multiple=True, help="Config labels")
@click.option("--template-driver", default="", help="Template driver")
@click.argument("args", nargs=-1)
@pass_app
def create(app: App, label: tuple[str, ...], template_driver: str, args: tuple[str, ...]) -> None:
    """Create a config from a file or STDIN"""
    name, path = args
    try:
        if not path:
            raise CliError("config file is required")
        data = read_data(path, sys.stdin.buffer, 2 * _MAX_SIZE)
    except CliError as exc:
        raise CliError(f'Error reading content from "{path}": {exc.message}') from exc
    spec = spec_annotations(name, label, data)
    if template_driver:
        spec["Templating"] = {"Name": template_driver}
    response = app.client.post("/configs/create", spec) or {}
    app.println(str(response.get("ID", "")))


@config.command("ls", use="[OPTIONS]")
@filter_option()
@list_format_option()
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs")
@click.argument("args", nargs=-1)
@pass_app
def ls(app: App, filters: tuple[Any, ...], fmt: str, quiet: bool, args: tuple[str, ...]) -> None:
    """List configs"""
    list_objects(app, "/configs", ConfigRow, _TABLE, filters, fmt, quiet)


@config.command("inspect", use="[OPTIONS] CONFIG [CONFIG...]", arity=(1, None))
@inspect_format_option()
@click.option("--pretty", is_flag=True, help="Print the information in a human friendly format")
@click.argument("args", nargs=-1)
@pass_app
def inspect(app: App, fmt: str, pretty: bool, args: tuple[str, ...]) -> None:
    """Display detailed information on one or more configs"""
    inspect_objects(app, "/configs", fmt, pretty, args, (CONFIG_PRETTY, ConfigPretty))


@config.command("rm", use="CONFIG [CONFIG...]", arity=(1, None))
@click.argument("args", nargs=-1)
@pass_app
def rm(app: App, args: tuple[str, ...]) -> None:
    """Remove one or more configs"""
    remove_each(app, args, lambda ref: app.client.delete(f"/configs/{ref}"))
