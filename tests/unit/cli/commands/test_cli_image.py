"""``shoal image ...`` (and ``pull``/``images``/``rmi``/``load``/``import``) against a small fake
daemon: what is sent, and docker's output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from click.testing import CliRunner

from shoal.cli.app import App
from shoal.cli.main import cli

NOW = 1714557605  # 2024-05-01T10:00:05Z
IMAGES = [
    {"Id": "sha256:" + "a" * 64, "RepoTags": ["shoaltest/web:1", "shoaltest/web:latest"],
     "RepoDigests": ["shoaltest/web@sha256:" + "d" * 64], "Created": NOW - 7200, "Size": 4_260_000,
     "SharedSize": -1, "Labels": {}, "Containers": -1},
    {"Id": "sha256:" + "b" * 64, "RepoTags": [], "RepoDigests": [], "Created": NOW - 3 * 86400,
     "Size": 1234, "SharedSize": -1, "Labels": {}, "Containers": -1},
]


class Daemon:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, list[tuple[str, str]], bytes]] = []
        self.pull_lines: list[dict[str, Any]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/_ping":
            return httpx.Response(200, headers={"Api-Version": "1.50"})
        path = path.removeprefix("/v1.50")
        body = request.read()
        self.requests.append((request.method, path, parse_qsl(request.url.query.decode(), keep_blank_values=True), body))
        lines = lambda docs: httpx.Response(
            200, content=b"".join(json.dumps(d).encode() + b"\n" for d in docs),
            headers={"Content-Type": "application/json"})
        if path == "/images/create" and "fromSrc" in dict(parse_qsl(request.url.query.decode())):
            return lines([{"status": "sha256:" + "c" * 64}])
        if path == "/images/create":
            return lines(self.pull_lines)
        if path == "/images/load":
            return lines([{"stream": "Loaded image: shoaltest/saved:1\n"}])
        if path == "/images/json":
            return httpx.Response(200, json=IMAGES)
        if path.endswith("/json") and request.method == "GET":
            name = path[len("/images/"):-len("/json")]
            if name == "nope":
                return httpx.Response(404, json={"message": "No such image: nope"},
                                      headers={"Content-Type": "application/json"})
            return httpx.Response(200, json={"Id": IMAGES[0]["Id"], "RepoTags": IMAGES[0]["RepoTags"]})
        if request.method == "DELETE":
            name = path[len("/images/"):]
            if name == "nope":
                return httpx.Response(404, json={"message": "No such image: nope"},
                                      headers={"Content-Type": "application/json"})
            return httpx.Response(200, json=[{"Untagged": f"{name}"}, {"Deleted": IMAGES[0]["Id"]}])
        if path.endswith("/tag"):
            return httpx.Response(201)
        return httpx.Response(404, json={"message": "page not found"})


@pytest.fixture
def daemon() -> Daemon:
    return Daemon()


def run(daemon: Daemon, *args: str, input: bytes | None = None) -> tuple[int, str, str]:
    app = App(transport=httpx.MockTransport(daemon.handler), tty=False, width=200,
              now_ns=lambda: NOW * 1_000_000_000)
    result = CliRunner().invoke(cli, list(args), obj=app, input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_pull_prints_progress_then_the_name(daemon: Daemon) -> None:
    daemon.pull_lines = [{"status": "Pulling from shoaltest/bb", "id": "1"},
                         {"status": "Pulling fs layer", "progressDetail": {}, "id": "0123456789ab"},
                         {"status": "Pull complete", "progressDetail": {}, "id": "0123456789ab"},
                         {"status": "Digest: sha256:" + "d" * 64},
                         {"status": "Status: Downloaded newer image for 127.0.0.1:5000/shoaltest/bb:1"}]
    status, out, _ = run(daemon, "image", "pull", "127.0.0.1:5000/shoaltest/bb:1")
    assert status == 0
    assert out.splitlines() == ["1: Pulling from shoaltest/bb", "0123456789ab: Pulling fs layer",
                                "0123456789ab: Pull complete", "Digest: sha256:" + "d" * 64,
                                "Status: Downloaded newer image for 127.0.0.1:5000/shoaltest/bb:1",
                                "127.0.0.1:5000/shoaltest/bb:1"]
    assert daemon.requests[-1][2] == [("fromImage", "127.0.0.1:5000/shoaltest/bb"), ("tag", "1")]
    status, out, _ = run(daemon, "pull", "-q", "busybox")
    assert (status, out) == (0, "docker.io/library/busybox:latest\n")
    assert daemon.requests[-1][2] == [("fromImage", "docker.io/library/busybox"), ("tag", "latest")]


DOWNLOAD = [{"status": "Pulling from shoaltest/bb", "id": "1"},
            {"status": "Pulling fs layer", "progressDetail": {}, "id": "0123456789ab"},
            {"status": "Downloading", "progressDetail": {"current": 1_200_000, "total": 2_400_000},
             "id": "0123456789ab"},
            {"status": "Downloading", "progressDetail": {"current": 2_400_000, "total": 2_400_000},
             "id": "0123456789ab"},
            {"status": "Pull complete", "progressDetail": {}, "id": "0123456789ab"},
            {"status": "Status: Downloaded newer image for 127.0.0.1:5000/shoaltest/bb:1"}]


def test_pull_download_bars_only_on_a_terminal(daemon: Daemon) -> None:
    daemon.pull_lines = DOWNLOAD
    status, out, _ = run(daemon, "image", "pull", "127.0.0.1:5000/shoaltest/bb:1")
    assert status == 0 and "Downloading" not in out  # docker hides bars off a terminal
    app = App(transport=httpx.MockTransport(daemon.handler), tty=True, width=200)
    result = CliRunner().invoke(cli, ["image", "pull", "127.0.0.1:5000/shoaltest/bb:1"], obj=app)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    # the layer's line redrawn in place: erased, rewritten with its bar and human sizes
    assert "\x1b[2K\r0123456789ab: Downloading [" + "=" * 25 + ">" in out
    assert "   1.2MB/2.4MB" in out and "   2.4MB/2.4MB" in out
    assert "\x1b[1A" in out and "\x1b[1B" in out
    assert out.rstrip().endswith("127.0.0.1:5000/shoaltest/bb:1")


def test_pull_error_in_the_stream(daemon: Daemon) -> None:
    daemon.pull_lines = [{"status": "Pulling from x", "id": "1"},
                         {"errorDetail": {"message": "blob unknown"}, "error": "blob unknown"}]
    status, out, err = run(daemon, "image", "pull", "127.0.0.1:5000/x:1")
    assert status == 1 and out == "1: Pulling from x\n" and err == "blob unknown\n"
    status, _, err = run(daemon, "pull", "Bad:Name")
    assert status == 1 and "invalid reference format" in err


def test_ls_table_quiet_and_format(daemon: Daemon) -> None:
    status, out, _ = run(daemon, "image", "ls")
    assert status == 0
    assert out.splitlines() == [
        "REPOSITORY      TAG       IMAGE ID       CREATED       SIZE",
        "shoaltest/web   1         aaaaaaaaaaaa   2 hours ago   4.26MB",
        "shoaltest/web   latest    aaaaaaaaaaaa   2 hours ago   4.26MB",
        "<none>          <none>    bbbbbbbbbbbb   3 days ago    1.23kB",
    ]
    assert run(daemon, "images", "-q")[1] == "aaaaaaaaaaaa\nbbbbbbbbbbbb\n"
    out = run(daemon, "image", "ls", "--format", "{{.Repository}}:{{.Tag}} {{.Digest}}")[1]
    assert out.splitlines()[0] == "shoaltest/web:1 sha256:" + "d" * 64
    run(daemon, "images", "-f", "dangling=true", "shoaltest/web")
    query = dict(daemon.requests[-1][2])
    assert json.loads(query["filters"]) == {"dangling": {"true": True}, "reference": {"shoaltest/web": True}}


def test_inspect_and_rm(daemon: Daemon) -> None:
    status, out, err = run(daemon, "image", "inspect", "--format", "{{.Id}}", "shoaltest/web:1", "nope")
    assert status == 1 and out == IMAGES[0]["Id"] + "\n"
    assert err == "Error response from daemon: No such image: nope\n"
    status, out, err = run(daemon, "rmi", "-f", "shoaltest/web:1", "nope")
    assert status == 1 and out == f"Untagged: shoaltest/web:1\nDeleted: {IMAGES[0]['Id']}\n"
    assert err == "Error response from daemon: No such image: nope\n"
    assert daemon.requests[-2][2] == [("force", "1"), ("noprune", "0")]


def test_load_and_import_stream_the_file(daemon: Daemon, tmp_path: Path) -> None:
    archive = tmp_path / "shoaltest.tar"
    archive.write_bytes(b"archive bytes" * 1000)
    status, out, _ = run(daemon, "image", "load", "-i", str(archive))
    assert (status, out) == (0, "Loaded image: shoaltest/saved:1\n")
    assert daemon.requests[-1][3] == archive.read_bytes()
    status, out, _ = run(daemon, "load", input=b"from stdin")
    assert status == 0 and daemon.requests[-1][3] == b"from stdin"
    status, out, _ = run(daemon, "image", "import", "-c", 'CMD ["sh"]', "--change", "ENV A=1", "-m", "hi",
                         str(archive), "shoaltest/imp:1")
    assert (status, out) == (0, "sha256:" + "c" * 64 + "\n")
    method, path, query, body = daemon.requests[-1]
    assert (method, path, body) == ("POST", "/images/create", archive.read_bytes())
    assert query == [("fromSrc", "-"), ("repo", "shoaltest/imp:1"), ("tag", ""), ("message", "hi"),
                     ("changes", 'CMD ["sh"]'), ("changes", "ENV A=1")]
    status, _, _ = run(daemon, "import", "-", input=b"rootfs")
    assert status == 0 and daemon.requests[-1][3] == b"rootfs"
    status, _, err = run(daemon, "image", "load", "-i", str(tmp_path / "missing.tar"))
    assert status == 1 and "no such file" in err


def test_tag(daemon: Daemon) -> None:
    assert run(daemon, "tag", "shoaltest/web:1", "127.0.0.1:5000/shoaltest/web:2")[0] == 0
    assert daemon.requests[-1][:3] == ("POST", "/images/shoaltest/web:1/tag",
                                       [("repo", "127.0.0.1:5000/shoaltest/web"), ("tag", "2")])
