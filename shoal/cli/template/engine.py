"""docker's ``--format`` templates: Go's text/template (`shoal.gotemplate`) with docker's
functions (`shoal.cli.template.funcs`: ``json``, ``join``, ``split``, ``pad``...) registered on
top. Data is API JSON or a `Fields` formatter context."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from shoal.cli.template.funcs import BASIC_FUNCTIONS, HEADER_FUNCTIONS, to_json
from shoal.gotemplate import Fields, TemplateError, TemplateSyntaxError
from shoal.gotemplate import Template as GoTemplate

__all__ = [
    "BASIC_FUNCTIONS",
    "HEADER_FUNCTIONS",
    "Fields",
    "Template",
    "TemplateError",
    "TemplateSyntaxError",
    "to_json",
]


class Template(GoTemplate):
    """A parsed ``--format`` template; `execute` may be called many times (rows, then the
    header)."""

    def __init__(self, source: str, funcs: Mapping[str, Callable[..., Any]] | None = None) -> None:
        super().__init__(source, {**BASIC_FUNCTIONS, **(funcs or {})})
