"""The ``shoal`` entry point: the root command group, global flags, and the one place where
every error becomes a message on stderr and an exit status.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click
import httpx

from shoal import __version__
from shoal.cli.app import App
from shoal.cli.client import DaemonError, DaemonUnreachable, TLSOptions
from shoal.cli.command import BIN, ShoalGroup, usage_line
from shoal.cli.errors import CliError, Interrupted

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = ["cli", "exit_status", "main"]

_FLAG_ERROR_STATUS = 125  # docker's status for a bad flag
# The entry-point group of the commands other packages plug in by name (pyproject.toml): `shoal
# dev` (shoal.dev.cli) starts daemons on this machine, code the CLI does not import
# ([tool.importlinter]); each is imported only when it runs or --help lists it.
_PLUGINS = "shoal.commands"


class RootGroup(ShoalGroup):
    """``shoal``: runs the command and maps every failure to docker's output and status."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in _plugins():
            command = _plugins()[cmd_name].load()
            self.add_command(command, cmd_name)
        return command

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        app = extra.pop("obj", None)
        if not isinstance(app, App):
            app = App()
        try:
            status = self._run(app, list(sys.argv[1:] if args is None else args), extra)
        finally:
            app.close()
        if not standalone_mode:
            return status
        sys.exit(status)

    def _run(self, app: App, args: list[str], extra: dict[str, Any]) -> int:
        try:
            result = super().main(args, prog_name=BIN, standalone_mode=False, obj=app, **extra)
            return result if isinstance(result, int) and not isinstance(result, bool) else 0
        except click.exceptions.Exit as exc:
            return exc.exit_code
        except click.exceptions.NoArgsIsHelpError as exc:
            if exc.ctx is not None:
                click.echo(exc.ctx.get_help(), err=True)
            return 0
        except click.UsageError as exc:
            return _usage_failure(exc)
        except CliError as exc:
            if exc.message:
                app.eprintln(exc.message)
            return exc.status
        except (DaemonError, DaemonUnreachable) as exc:
            app.eprintln(str(exc))
            return 1
        except (Interrupted, click.exceptions.Abort, KeyboardInterrupt):
            return 130
        except httpx.HTTPError as exc:
            app.eprintln(f"error during connect: {exc}")
            return 1


def _usage_failure(exc: click.UsageError) -> int:
    """Print a click usage error the way cobra/pflag word it."""
    ctx = exc.ctx
    message = exc.format_message()
    status = _FLAG_ERROR_STATUS
    if isinstance(exc, click.NoSuchOption):
        name = exc.option_name
        if name.startswith("--"):
            message = f"unknown flag: {name}"
        else:
            message = f"unknown shorthand flag: {name[1:2]!r} in {name}"
    elif isinstance(exc, click.BadOptionUsage) and "requires an argument" in message:
        name = exc.option_name
        message = (
            f"flag needs an argument: {name}"
            if name.startswith("--")
            else f"flag needs an argument: {name[1:2]!r} in {name}"
        )
    elif isinstance(exc, click.BadParameter):
        message = str(exc.message)
    else:
        status = 1
    if ctx is not None:
        message += (
            f"\n\nUsage:  {usage_line(ctx)}\n\nRun '{ctx.command_path} --help' for more information"
        )
    click.echo(message, err=True)
    return status


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"Shoal version {__version__}")
        ctx.exit(0)


@click.group(cls=RootGroup, name=BIN)
@click.option("-H", "--host", "host", metavar="list", help="Daemon socket to connect to")
@click.option(
    "-v",
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_version,
    help="Print version information and quit",
)
@click.option("--tls", is_flag=True, help="Use TLS; implied by --tlsverify")
@click.option("--tlsverify", is_flag=True, help="Use TLS and verify the remote")
@click.option("--tlscacert", metavar="string", help='Trust certs signed only by this CA (default "~/.docker/ca.pem")')
@click.option("--tlscert", metavar="string", help='Path to TLS certificate file (default "~/.docker/cert.pem")')
@click.option("--tlskey", metavar="string", help='Path to TLS key file (default "~/.docker/key.pem")')
@click.pass_context
def cli(ctx: click.Context, host: str | None, tls: bool, tlsverify: bool, tlscacert: str | None,
        tlscert: str | None, tlskey: str | None) -> None:
    """A self-sufficient runtime for swarm services (the swarm subset of the docker CLI)."""
    app = ctx.ensure_object(App)
    if host:
        app.host = host
    options = TLSOptions.from_flags(tls=tls, tlsverify=tlsverify, cacert=tlscacert, cert=tlscert, key=tlskey)
    if options is not None:
        app.tls = options


@functools.cache
def _plugins() -> dict[str, EntryPoint]:
    from importlib.metadata import entry_points

    return {entry.name: entry for entry in entry_points(group=_PLUGINS)}


def _register() -> None:
    from shoal.cli.commands.config import config
    from shoal.cli.commands.events import events
    from shoal.cli.commands.network import network
    from shoal.cli.commands.node import node
    from shoal.cli.commands.secret import secret
    from shoal.cli.commands.service import service
    from shoal.cli.commands.stack import stack
    from shoal.cli.commands.swarm import swarm
    from shoal.cli.commands.system import info, version

    for command in (config, events, node, network, secret, service, stack, swarm, info, version):
        cli.add_command(command)
    from shoal.cli.commands.image import ALIASES, image

    cli.add_command(image)
    for alias in ALIASES:
        cli.add_command(alias)


_register()


def exit_status(args: Sequence[str], app: App | None = None) -> int:
    """Run ``shoal ARGS`` in-process and return the exit status (for tests and embedding)."""
    status = cli.main(list(args), standalone_mode=False, obj=app or App())
    return int(status)


def main() -> None:
    """Console-script entry point."""
    cli.main()
