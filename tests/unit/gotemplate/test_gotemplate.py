"""Go's text/template without docker's functions, and Go's ``missingkey=error`` option."""

from __future__ import annotations

import pytest

from shoal.gotemplate import Template, TemplateError, TemplateSyntaxError


def test_builtins_only_and_extra_functions() -> None:
    assert Template('{{printf "%s-%d" .A 3}} {{len .L}}').execute({"A": "x", "L": [1, 2]}) == "x-3 2"
    with pytest.raises(TemplateSyntaxError, match='function "json" not defined'):
        Template("{{json .}}")
    assert Template('{{shout "hi"}}', {"shout": lambda s: s.upper()}).execute({}) == "HI"


def test_missing_key_prints_no_value_by_default() -> None:
    assert Template("{{.A.B}}").execute({"A": {}}) == "<no value>"


def test_missingkey_error() -> None:
    t = Template("{{.A.B}}", missingkey_error=True)
    assert t.execute({"A": {"B": "ok"}}) == "ok"
    with pytest.raises(TemplateError, match='map has no entry for key "B"'):
        t.execute({"A": {}})
