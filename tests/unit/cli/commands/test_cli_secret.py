"""``shoal secret ...`` end to end, against the fake daemon's /secrets."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ..conftest import Shoal
from ..fake_daemon import FakeDaemon


@pytest.fixture
def stored(daemon: FakeDaemon) -> None:
    daemon.add_stored("secret", "db_pw", b"hunter2", {"env": "prod", "tier": ""})
    daemon.add_stored("secret", "api-key10", b"k")
    daemon.add_stored("secret", "api-key9", b"k")


def test_create_from_a_file_sends_the_data_base64(
    shoal: Shoal, daemon: FakeDaemon, tmp_path: Path
) -> None:
    path = tmp_path / "pw"
    path.write_bytes(b"s3cret\n")
    result = shoal("secret", "create", "-l", "env=prod", "--label", "team", "db_pw", str(path))
    assert (result.status, result.out) == (0, daemon.secrets[0]["ID"] + "\n")
    assert daemon.calls("POST") == [
        (
            "POST",
            "/secrets/create",
            {},
            {
                "Name": "db_pw",
                "Labels": {"env": "prod", "team": ""},
                "Data": base64.b64encode(b"s3cret\n").decode(),
            },
        )
    ]
    assert "Data" not in shoal("secret", "inspect", "db_pw").out


def test_create_from_stdin(shoal: Shoal, daemon: FakeDaemon) -> None:
    assert shoal("secret", "create", "pw", "-", input="abc").status == 0
    assert daemon.calls("POST")[0][3]["Data"] == base64.b64encode(b"abc").decode()
    result = shoal("secret", "create", "pw2", "-", input="")
    assert (result.status, result.err) == (1, "error reading from STDIN: data is empty\n")


def test_create_errors(shoal: Shoal, daemon: FakeDaemon, tmp_path: Path) -> None:
    cases = {
        ("pw",): "secret file is required\n",
        ("pw", str(tmp_path / "none")): (
            f"error reading from {tmp_path}/none: open {tmp_path}/none: no such file or directory\n"
        ),
        ("pw", str(tmp_path)): f"error reading from {tmp_path}: read {tmp_path}: is a directory\n",
        ("-d", "vault", "pw", "-"): "When using secret driver secret data must be empty\n",
        ("-l", "=x", "pw", "-"): 'invalid argument "=x" for "-l, --label" flag: '
        "invalid label '=x': empty name\n",
    }
    for args, err in cases.items():
        result = shoal("secret", "create", *args)
        assert result.status != 0, args
        assert result.err.startswith(err), (args, result.err)
    assert not daemon.calls("POST")
    (tmp_path / "empty").write_bytes(b"")
    result = shoal("secret", "create", "pw", str(tmp_path / "empty"))
    assert result.err == f"error reading from {tmp_path}/empty: data is empty\n"
    result = shoal("secret", "create", "a", "b", "c")
    assert result.err.startswith(
        "shoal: 'shoal secret create' requires at least 1 and at most 2 arguments\n"
    )


def test_create_passes_drivers_on_and_shows_the_servers_refusal(
    shoal: Shoal, daemon: FakeDaemon
) -> None:
    shoal("secret", "create", "-d", "vault", "--template-driver", "golang", "pw")
    assert daemon.calls("POST")[0][3] == {
        "Name": "pw",
        "Labels": {},
        "Driver": {"Name": "vault"},
        "Templating": {"Name": "golang"},
    }
    result = shoal("secret", "create", "pw", "-", input="x")
    assert (result.status, result.err) == (
        1,
        (
            "Error response from daemon: rpc error: code = AlreadyExists desc = secret pw "
            "already exists\n"
        ),
    )


@pytest.mark.usefixtures("stored")
def test_ls_table_in_natural_order_with_relative_times(shoal: Shoal, daemon: FakeDaemon) -> None:
    ids = {s["Spec"]["Name"]: s["ID"] for s in daemon.secrets}
    shoal.now_ns += 2 * 3600 * 10**9  # T0 + 2h05s
    assert shoal("secret", "ls").out == (
        "ID                          NAME        DRIVER    CREATED       UPDATED\n"
        f"{ids['api-key9']}   api-key9              2 hours ago   2 hours ago\n"
        f"{ids['api-key10']}   api-key10             2 hours ago   2 hours ago\n"
        f"{ids['db_pw']}   db_pw                 2 hours ago   2 hours ago\n"
    )
    assert shoal("secret", "list", "-q").out.split() == [
        ids["api-key9"],
        ids["api-key10"],
        ids["db_pw"],
    ]


@pytest.mark.usefixtures("stored")
def test_ls_filters_and_formats(shoal: Shoal, daemon: FakeDaemon) -> None:
    out = shoal("secret", "ls", "-f", "name=api", "--format", "{{.Name}}").out
    assert out == "api-key9\napi-key10\n"
    assert json.loads(daemon.calls("GET", "/secrets")[-1][2]["filters"]) == {"name": {"api": True}}
    out = shoal("secret", "ls", "-f", "label=env=prod", "--format", "json").out
    assert json.loads(out) == {
        "CreatedAt": "5 seconds ago",
        "Driver": "",
        "ID": daemon.secrets[0]["ID"],
        "Labels": "env=prod,tier=",
        "Name": "db_pw",
        "UpdatedAt": "5 seconds ago",
    }
    out = shoal("secret", "ls", "--format", "table {{.Name}}\t{{.Labels}}").out
    assert out.splitlines()[:2] == ["NAME        LABELS", "api-key9    "]
    assert shoal("secret", "ls", "--format", '{{.Label "env"}}|').out == "|\n|\nprod|\n"
    result = shoal("secret", "ls", "-f", "bogus=1")
    assert (result.status, result.err) == (
        1,
        "Error response from daemon: invalid filter 'bogus'\n",
    )


@pytest.mark.usefixtures("stored")
def test_inspect_json_and_errors(shoal: Shoal, daemon: FakeDaemon) -> None:
    result = shoal("secret", "inspect", "db_pw", "nosuch")
    assert result.status == 1
    assert json.loads(result.out) == [
        {
            "ID": daemon.secrets[0]["ID"],
            "Version": daemon.secrets[0]["Version"],
            "CreatedAt": "2024-05-01T10:00:00.000000000Z",
            "UpdatedAt": "2024-05-01T10:00:00.000000000Z",
            "Spec": {"Name": "db_pw", "Labels": {"env": "prod", "tier": ""}},
        }
    ]
    assert result.err == "Error response from daemon: secret nosuch not found\n"
    assert shoal("secret", "inspect", "-f", "{{.Spec.Name}}", "secdb_pw").out == "db_pw\n"


@pytest.mark.usefixtures("stored")
def test_inspect_pretty(shoal: Shoal, daemon: FakeDaemon) -> None:
    daemon.secrets[1]["Spec"]["Driver"] = {"Name": "vault"}
    result = shoal("secret", "inspect", "--pretty", "db_pw", "api-key10")
    assert result.out == (
        f"ID:              {daemon.secrets[0]['ID']}\n"
        "Name:              db_pw\n"
        "Labels:\n"
        " - env=prod\n"
        " - tier\n"
        "Driver:            \n"
        "Created at:        2024-05-01 10:00:00 +0000 utc\n"
        "Updated at:        2024-05-01 10:00:00 +0000 utc\n"
        f"ID:              {daemon.secrets[1]['ID']}\n"
        "Name:              api-key10\n"
        "Driver:            vault\n"
        "Created at:        2024-05-01 10:00:00 +0000 utc\n"
        "Updated at:        2024-05-01 10:00:00 +0000 utc\n"
    )
    result = shoal("secret", "inspect", "--pretty", "db_pw", "nosuch")
    assert (result.status, result.out) == (1, "")
    assert result.err == "Error response from daemon: secret nosuch not found\n"
    result = shoal("secret", "inspect", "--format", "pretty{{.ID}}", "db_pw")
    assert result.err == "cannot supply extra formatting options to the pretty template\n"


@pytest.mark.usefixtures("stored")
def test_rm_reports_each_failure(shoal: Shoal, daemon: FakeDaemon) -> None:
    daemon.services.append(
        {
            "ID": "svc",
            "Spec": {
                "Name": "web",
                "TaskTemplate": {
                    "ContainerSpec": {"Secrets": [{"SecretID": daemon.secrets[1]["ID"]}]}
                },
            },
        }
    )
    result = shoal("secret", "remove", "db_pw", "nosuch", "api-key10")
    assert (result.status, result.out) == (1, "db_pw\n")
    assert result.err == (
        "Error response from daemon: secret nosuch not found\n"
        "Error response from daemon: rpc error: code = InvalidArgument desc = secret 'api-key10' "
        "is in use by the following service: web\n"
    )
    assert [s["Spec"]["Name"] for s in daemon.secrets] == ["api-key10", "api-key9"]
