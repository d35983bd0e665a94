"""Flags many commands declare alike, with docker's help text (``--filter``, ``--format``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from shoal.cli import flagtypes as ft

__all__ = ["FILTER_HELP", "filter_option", "inspect_format_option", "list_format_option"]

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

FILTER_HELP = "Filter output based on conditions provided"
_LIST_FORMAT_HELP = (
    "Format output using a custom template: 'table', 'table TEMPLATE', 'json' or 'TEMPLATE'"
)
_INSPECT_FORMAT_HELP = "Format output using a custom template: 'json' or 'TEMPLATE'"


def filter_option(help_text: str = FILTER_HELP) -> Decorator:
    """``-f/--filter key=value``, repeatable; the values arrive as ``filters``."""
    return click.option("-f", "--filter", "filters", type=ft.FILTER, multiple=True, help=help_text)


def list_format_option() -> Decorator:
    """The ``ls`` commands' ``--format`` (a table, JSON or a template); arrives as ``fmt``."""
    return click.option("--format", "fmt", default="", help=_LIST_FORMAT_HELP)


def inspect_format_option() -> Decorator:
    """The ``inspect``-like commands' ``-f/--format`` (JSON or a template); arrives as ``fmt``."""
    return click.option("-f", "--format", "fmt", default="", help=_INSPECT_FORMAT_HELP)
