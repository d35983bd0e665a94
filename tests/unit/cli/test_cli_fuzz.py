"""The shoal CLI given garbage (issue 16) prints one clear line, never a traceback: hypothesis
over the arguments of a handful of commands against no daemon, garbage compose files for
``stack deploy``/``stack config``, and a server at DOCKER_HOST that is not Docker's (HTML, JSON
of the wrong shape). Docker's usage text may follow a flag error, as docker prints it."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import strategies as st

from shoal.cli.app import App
from shoal.cli.main import cli
from tests.fuzz.portfuzz import draw

NO_DAEMON = "tcp://127.0.0.1:1"  # nothing listens on port 1: refused at once
COMMANDS = [["service", "create"], ["service", "update"], ["service", "ls"], ["service", "ps"], ["service", "logs"],
            ["service", "scale"], ["node", "ls"], ["node", "update"], ["swarm", "init"], ["swarm", "join"],
            ["swarm", "update"], ["secret", "create"], ["network", "create"], ["stack", "deploy"], ["events"]]
WORDS = ["", "-", "--", "x", "-1", "99999999999999999999", "1e400", "nan", "a=b", "=", "{{", "{{.Foo", "{{json .}}",
         "{{index . 99}}", "::::", "127.0.0.1:-5", "1.2.3.4/99", "--format", "--filter", "-f", "a==b", "label=",
         "\u202e", "10zb", "5m3x", "-q", "--detach", "--replicas", "--publish", "published=99999,target=x",
         "--mount", "type=bogus", "--limit-memory", "--constraint", "node.==", "--update-delay", "-5s",
         "--secret", "source=,target=", "--network", "name=x,alias=", "--log-opt", "--restart-max-attempts", "-c"]
# docker's notice before a stack deploy or service create that does not say --detach
DETACH_NOTICE = ("Since --detach=false was not specified", "In a future release, --detach=false")
ARG = st.sampled_from(WORDS) | st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
                                       max_size=20)


def run(argv: list[str], host: str = NO_DAEMON) -> tuple[int, str, str, BaseException | None]:
    result = CliRunner().invoke(cli, argv, obj=App(host=host))
    exc = result.exception if not isinstance(result.exception, SystemExit) else None
    return result.exit_code, result.stdout, result.stderr, exc


def assert_one_clear_line(argv: list[str], host: str = NO_DAEMON) -> None:
    status, out, err, exc = run(argv, host)
    assert exc is None, f"{argv}: {exc!r}"
    assert "Traceback" not in out + err, argv
    if status in (0, 125) or "\n\nUsage:" in err:  # help, or a flag error with docker's usage text
        return
    lines = [line for line in err.splitlines() if not line.startswith(DETACH_NOTICE)]
    assert len(lines) == 1 and lines[0].strip(), f"{argv}: {err!r}"


def test_garbage_arguments_against_no_daemon_print_one_line() -> None:
    cases = draw(st.tuples(st.sampled_from(COMMANDS), st.lists(ARG, max_size=5)), 400)
    for command, args in cases:
        assert_one_clear_line(command + args)


GARBAGE_FILES = {
    "binary": bytes(range(256)) * 4, "utf16": "services: {}".encode("utf-16"), "list": b"- a\n- b\n",
    "unclosed": b"services: [\n", "deep": b"[" * 5000,  # PyYAML recursed past Python's limit
    "services_int": b"services:\n  web: 5\n", "image_list": b"services:\n  web:\n    image: [1]\n",
    "self_alias": b"a: &a [*a]\n", "required_var": b"services:\n  web:\n    image: ${X:?boom}\n",
    "bad_interpolation": b"services:\n  web:\n    image: ${\n",
    "ports": b"services:\n  web:\n    image: x\n    ports: ['99999:80', 'a:b', {target: x}]\n",
    "units": b"services:\n  web:\n    image: x\n    deploy: {resources: {limits: {memory: 5zb, cpus: abc}}}\n",
}


@pytest.mark.parametrize("name", sorted(GARBAGE_FILES))
@pytest.mark.parametrize("command", ["deploy", "config"])
def test_a_garbage_compose_file_prints_one_line(tmp_path: Path, name: str, command: str) -> None:
    path = tmp_path / f"{name}.yml"
    path.write_bytes(GARBAGE_FILES[name])
    assert_one_clear_line(["stack", command, "-c", str(path)] + (["stk"] if command == "deploy" else []))


def test_generated_compose_files_print_one_line(tmp_path: Path) -> None:
    yaml_ish = st.lists(st.sampled_from(["services:", "  web:", "    image: x", "    ports:", "      - ",
                                         "    deploy:", "      replicas: ", "networks:", "  - ", "&a", "*a", "{",
                                         "[", "${", "x: y", "\t", "version: '3'", ": :", "- - -"])
                        | st.text(max_size=10), max_size=12).map("\n".join)
    for i, text in enumerate(draw(yaml_ish, 150)):
        path = tmp_path / f"c{i}.yml"
        path.write_text(text)
        assert_one_clear_line(["stack", "config", "-c", str(path)])


ANSWERS = [(b"text/html", b"<html>not docker</html>"), (b"application/json", b"{"),
           (b"application/json", b"[1, null]"), (b"application/json", b"null"), (b"application/json", b'"x"'),
           (b"application/json", b'[{"ID": "x", "Spec": [], "Version": "v", "Status": "s"}]'),
           (b"application/json", b'{"ID": "x", "Spec": [], "Version": "v", "Status": "s"}')]


@pytest.fixture(params=range(len(ANSWERS)))
def not_docker(request: pytest.FixtureRequest) -> Iterator[str]:
    """A server at DOCKER_HOST that answers every request with the same body and 200."""
    content_type, body = ANSWERS[request.param]

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", content_type.decode())
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_HEAD = do_DELETE = answer

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="not-docker")
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("argv", [["service", "ls"], ["node", "ls"], ["service", "inspect", "x"], ["node", "ps"],
                                  ["secret", "ls"], ["network", "ls"], ["info"], ["service", "scale", "x=2"],
                                  ["service", "rm", "x"], ["stack", "ls"], ["service", "ps", "x"],
                                  ["service", "create", "--name", "x", "img"], ["service", "update", "--replicas", "2", "x"],
                                  ["node", "update", "--availability", "drain", "x"], ["swarm", "update", "--autolock"],
                                  ["swarm", "unlock-key"], ["service", "inspect", "--pretty", "x"]])
def test_a_server_that_is_not_docker_gets_one_line(not_docker: str, argv: list[str]) -> None:
    assert_one_clear_line(argv, not_docker)
