"""``shoal config ...`` end to end, against the fake daemon's /configs."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ..conftest import Shoal
from ..fake_daemon import FakeDaemon


@pytest.fixture
def stored(daemon: FakeDaemon) -> None:
    daemon.add_stored("config", "nginx.conf", b"server {}\n", {"app": "web"})
    daemon.add_stored("config", "app", b"x")


def test_create_sends_the_data_and_templating(
    shoal: Shoal, daemon: FakeDaemon, tmp_path: Path
) -> None:
    path = tmp_path / "nginx.conf"
    path.write_bytes(b"server {}\n")
    result = shoal("config", "create", "--template-driver", "golang", "-l", "a=b", "ngx", str(path))
    assert (result.status, result.out) == (0, daemon.configs[0]["ID"] + "\n")
    assert daemon.calls("POST")[0][1:] == (
        "/configs/create",
        {},
        {
            "Name": "ngx",
            "Labels": {"a": "b"},
            "Data": base64.b64encode(b"server {}\n").decode(),
            "Templating": {"Name": "golang"},
        },
    )
    assert shoal("config", "create", "c2", "-", input="abc").status == 0
    assert daemon.calls("POST")[1][3]["Data"] == base64.b64encode(b"abc").decode()


def test_create_errors_name_the_file(shoal: Shoal, tmp_path: Path) -> None:
    missing = tmp_path / "none"
    result = shoal("config", "create", "c", str(missing))
    assert (result.status, result.err) == (
        1,
        (
            f'Error reading content from "{missing}": error reading from {missing}: '
            f"open {missing}: no such file or directory\n"
        ),
    )
    result = shoal("config", "create", "c", "-", input="")
    assert result.err == 'Error reading content from "-": error reading from STDIN: data is empty\n'
    result = shoal("config", "create", "c", "")
    assert result.err == 'Error reading content from "": config file is required\n'
    result = shoal("config", "create", "c")
    assert result.err.startswith("shoal: 'shoal config create' requires 2 arguments\n")
    assert shoal("config", "create", "--driver", "x", "c", "-").err.startswith(
        "unknown flag: --driver"
    )


@pytest.mark.usefixtures("stored")
def test_ls(shoal: Shoal, daemon: FakeDaemon) -> None:
    ids = [c["ID"] for c in daemon.configs]
    assert shoal("config", "ls").out == (
        "ID                          NAME         CREATED         UPDATED\n"
        f"{ids[1]}   app          5 seconds ago   5 seconds ago\n"
        f"{ids[0]}   nginx.conf   5 seconds ago   5 seconds ago\n"
    )
    assert shoal("config", "ls", "-q", "-f", "label=app").out == ids[0] + "\n"
    assert json.loads(shoal("config", "ls", "--format", "json", "-f", "name=app").out) == {
        "CreatedAt": "5 seconds ago",
        "ID": ids[1],
        "Labels": "",
        "Name": "app",
        "UpdatedAt": "5 seconds ago",
    }
    result = shoal("config", "ls", "-f", "names=app")
    assert result.err == "Error response from daemon: invalid filter 'names'\n"


@pytest.mark.usefixtures("stored")
def test_inspect_shows_data(shoal: Shoal, daemon: FakeDaemon) -> None:
    [item] = json.loads(shoal("config", "inspect", "nginx.conf").out)
    assert item["Spec"] == {
        "Name": "nginx.conf",
        "Labels": {"app": "web"},
        "Data": base64.b64encode(b"server {}\n").decode(),
    }
    assert shoal("config", "inspect", "--pretty", "nginx.conf").out == (
        f"ID:\t\t\t{daemon.configs[0]['ID']}\n"
        "Name:\t\t\tnginx.conf\n"
        "Labels:\n"
        " - app=web\n"
        "Created at:            \t2024-05-01 10:00:00 +0000 utc\n"
        "Updated at:            \t2024-05-01 10:00:00 +0000 utc\n"
        "Data:\n"
        "server {}\n"
        "\n"
    )
    result = shoal("config", "inspect", "-f", "{{.Spec.Name}}", "app", "nope")
    assert (result.status, result.out) == (1, "app\n")
    assert result.err == "Error response from daemon: config nope not found\n"


@pytest.mark.usefixtures("stored")
def test_rm(shoal: Shoal, daemon: FakeDaemon) -> None:
    result = shoal("config", "rm", "app", "app")
    assert (result.status, result.out) == (1, "app\n")
    assert result.err == "Error response from daemon: config app not found\n"
    assert [c["Spec"]["Name"] for c in daemon.configs] == ["nginx.conf"]
