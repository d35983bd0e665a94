"""click classes that behave like docker's cobra commands: usage lines, argument counts,
``--flag=false`` for booleans, "was this flag given" (`changed`), and docker's usage errors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from shoal.cli.app import App
from shoal.cli.errors import UsageError
from shoal.cli.flagtypes import invalid_argument
from shoal.cli.format import units

__all__ = ["BIN", "ShoalCommand", "ShoalGroup", "changed", "pass_app", "usage_line"]

BIN = "shoal"
_FALSE_FLAGS = "shoal.false_flags"
_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

F = TypeVar("F", bound=Callable[..., Any])


def pass_app(func: F) -> F:
    """Give the command the `App` as its first argument."""
    return click.pass_obj(func)  # type: ignore[return-value]


def changed(ctx: click.Context, name: str) -> bool:
    """pflag's ``Changed``: the flag was given on the command line (even as ``--x=false``)."""
    if name in ctx.meta.get(_FALSE_FLAGS, set()):
        return True
    return ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE


def usage_line(ctx: click.Context) -> str:
    command = ctx.command
    use = getattr(command, "use", "")
    if isinstance(command, click.Group) and not use:
        use = "COMMAND"
    return f"{ctx.command_path} {use}".rstrip()


class ShoalCommand(click.Command):
    """A leaf command with docker's usage line (`use`) and positional-argument `arity`.

    `arity` is ``(min, max)`` with ``max=None`` for unbounded; positional values are collected
    in a ``nargs=-1`` argument called ``args``.
    """

    def __init__(
        self,
        *args: Any,
        use: str = "[OPTIONS]",
        arity: tuple[int, int | None] = (0, 0),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("context_settings", {})
        kwargs["context_settings"] = {**_CONTEXT, **kwargs["context_settings"]}
        super().__init__(*args, **kwargs)
        self.use = use
        self.arity = arity
        for param in self.params:
            if isinstance(param, click.Option) and not param.is_flag and param.metavar is None:
                name = param.type.name
                param.metavar = "string" if name in ("text", "string") else name

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write(f"Usage:  {usage_line(ctx)}\n")

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the flags sorted by long name, as pflag does."""
        records = [(p, p.get_help_record(ctx)) for p in self.get_params(ctx)]
        rows = sorted(
            (record for param, record in records if record is not None),
            key=lambda record: record[0].split("--")[-1],
        )
        if rows:
            with formatter.section("Options"):
                formatter.write_dl(rows)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        args, false_flags = self._bool_values(ctx, args)
        try:
            rest = super().parse_args(ctx, args)
        except click.UsageError as exc:
            exc.ctx = exc.ctx or ctx  # click's parser leaves it out; the usage hint needs it
            raise
        for name in false_flags:
            ctx.params[name] = False
        ctx.meta[_FALSE_FLAGS] = false_flags
        self._check_arity(ctx, list(ctx.params.get("args", ())))
        return rest

    def _bool_values(self, ctx: click.Context, args: list[str]) -> tuple[list[str], set[str]]:
        """Rewrite ``--flag=true|false`` for boolean flags, as pflag accepts them."""
        flags = {
            opt: param
            for param in self.params
            if isinstance(param, click.Option) and param.is_flag and not param.count
            for opt in param.opts
        }
        out: list[str] = []
        false_flags: set[str] = set()
        for i, token in enumerate(args):
            if token == "--":
                out.extend(args[i:])
                break
            name, sep, value = token.partition("=")
            param = flags.get(name) if sep and token.startswith("-") else None
            if param is None:
                out.append(token)
                continue
            try:
                truth = units.parse_bool(value)
            except ValueError as exc:
                raise invalid_argument(value, param, ctx, exc) from exc
            if truth:
                out.append(name)
            else:
                false_flags.add(param.name or "")
        return out, false_flags

    def _check_arity(self, ctx: click.Context, args: Sequence[str]) -> None:
        low, high = self.arity
        if low <= len(args) and (high is None or len(args) <= high):
            return
        path, use = ctx.command_path, usage_line(ctx)

        def plural(n: int) -> str:
            return "argument" if n == 1 else "arguments"

        if high == 0:
            what, hint = "accepts no arguments", "Run"
        elif high is None:
            what, hint = f"requires at least {low} {plural(low)}", "See"
        elif low == high:
            what, hint = f"requires {low} {plural(low)}", "Run"
        elif low == 0:
            what, hint = f"requires at most {high} {plural(high)}", "Run"
        else:
            what, hint = f"requires at least {low} and at most {high} {plural(high)}", "Run"
        raise UsageError(
            f"{BIN}: '{path}' {what}\n\nUsage:  {use}\n\n{hint} '{path} --help' for more information"
        )


class ShoalGroup(click.Group):
    """A group of subcommands (``shoal node ...``); alone, it prints its help."""

    command_class = ShoalCommand

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("no_args_is_help", True)
        kwargs["context_settings"] = {**_CONTEXT, **kwargs.get("context_settings", {})}
        super().__init__(*args, **kwargs)
        self.use = "COMMAND"
        self.aliases: dict[str, str] = {}

    def alias(self, alias: str, name: str) -> None:
        """Accept `alias` for the subcommand `name` (``ls``/``list``, ``rm``/``remove``)."""
        self.aliases[alias] = name

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.aliases.get(cmd_name, cmd_name))

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write(f"Usage:  {usage_line(ctx)}\n")

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and self.get_command(ctx, name) is None and not name.startswith("-"):
            if ctx.parent is None:
                raise UsageError(f"{BIN}: '{name}' is not a {BIN} command.\nSee '{BIN} --help'")
            path = ctx.command_path
            raise UsageError(
                f"{BIN}: unknown command: {path} {name}\n\nUsage:  {path}\n\n"
                f"Run '{path} --help' for more information"
            )
        return super().resolve_command(ctx, args)


def ensure_app(ctx: click.Context) -> App:
    if not isinstance(ctx.obj, App):
        ctx.obj = App()
    return ctx.obj
