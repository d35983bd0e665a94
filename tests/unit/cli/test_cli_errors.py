"""Errors end in one place: one line on stderr (or docker's usage text) and docker's status."""

from __future__ import annotations

import httpx
import pytest
from click.testing import CliRunner

from shoal.cli.app import App
from shoal.cli.main import cli

from .conftest import Shoal


def run(
    args: list[str], handler: httpx.MockTransport | None = None, host: str | None = None
) -> tuple[int, str, str]:
    app = App(transport=handler, host=host)
    result = CliRunner().invoke(cli, args, obj=app)
    return result.exit_code, result.stdout, result.stderr


def failing(status: int, body: bytes, content_type: str) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/_ping":
            return httpx.Response(200, headers={"Api-Version": "1.50"})
        return httpx.Response(status, content=body, headers={"Content-Type": content_type})

    return httpx.MockTransport(handle)


def test_daemon_error_message() -> None:
    transport = failing(503, b'{"message":"This node is not part of a swarm"}', "application/json")
    assert run(["swarm", "leave"], transport) == (
        1,
        "",
        "Error response from daemon: This node is not part of a swarm\n",
    )


def test_error_content_type_must_be_exactly_json() -> None:
    # like docker: anything but exactly application/json prints the raw body
    transport = failing(404, b'{"message": "node x not found"}', "application/json; charset=utf-8")
    assert (
        run(["node", "inspect", "x"], transport)[2]
        == 'Error response from daemon: {"message": "node x not found"}\n'
    )
    transport = failing(500, b"boom\n", "text/plain")
    assert run(["node", "ls"], transport) == (1, "", "Error response from daemon: boom\n")


def test_empty_error_body() -> None:
    status, _, err = run(["node", "ls"], failing(404, b"", "text/plain"))
    assert status == 1
    assert err.startswith(
        "request returned Not Found for API route and version http://api.moby.localhost/v1.50/nodes"
    )


def test_unreachable_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert run(["node", "ls"], httpx.MockTransport(refuse)) == (
        1,
        "",
        "Cannot connect to the Shoal daemon at unix:///run/shoal/shoal.sock. Is the shoald daemon running?\n",
    )
    status, _, err = run(["-H", "unix:///nonexistent/shoal.sock", "service", "ls"])
    assert (status, err) == (
        1,
        (
            "Cannot connect to the Shoal daemon at unix:///nonexistent/shoal.sock. "
            "Is the shoald daemon running?\n"
        ),
    )


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (
            ["service", "create"],
            1,
            (
                "shoal: 'shoal service create' requires at least 1 argument\n\n"
                "Usage:  shoal service create [OPTIONS] IMAGE [COMMAND] [ARG...]\n\n"
                "See 'shoal service create --help' for more information\n"
            ),
        ),
        (
            ["node", "ls", "extra"],
            1,
            (
                "shoal: 'shoal node ls' accepts no arguments\n\nUsage:  shoal node ls [OPTIONS]\n\n"
                "Run 'shoal node ls --help' for more information\n"
            ),
        ),
        (
            ["service", "update"],
            1,
            (
                "shoal: 'shoal service update' requires 1 argument\n\nUsage:  shoal service update [OPTIONS] SERVICE\n\n"
                "Run 'shoal service update --help' for more information\n"
            ),
        ),
        (
            ["service", "create", "--foo", "x"],
            125,
            (
                "unknown flag: --foo\n\nUsage:  shoal service create [OPTIONS] IMAGE [COMMAND] [ARG...]\n\n"
                "Run 'shoal service create --help' for more information\n"
            ),
        ),
        (
            ["service", "create", "--replicas", "abc", "x"],
            125,
            (
                'invalid argument "abc" for "--replicas" flag: strconv.ParseUint: parsing "abc": invalid syntax\n\n'
                "Usage:  shoal service create [OPTIONS] IMAGE [COMMAND] [ARG...]\n\n"
                "Run 'shoal service create --help' for more information\n"
            ),
        ),
        (
            ["service", "create", "-p", "abc", "x"],
            125,
            (
                'invalid argument "abc" for "-p, --publish" flag: invalid containerPort: abc\n\n'
                "Usage:  shoal service create [OPTIONS] IMAGE [COMMAND] [ARG...]\n\n"
                "Run 'shoal service create --help' for more information\n"
            ),
        ),
        (
            ["service", "update", "--read-only=maybe", "x"],
            125,
            (
                'invalid argument "maybe" for "--read-only" flag: strconv.ParseBool: parsing "maybe": invalid syntax\n\n'
                "Usage:  shoal service update [OPTIONS] SERVICE\n\nRun 'shoal service update --help' for more information\n"
            ),
        ),
        (
            ["node", "ls", "--format"],
            125,
            (
                "flag needs an argument: --format\n\nUsage:  shoal node ls [OPTIONS]\n\n"
                "Run 'shoal node ls --help' for more information\n"
            ),
        ),
        (
            ["node", "foo"],
            1,
            "shoal: unknown command: shoal node foo\n\nUsage:  shoal node\n\nRun 'shoal node --help' for more information\n",
        ),
        (["foo"], 1, "shoal: 'foo' is not a shoal command.\nSee 'shoal --help'\n"),
    ],
)
def test_usage_errors(args: list[str], status: int, message: str) -> None:
    assert run(args) == (status, "", message)


def test_a_group_alone_prints_its_help() -> None:
    status, out, err = run(["node"])
    assert (status, out) == (0, "")
    assert err.startswith("Usage:  shoal node COMMAND\n")


def test_boolean_flags_take_explicit_values(shoal: Shoal) -> None:
    shoal("service", "create", "-d", "--no-resolve-image", "--name", "web", "--read-only", "nginx")
    result = shoal("service", "update", "--detach=true", "--read-only=false", "web")
    assert (result.status, result.out) == (0, "web\n")
    body = shoal.daemon.calls("POST", "/services/")[-1][3]
    assert (
        body["TaskTemplate"]["ContainerSpec"]["ReadOnly"] is False
    )  # given as false: still a change


def test_version_prints_client_and_server(shoal: Shoal) -> None:
    result = shoal("version")
    assert result.status == 0
    assert result.out.startswith("Client:\n Version:           0.1.0\n API version:       1.50\n")
    assert (
        "Server:\n Engine:\n  Version:          28.2.2\n  API version:      1.50 (minimum version 1.24)\n"
        in result.out
    )
    assert shoal("version", "--format", "{{.Server.Version}}").out == "28.2.2\n"


def test_info_shows_the_swarm(shoal: Shoal) -> None:
    out = shoal("info").out
    assert " Swarm: active\n  NodeID: manager100000000000000000\n  Is Manager: true\n" in out
    assert shoal("info", "--format", "{{.Swarm.LocalNodeState}}").out == "active\n"
