"""Go's text/template for ``--format``: lexer, parser, executor, the function table, Go's
fmt verbs. `shoal.cli.formatting` renders lists and inspect results through it."""

from __future__ import annotations

__all__: list[str] = []
