"""docker's table layout (Go's tabwriter) and list formats."""

from __future__ import annotations

from shoal.cli.format.natsort import natural_sorted
from shoal.cli.format.tabwriter import TabWriter
from shoal.cli.formatting import list_format, render_inspect, render_list
from shoal.cli.template.engine import Fields


def test_tabwriter_pads_columns_by_block() -> None:
    writer = TabWriter()
    writer.write("ID\tNAME\tPORTS\n")
    writer.write("abcdefabcdef\tweb\t*:80->80/tcp\n")
    writer.write("x\ta-much-longer-name\t\n")
    assert (
        writer.flush()
        == (
            "ID             NAME                 PORTS\n"
            "abcdefabcdef   web                  *:80->80/tcp\n"
            "x              a-much-longer-name   \n"  # docker leaves the padding before an empty last cell
        )
    )


def test_tabwriter_minimum_width_is_ten() -> None:
    writer = TabWriter()
    writer.write("a\tb\n")
    assert writer.flush() == "a         b\n"


def test_tabwriter_line_without_tabs_ends_the_block() -> None:
    writer = TabWriter()
    writer.write("long-first-cell\tx\nplain\na\tb\n")
    assert writer.flush() == "long-first-cell   x\nplain\na         b\n"


class Row(Fields):
    field_names = ("ID", "Name")

    def __init__(self, ident: str, name: str) -> None:
        self.ident, self.name = ident, name

    def ID(self) -> str:
        return self.ident

    def Name(self) -> str:
        return self.name


HEADER = {"ID": "ID", "Name": "NAME"}
ROWS = [Row("1", "web"), Row("2", "db")]


def test_table_has_an_upper_case_header() -> None:
    assert render_list("table {{.ID}}\t{{.Name}}", ROWS, HEADER) == (
        "ID        NAME\n1         web\n2         db\n"
    )
    assert render_list("table {{.ID}}\t{{.Name}}", [], HEADER) == "ID        NAME\n"


def test_json_and_template_formats() -> None:
    assert render_list("json", ROWS, HEADER) == '{"ID":"1","Name":"web"}\n{"ID":"2","Name":"db"}\n'
    assert render_list("{{.Name}}", ROWS, HEADER) == "web\ndb\n"
    assert render_list("{{.ID}}:\\t{{.Name}}", ROWS, HEADER) == "1:\tweb\n2:\tdb\n"


def test_list_format_choices() -> None:
    assert list_format("table", default_table="table X", quiet=False) == "table X"
    assert list_format("table", default_table="table X", quiet=True) == "{{.ID}}"
    assert list_format("{{.Name}}", default_table="table X", quiet=True) == "{{.Name}}"


def test_inspect_formats() -> None:
    items = {"a": {"ID": "a", "N": 1}}

    def fetch(ref: str) -> object:
        if ref not in items:
            raise KeyError(ref)
        return items[ref]

    indented = render_inspect(["a"], fetch, "")
    assert indented.text == '[\n    {\n        "ID": "a",\n        "N": 1\n    }\n]\n'
    assert render_inspect(["a"], fetch, "json").text == '[{"ID":"a","N":1}]\n'
    missing = render_inspect(
        ["a", "zz"], fetch, "{{.ID}}", describe=lambda exc, ref: f"no such {ref}"
    )
    assert (missing.text, missing.errors) == ("a\n", ["no such zz"])
    assert render_inspect(["zz"], fetch, "", describe=lambda exc, ref: "x").text == "[]\n"


def test_natural_sort() -> None:
    names = ["web.10", "web.2", "web.1", "db", "web.1a"]
    assert natural_sorted(names, key=str) == ["db", "web.1", "web.1a", "web.2", "web.10"]
