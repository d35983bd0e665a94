"""docker's ``--format`` templates: Go's text/template (`shoal.gotemplate`: lexer, parser,
executor, Go's fmt verbs) plus docker's function table. `shoal.cli.formatting` renders lists
and inspect results through it."""

from __future__ import annotations

__all__: list[str] = []
