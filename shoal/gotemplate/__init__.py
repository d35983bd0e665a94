"""Go's text/template: lexer (`lex`), parser (`parse`), executor (`engine`), Go's builtin
functions (`builtins`) and fmt printing (`printf`), Go value semantics (`values`).

A bottom-layer package with no other shoal import: the CLI renders ``--format`` with it
(adding docker's functions), the executors render templated secrets and configs
(swarmkit's template package)."""

from __future__ import annotations

from shoal.gotemplate.engine import Fields, Template, TemplateError
from shoal.gotemplate.parse import TemplateSyntaxError

__all__ = ["Fields", "Template", "TemplateError", "TemplateSyntaxError"]
