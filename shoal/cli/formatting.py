"""docker's formatter: ``table``/``json``/template output for lists, and ``inspect`` output."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shoal.cli.errors import CliError
from shoal.cli.format.tabwriter import TabWriter
from shoal.cli.template.engine import (
    HEADER_FUNCTIONS,
    Fields,
    Template,
    TemplateError,
    TemplateSyntaxError,
)

__all__ = [
    "InspectResult",
    "list_format",
    "parse_template",
    "print_inspect",
    "render_inspect",
    "render_list",
]

TABLE = "table"
JSON = "json"


def list_format(
    source: str, *, default_table: str, quiet: bool, raw: str = "", raw_quiet: str = ""
) -> str:
    """docker's ``NewListFormat``: map ``table``/``raw`` (and ``-q``) to concrete templates."""
    if source == TABLE:
        return "{{.ID}}" if quiet else default_table
    if source == "raw" and raw:
        return raw_quiet if quiet else raw
    return source


def parse_template(source: str, status: int = 1) -> Template:
    try:
        return Template(source)
    except TemplateSyntaxError as exc:
        raise CliError(f"template parsing error: {exc}", status) from exc


def render_list(fmt: str, rows: Sequence[Fields], header: Mapping[str, str]) -> str:
    """Render rows with a list format: a table (header + tabwriter), JSON lines or a template."""
    is_table = fmt.startswith(TABLE)
    final = fmt[len(TABLE) :] if is_table else ("{{json .}}" if fmt == JSON else fmt)
    final = final.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    template = parse_template(final)
    body: list[str] = []
    for row in rows:
        try:
            body.append(template.execute(row) + "\n")
        except TemplateError as exc:
            raise CliError(f"template parsing error: {exc}") from exc
    if not is_table:
        return "".join(body)
    writer = TabWriter()
    writer.write(_header(template, header))
    writer.write("\n")
    writer.write("".join(body))
    return writer.flush()


def _header(template: Template, header: Mapping[str, str]) -> str:
    try:
        return template.execute(dict(header), funcs=HEADER_FUNCTIONS)
    except (TemplateError, TypeError, ValueError):
        return ""


class InspectResult:
    """What an inspect command produced: the text for stdout and the per-reference errors."""

    def __init__(self, text: str, errors: list[str]) -> None:
        self.text = text
        self.errors = errors


def render_inspect(
    refs: Sequence[str],
    fetch: Callable[[str], Any],
    fmt: str,
    *,
    describe: Callable[[Exception, str], str] | None = None,
) -> InspectResult:
    """docker's ``inspect.Inspect``: an indented JSON array, compact ``json``, or a template.

    `fetch` returns the raw API object for a reference or raises; `describe` turns that
    exception into the message docker prints for it.
    """
    template = None
    if fmt not in ("", JSON):
        template = parse_template(fmt, status=64)
    items: list[Any] = []
    rendered: list[str] = []
    errors: list[str] = []
    for ref in refs:
        try:
            item = fetch(ref)
        except Exception as exc:
            if describe is None:
                raise
            errors.append(describe(exc, ref))
            continue
        if template is None:
            items.append(item)
            continue
        try:
            rendered.append(template.execute(item) + "\n")
        except TemplateError as exc:
            errors.append(f"template parsing error: {exc}")
    if template is not None:
        text = "".join(rendered) or "\n"
    elif fmt == JSON:
        text = json.dumps(items, ensure_ascii=False, separators=(",", ":")) + "\n"
    else:
        text = (json.dumps(items, indent=4, ensure_ascii=False) if items else "[]") + "\n"
    return InspectResult(text, errors)


def print_inspect(
    out: Callable[[str], None], refs: Sequence[str], fetch: Callable[[str], Any], fmt: str
) -> None:
    """An inspect command's output: what rendered goes to `out`, then one `CliError` carrying
    every reference that failed (one bad reference does not hide the others)."""
    result = render_inspect(refs, fetch, fmt, describe=lambda exc, _ref: str(exc))
    out(result.text)
    if result.errors:
        raise CliError("\n".join(result.errors))
