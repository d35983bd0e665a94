"""The Go-template subset used by ``--format``."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.cli.template.engine import Fields, Template, TemplateError, TemplateSyntaxError

DATA: dict[str, Any] = {
    "ID": "abc123",
    "Spec": {
        "Name": "web",
        "Labels": {"k": "v", "a": "b"},
        "Mode": {"Replicated": {"Replicas": 3}},
    },
    "List": [1, 2, 3],
    "Empty": [],
    "Flag": True,
    "Ratio": 0.5,
    "Nothing": None,
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{.ID}}", "abc123"),
        ("{{.Spec.Name}}", "web"),
        ("{{.Spec.Mode.Replicated.Replicas}}", "3"),
        ("{{json .Spec.Labels}}", '{"k":"v","a":"b"}'),
        ('{{index .Spec.Labels "k"}}', "v"),
        ('{{index .Spec.Labels "missing"}}', ""),
        ("{{.Spec.Labels}}", "map[a:b k:v]"),
        ("{{.List}}", "[1 2 3]"),
        ("{{.Flag}} {{.Ratio}} {{.Nothing}}", "true 0.5 <nil>"),
        ("{{.Missing}}", "<no value>"),
        ("{{.Spec.Missing.Deeper}}", "<no value>"),
        ("{{range $k, $v := .Spec.Labels}}{{$k}}={{$v}},{{end}}", "a=b,k=v,"),
        ("{{range .List}}{{if eq . 2}}{{continue}}{{end}}{{.}}{{end}}", "13"),
        ("{{range .Empty}}x{{else}}none{{end}}", "none"),
        ("{{if .Empty}}yes{{else if .Flag}}flag{{else}}no{{end}}", "flag"),
        ("{{with .Spec}}{{.Name}}{{end}}", "web"),
        ('{{$x := .ID}}{{$x}}-{{$x = "y"}}{{$x}}', "abc123-y"),
        ('{{printf "%-5s|%3d|%v" .Spec.Name 7 .Flag}}', "web  |  7|true"),
        ("{{len .List}} {{len .ID}}", "3 6"),
        ('{{.ID | upper}} {{lower "AB"}} {{title "hello world"}}', "ABC123 ab Hello World"),
        ('{{join (split "a,b,c" ",") "|"}}', "a|b|c"),
        ("{{pad .ID 1 2}}|{{truncate .ID 3}}", " abc123  |abc"),
        ("a  {{- .ID -}}  z", "aabc123z"),
        ("{{/* a comment */}}x", "x"),
        ("{{(index .List 1)}}", "2"),
        ("{{and .Flag .ID}} {{or .Nothing .ID}} {{not .Flag}}", "abc123 abc123 false"),
        ('{{if and (gt (len .List) 2) (ne .ID "x")}}ok{{end}}', "ok"),
    ],
)
def test_render(source: str, expected: str) -> None:
    assert Template(source).execute(DATA) == expected


class Row(Fields):
    field_names = ("ID", "Ports")
    type_name = "*service.serviceContext"

    def ID(self) -> str:
        return "abc"

    def Ports(self) -> str:
        return "*:80->80/tcp"

    def Label(self, name: str) -> str:
        return name.upper()


def test_fields_objects() -> None:
    assert Template('{{.ID}} {{.Label "x"}}').execute(Row()) == "abc X"
    # {{json .}} on a formatter context is Go's json.Marshal: sorted keys, HTML escaped
    assert Template("{{json .}}").execute(Row()) == '{"ID":"abc","Ports":"*:80-\\u003e80/tcp"}'
    with pytest.raises(
        TemplateError, match="can't evaluate field Nope in type \\*service.serviceContext"
    ):
        Template("{{.Nope}}").execute(Row())


@pytest.mark.parametrize(
    "source", ["{{.ID", "{{end}}", "{{if .ID}}x", "{{nosuchfunc .ID}}", "{{else}}"]
)
def test_syntax_errors(source: str) -> None:
    with pytest.raises(TemplateSyntaxError):
        Template(source)


def test_call_errors() -> None:
    with pytest.raises(TemplateError, match="error calling index: index out of range: 9"):
        Template("{{index .List 9}}").execute(DATA)
