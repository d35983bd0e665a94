"""``--secret``/``--config`` of ``service create`` and their ``-add``/``-rm`` of ``service update``
(`shoal.cli.service.opts.parse_reference`, `shoal.cli.service.refs`), as docker's CLI."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shoal.cli.service.opts import parse_reference

from ..conftest import Shoal
from ..fake_daemon import FakeDaemon


def _file(name: str, uid: str = "0", gid: str = "0", mode: int = 0o444) -> dict[str, Any]:
    return {"Name": name, "UID": uid, "GID": gid, "Mode": mode}


def test_parse_reference_short_and_long_forms() -> None:
    assert parse_reference("secret", "db") == {"File": _file("db"), "SecretName": "db"}
    assert parse_reference("config", "src=app,target=/etc/app.conf,uid=10,gid=20,mode=0400") == {
        "File": _file("/etc/app.conf", "10", "20", 0o400),
        "ConfigName": "app",
    }
    assert parse_reference("secret", "source=db,mode=0x1ff")["File"] == _file("db", mode=0o777)
    assert parse_reference("config", "SOURCE=c")["File"]["Name"] == "c"  # keys ignore case


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("target=x", "source is required"),
        ("db,uid", "invalid field 'db' must be a key=value pair"),
        ("source=db,size=1", "invalid field in secret request: size"),
        (
            "source=db,mode=rw",
            'invalid mode specified: strconv.ParseUint: parsing "rw": invalid syntax',
        ),
    ],
)
def test_parse_reference_errors(value: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(") + "$"):
        parse_reference("secret", value)


@pytest.fixture
def stored(daemon: FakeDaemon) -> dict[str, str]:
    ids = {}
    for kind, name in (("secret", "db"), ("secret", "db2"), ("config", "app"), ("config", "ap")):
        ids[name] = daemon.add_stored(kind, name)["ID"]
    return ids


def _create(shoal: Shoal, *args: str) -> tuple[int, str, dict[str, Any]]:
    result = shoal("service", "create", "-d", "--no-resolve-image", "--name", "web", *args, "img")
    calls = shoal.daemon.calls("POST", "/services/create")
    body = calls[-1][3]["TaskTemplate"]["ContainerSpec"] if calls else {}
    return result.status, result.err, body


def test_create_resolves_names_to_ids(
    shoal: Shoal, daemon: FakeDaemon, stored: dict[str, str]
) -> None:
    status, err, container = _create(
        shoal,
        "--secret",
        "db",
        "--secret",
        "source=db,target=db_copy,uid=33,mode=0400",
        "--config",
        "ap",
        "--config",
        "source=app,target=/etc/app.conf",
    )
    assert (status, err) == (0, "")
    assert container["Secrets"] == [
        {"File": _file("db"), "SecretID": stored["db"], "SecretName": "db"},
        {"File": _file("db_copy", "33", mode=0o400), "SecretID": stored["db"], "SecretName": "db"},
    ]
    assert container["Configs"] == [
        {"File": _file("ap"), "ConfigID": stored["ap"], "ConfigName": "ap"},
        {"File": _file("/etc/app.conf"), "ConfigID": stored["app"], "ConfigName": "app"},
    ]
    # one listing per kind, by name (a prefix filter: "ap" also lists "app")
    lists = [(c[1], json.loads(c[2]["filters"])) for c in daemon.calls("GET") if "filters" in c[2]]
    assert lists == [
        ("/secrets", {"name": {"db": True}}),
        ("/configs", {"name": {"ap": True, "app": True}}),
    ]


@pytest.mark.usefixtures("stored")
def test_create_fails_before_sending_the_spec(shoal: Shoal, daemon: FakeDaemon) -> None:
    cases = {
        ("--secret", "d"): "secret not found: d\n",  # "d" lists db and db2; none is "d"
        ("--config", "nope"): "config not found: nope\n",
        ("--secret", "db", "--secret", "source=db2,target=db"): (
            "duplicate secret target for db2 not allowed\n"
        ),
        ("--config", "app", "--config", "src=ap,target=app"): (
            "duplicate config target for ap not allowed\n"
        ),
    }
    for args, err in cases.items():
        status, message, _ = _create(shoal, *args)
        assert (status, message) == (1, err), args
    assert not daemon.calls("POST")
    result = shoal("service", "create", "--secret", "source=db,x=1", "img")
    assert (result.status, result.err.splitlines()[0]) == (
        125,
        'invalid argument "source=db,x=1" for "--secret" flag: invalid field in secret request: x',
    )


def test_update_adds_and_removes_by_name(
    shoal: Shoal, daemon: FakeDaemon, stored: dict[str, str]
) -> None:
    _create(shoal, "--secret", "db", "--secret", "source=db2,target=other", "--config", "app")

    def update(*flags: str) -> dict[str, Any]:
        result = shoal("service", "update", "-d", *flags, "web")
        assert (result.status, result.out) == (0, "web\n"), result.err
        spec = daemon.calls("POST", "/services/")[-1][3]
        return spec["TaskTemplate"]["ContainerSpec"]  # type: ignore[no-any-return]

    # --secret-rm matches the source name (not the target), as docker's getUpdatedSecrets
    container = update(
        "--secret-rm", "other", "--secret-rm", "db", "--secret-add", "source=db,uid=5"
    )
    assert container["Secrets"] == [
        {"File": _file("other"), "SecretID": stored["db2"], "SecretName": "db2"},
        {"File": _file("db", "5"), "SecretID": stored["db"], "SecretName": "db"},
    ]
    container = update(
        "--secret-rm", "db2", "--secret-rm", "db", "--config-rm", "app", "--config-add", "ap"
    )
    assert "Secrets" not in container  # emptied lists are omitted, as Go's omitempty
    assert container["Configs"] == [
        {"File": _file("ap"), "ConfigID": stored["ap"], "ConfigName": "ap"}
    ]
    result = shoal("service", "update", "-d", "--secret-add", "nope", "web")
    assert (result.status, result.err) == (1, "secret not found: nope\n")


def test_inspect_pretty_lists_them(shoal: Shoal, stored: dict[str, str]) -> None:
    _create(shoal, "--secret", "source=db,target=pw", "--config", "app")
    pretty = shoal("service", "inspect", "--pretty", "web").out
    assert "\nConfigs:\n Target:\tapp\n  Source:\tapp\nSecrets:\n Target:\tpw\n  Source:\tdb\n" in (
        pretty
    )
