"""``docker events`` (CLI 28) and docker-py against shoald: a service created, scaled and
removed seen live as swarm events (create, update with replicas.old/new, remove), node updates,
``--since/--until`` replays, every manager publishing (a promoted worker too), none on a worker,
and a node's own image events (pull, tag) from a docker-registry on loopback."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from shoal.dev.local import Daemon, Swarm
from shoal.dev.wait import wait_for
from tests.integration.conftest import init_swarm
from tests.integration.registry_helper import (
    HAVE_REGISTRY,
    busybox_rootfs,
    push_image,
    registry_server,
)

pytestmark = pytest.mark.integration

PREFIX = "shoaltest-evt"
BASE_IP = "127.0.93"
_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) (\S+) (\S+) (\S+)(?: \((.*)\))?$")


class Events:
    """``docker events ARGS`` running against a daemon, its lines collected as they come."""

    def __init__(self, d: Daemon, *args: str) -> None:
        self.proc = subprocess.Popen(["docker", "events", *args], env=d.env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, name="docker-events", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def json(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self.lines)]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def replay(d: Daemon, since: str, *args: str) -> list[str]:
    """``docker events --since SINCE --until 0s ARGS``: what the node kept, then the end."""
    return d.docker("events", "--since", since, "--until", "0s", *args, timeout=30).stdout.splitlines()


def replayed(d: Daemon, since: str, want: str, *args: str) -> list[str]:
    """The replay once a line contains ``want`` (``--until 0s`` is whole seconds: an event of
    the current second shows from the next one on)."""
    def found() -> list[str] | None:
        lines = replay(d, since, *args)
        return lines if any(want in line for line in lines) else None

    return wait_for(f"{want!r} in {d.hostname}'s events", found, timeout=20)


def test_swarm_events_live_replayed_and_on_every_manager(swarm: Swarm) -> None:
    manager, (worker,) = init_swarm(swarm, 1)
    since = str(int(time.time()) - 1)
    live = Events(manager, "--since", since, "--filter", "type=service", "--format", "{{json .}}")
    try:
        web = f"{PREFIX}-web"
        sid = manager.docker("service", "create", "-d", "--name", web, "--replicas", "1",
                             "busybox:latest").stdout.strip()
        manager.docker("service", "scale", "-d", f"{web}=3")
        manager.docker("service", "rm", web)
        wait_for("the service's remove event", lambda: any(e["Action"] == "remove" for e in live.json()),
                 timeout=20)
    finally:
        live.close()
    seen = live.json()
    assert all(e["Type"] == "service" and e["scope"] == "swarm" and e["Actor"]["ID"] == sid for e in seen)
    assert all("status" not in e and e["timeNano"] // 1_000_000_000 == e["time"] for e in seen)
    actions = [e["Action"] for e in seen]
    assert actions[0] == "create" and actions[-1] == "remove" and set(actions[1:-1]) == {"update"}
    assert all(e["Actor"]["Attributes"]["name"] == web for e in seen)
    scaled = [e["Actor"]["Attributes"] for e in seen if "replicas.new" in e["Actor"]["Attributes"]]
    assert scaled == [{"name": web, "replicas.old": "1", "replicas.new": "3"}]

    # live only (no --since): each event is flushed as it happens
    nodes = Events(manager, "--filter", "type=node", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
    try:
        def touched() -> list[str]:  # until the stream is subscribed, an update goes unseen
            manager.docker("node", "update", "--label-add", f"evt={time.monotonic_ns()}", worker.hostname)
            return list(nodes.lines)

        wait_for("a live node event", touched, timeout=20, interval=0.5)
    finally:
        nodes.close()
    assert f"update {worker.hostname}" in nodes.lines

    # node updates, replayed as docker's text lines, filtered by the node's name
    manager.docker("node", "update", "--availability", "drain", worker.hostname)
    lines = replayed(manager, since, "availability.new=drain", "--filter", "type=node",
                     "--filter", f"node={worker.hostname}")
    found = [_LINE.match(line) for line in lines]
    assert all(m is not None for m in found), lines
    drained = [m for m in found if m is not None and "availability.new" in (m.group(5) or "")]
    assert drained[0].group(2, 3) == ("node", "update")
    assert drained[0].group(5) == f"availability.new=drain, availability.old=active, name={worker.hostname}"

    # --since 1m --until 0s (a duration reaching back before the service): then the end
    ago = f"{int(time.time()) - int(since) + 2}s"
    recent = replayed(manager, ago, f"service remove {sid}", "--filter", "type=service")
    assert f" service create {sid} (name={web})" in recent[0]
    # the shoal CLI prints what the docker CLI prints, as text and as JSON
    for fmt in ((), ("--format", "{{json .}}")):
        args = ["--since", since, "--until", "0s", "--filter", "type=service", *fmt]
        assert manager.shoal("events", *args).stdout == manager.docker("events", *args).stdout
    # docker-py: both filter encodings reach the same filter; a past until ends the stream
    client = docker.DockerClient(base_url=manager.host, timeout=30)
    try:
        got = list(client.events(decode=True, since=int(since), until=int(time.time()),
                                 filters={"type": "service", "event": ["create", "remove"]}))
    finally:
        client.close()
    assert [(e["Action"], e["Actor"]["ID"]) for e in got] == [("create", sid), ("remove", sid)]

    # a worker has no swarm events; promoted, it publishes them as every manager does
    assert replay(worker, since, "--filter", "scope=swarm") == []
    manager.docker("node", "update", "--availability", "active", worker.hostname)
    manager.docker("node", "promote", worker.hostname)
    wait_for("the promoted worker serves the swarm", lambda: worker.api("/info")["Swarm"]["ControlAvailable"],
             timeout=60)
    two = f"{PREFIX}-two"
    tid = manager.docker("service", "create", "-d", "--name", two, "busybox:latest").stdout.strip()
    replayed(worker, since, f"service create {tid}", "--filter", f"service={two}")
    manager.docker("service", "rm", two)


@pytest.mark.skipif(not HAVE_REGISTRY, reason="docker-registry is not installed")
def test_image_events_on_a_node(swarm: Swarm, tmp_path: Path) -> None:
    with registry_server(tmp_path / "registry") as registry:
        push_image(registry, "shoaltest/evt", "1", [busybox_rootfs()], config={"Labels": {"tier": "evt"}})
        d, other = swarm.add(), swarm.add()
        since = str(int(time.time()) - 1)
        name = f"{registry}/shoaltest/evt:1"
        d.docker("pull", name)
        d.docker("tag", name, "shoaltest/evt-tagged:2")
        ident = json.loads(d.docker("image", "inspect", name).stdout)[0]["Id"]
        fmt = "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}} {{.Actor.Attributes.tier}} {{.Status}}"
        lines = replayed(d, since, " shoaltest/evt-tagged:2 ", "--filter", "type=image", "--format", fmt)
        assert lines == [f"pull {name} {registry}/shoaltest/evt evt pull",
                         f"tag {ident} shoaltest/evt-tagged:2 evt tag"]
        assert replay(d, since, "--filter", "image=shoaltest/evt-tagged", "--format", "{{.Action}}") == ["tag"]
        assert replay(other, since, "--filter", "type=image") == []  # events are the node's own
