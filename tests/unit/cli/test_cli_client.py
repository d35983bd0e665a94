"""The HTTP client: daemon address, version negotiation, JSON calls and errors."""

from __future__ import annotations

import httpx
import pytest

from shoal.cli.client import Client, DaemonError, filters_param, resolve_host


class Recorder:
    def __init__(self, ping_status: int = 200, api_version: str | None = "1.50") -> None:
        self.ping_status, self.api_version = ping_status, api_version
        self.seen: list[tuple[str, str]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, request.url.path))
        if request.url.path == "/_ping":
            headers = {"Api-Version": self.api_version} if self.api_version else {}
            status = self.ping_status if request.method == "HEAD" else 200
            return httpx.Response(status, headers=headers)
        if request.url.path.endswith("/missing"):
            return httpx.Response(
                404,
                json={"message": "service missing not found"},
                headers={"Content-Type": "application/json"},
            )
        return httpx.Response(
            200, json={"path": request.url.path, "query": dict(request.url.params)}
        )

    def client(self) -> Client:
        return Client("unix:///tmp/x.sock", transport=httpx.MockTransport(self.handle))


@pytest.mark.parametrize(
    ("advertised", "used"), [("1.50", "1.50"), ("1.44", "1.44"), ("1.51", "1.50"), (None, "1.24")]
)
def test_negotiates_like_docker(
    advertised: str | None, used: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_API_VERSION", raising=False)
    recorder = Recorder(api_version=advertised)
    client = recorder.client()
    assert client.get("/swarm", {"status": "true"}) == {
        "path": f"/v{used}/swarm",
        "query": {"status": "true"},
    }
    assert recorder.seen[0] == ("HEAD", "/_ping")
    client.get("/info")
    assert len([s for s in recorder.seen if s[1] == "/_ping"]) == 1  # negotiated once


def test_falls_back_to_get_ping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_API_VERSION", raising=False)
    recorder = Recorder(ping_status=404)
    recorder.client().get("/info")
    assert recorder.seen[:2] == [("HEAD", "/_ping"), ("GET", "/_ping")]


def test_docker_api_version_skips_negotiation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_API_VERSION", "1.45")
    recorder = Recorder()
    assert recorder.client().get("/info")["path"] == "/v1.45/info"
    assert ("HEAD", "/_ping") not in recorder.seen


def test_errors_carry_status_and_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_API_VERSION", raising=False)
    with pytest.raises(DaemonError) as caught:
        Recorder().client().get("/services/missing")
    assert (caught.value.status, caught.value.message, caught.value.not_found) == (
        404,
        "service missing not found",
        True,
    )
    assert str(caught.value) == "Error response from daemon: service missing not found"


def test_host_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert resolve_host() == "unix:///run/shoal/shoal.sock"
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert resolve_host() == "tcp://127.0.0.1:2375"
    assert resolve_host("unix:///x.sock") == "unix:///x.sock"
    with pytest.raises(ValueError, match="unable to parse docker host"):
        Client("ftp://x")


def test_filters_encoding() -> None:
    assert (
        filters_param({"name": ["web"], "id": ["a", "b"]})
        == '{"id":{"a":true,"b":true},"name":{"web":true}}'
    )
