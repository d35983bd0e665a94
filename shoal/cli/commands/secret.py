"""``shoal secret create|ls|inspect|rm``, as docker's ``cli/command/secret``."""

from __future__ import annotations

import sys
from typing import Any

import click

from shoal.cli import flagtypes as ft
from shoal.cli.app import App
from shoal.cli.command import ShoalGroup, pass_app
from shoal.cli.commands.common import remove_each
from shoal.cli.commands.stored import (
    SECRET_PRETTY,
    SecretPretty,
    SecretRow,
    inspect_objects,
    list_objects,
    read_data,
    spec_annotations,
)
from shoal.cli.errors import CliError
from shoal.cli.options import filter_option, inspect_format_option, list_format_option

__all__ = ["secret"]

_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.CreatedAt}}\t{{.UpdatedAt}}"
_MAX_SIZE = 500 * 1024  # swarmkit's MaxSecretSize; the CLI reads twice that at most


@click.group(cls=ShoalGroup)
def secret() -> None:
    """Manage Swarm secrets"""


secret.alias("list", "ls")
secret.alias("remove", "rm")


@secret.command("create", use="[OPTIONS] SECRET [file|-]", arity=(1, 2))
@click.option("-d", "--driver", default="", help="Secret driver")
@click.option("-l", "--label", type=ft.LABEL, multiple=True, help="Secret labels")
@click.option("--template-driver", default="", help="Template driver")
@click.argument("args", nargs=-1)
@pass_app
def create(
    app: App, driver: str, label: tuple[str, ...], template_driver: str, args: tuple[str, ...]
) -> None:
    """Create a secret from a file or STDIN as content"""
    path = args[1] if len(args) == 2 else ""
    data = None
    if driver:
        if path:
            raise CliError("When using secret driver secret data must be empty")
    elif not path:
        raise CliError("secret file is required")
    else:
        data = read_data(path, sys.stdin.buffer, 2 * _MAX_SIZE)
    spec = spec_annotations(args[0], label, data)
    if driver:
        spec["Driver"] = {"Name": driver}
    if template_driver:
        spec["Templating"] = {"Name": template_driver}
    response = app.client.post("/secrets/create", spec) or {}
    app.println(str(response.get("ID", "")))


@secret.command("ls", use="[OPTIONS]")
@filter_option()
@list_format_option()
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs")
@click.argument("args", nargs=-1)
@pass_app
def ls(app: App, filters: tuple[Any, ...], fmt: str, quiet: bool, args: tuple[str, ...]) -> None:
    """List secrets"""
    list_objects(app, "/secrets", SecretRow, _TABLE, filters, fmt, quiet)


@secret.command("inspect", use="[OPTIONS] SECRET [SECRET...]", arity=(1, None))
@inspect_format_option()
@click.option("--pretty", is_flag=True, help="Print the information in a human friendly format")
@click.argument("args", nargs=-1)
@pass_app
def inspect(app: App, fmt: str, pretty: bool, args: tuple[str, ...]) -> None:
    """Display detailed information on one or more secrets"""
    inspect_objects(app, "/secrets", fmt, pretty, args, (SECRET_PRETTY, SecretPretty))


@secret.command("rm", use="SECRET [SECRET...]", arity=(1, None))
@click.argument("args", nargs=-1)
@pass_app
def rm(app: App, args: tuple[str, ...]) -> None:
    """Remove one or more secrets"""
    remove_each(app, args, lambda ref: app.client.delete(f"/secrets/{ref}"))
