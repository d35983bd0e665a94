"""The node's container API on the runc side, without root: a task container's record (names,
labels), the state read from the shim's files, ``docker run``'s request as a ContainerSpec
(and what is refused), signals, and a standalone container's networks against a fake
LocalNetworks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from shoal.errors import InvalidArgument, NotFound
from shoal.exec.containerspec import Process
from shoal.exec.localnet import Endpoint, EndpointRequest, PortBinding, Sandbox
from shoal.exec.runc import record
from shoal.exec.runc.containers import Containers, ContainerState, human_duration, parse_signal
from shoal.exec.runc.runspec import parse_run
from shoal.exec.runc.sandbox import attach_networks, check_networks, release
from shoal.exec.runc.standalone import RUN_FILE, Standalone
from shoal.exec.runc.state import RuncConfig, write_json
from shoal.model.objects import Task
from shoal.model.specs import TaskSpec

CID = "ab" * 32


def _task(slot: int = 2) -> Task:
    return Task(id="t" * 25, service_id="s" * 25, service_name="web", slot=slot,
                node_id="n" * 25, labels={"tl": "1"},
                spec=TaskSpec(container_spec={"Image": "busybox:latest@sha256:" + "0" * 64,
                                              "Labels": {"role": "front",
                                                         "com.docker.swarm.task.id": "x"},
                                              "Args": ["sleep", "9"]}))


def test_task_record_has_dockers_name_and_swarm_labels() -> None:
    process = Process(args=("sleep", "9"), env=("PATH=/bin",), cwd="/", user="", hostname="",
                      health=None)
    rec = record.task_record(_task(), process=process, image_id="sha256:1", image_config={
        "Cmd": ["sh"]}, hostname="h", tty=False, open_stdin=False)
    assert rec["Name"] == "/web.2." + "t" * 25
    labels = rec["Config"]["Labels"]
    assert labels["role"] == "front" and labels["tl"] == "1"
    assert labels["com.docker.swarm.task.id"] == "t" * 25  # the system labels win
    assert labels["com.docker.swarm.task"] == ""
    assert labels["com.docker.swarm.service.name"] == "web"
    assert rec["Config"]["Cmd"] == ["sleep", "9"] and rec["Path"] == "sleep"
    glob = record.task_record(_task(slot=0), process=process, image_id="", image_config={},
                              hostname="h", tty=True, open_stdin=False)
    assert glob["Name"] == "/web." + "n" * 25 + "." + "t" * 25 and glob["Config"]["Tty"]


def _config(tmp_path: Path) -> RuncConfig:
    return RuncConfig(data_root=tmp_path, exec_root=tmp_path / "exec", images=None)  # type: ignore[arg-type]


def test_state_from_the_shims_files(tmp_path: Path) -> None:
    d = tmp_path / "containers" / CID
    d.mkdir(parents=True)
    record.write_record(d, {"Name": "/web.1.x", "Config": {"Labels": {}}})
    st = ContainerState(d)
    assert st.status == "created" and st.status_text(0) == "Created"
    write_json(d / "shim.json", {"shim_pid": 999_999_999, "pid": 5})
    write_json(d / "exit.json", {"code": 137, "oom": True, "finished_at": 2_000_000_000})
    st = ContainerState(d)
    assert st.status == "exited" and st.exit_code == 137 and st.state()["OOMKilled"]
    assert st.status_text(12.5).startswith("Exited (137) 10 seconds ago")


def test_names_and_prefixes_resolve_as_dockerd(tmp_path: Path) -> None:
    containers = Containers(_config(tmp_path))
    for cid, name in ((CID, "/one"), ("ac" * 32, "/two")):
        d = tmp_path / "containers" / cid
        d.mkdir(parents=True)
        record.write_record(d, {"Name": name})
    assert containers.resolve("one") == CID and containers.resolve("/two") == "ac" * 32
    assert containers.resolve("aba") == CID
    with pytest.raises(InvalidArgument, match="multiple IDs found with provided prefix: a"):
        containers.resolve("a")
    with pytest.raises(NotFound, match="No such container: three"):
        containers.resolve("three")


def test_signals_and_durations() -> None:
    assert parse_signal("KILL") == parse_signal("SIGKILL") == parse_signal("9") == 9
    assert parse_signal("") == 9 and parse_signal(None, 15) == 15
    with pytest.raises(InvalidArgument, match="Invalid signal: NOPE"):
        parse_signal("NOPE")
    assert human_duration(0.5) == "Less than a second" and human_duration(90) == "About a minute"
    assert human_duration(3 * 3600) == "3 hours"


def test_run_request_as_a_container_spec() -> None:
    spec = parse_run({"Image": "busybox", "Entrypoint": ["sh"], "Cmd": ["-c", "true"],
                      "Env": ["A=1"], "Tty": True, "OpenStdin": True, "StopTimeout": 3,
                      "HostConfig": {"Binds": ["/srv:/data:ro", "vol:/v"], "AutoRemove": True,
                                     "NetworkMode": "default", "Memory": 64 << 20,
                                     "PortBindings": {"80/tcp": [{"HostPort": "8080"}]},
                                     "ExtraHosts": ["db:10.0.0.2"], "ConsoleSize": [24, 80],
                                     "RestartPolicy": {"Name": "no"}}}, None)
    cs = spec.task_spec.container_spec or {}
    assert cs["Command"] == ["sh"] and cs["Args"] == ["-c", "true"] and cs["TTY"]
    assert cs["StopGracePeriod"] == 3_000_000_000 and cs["Hosts"] == ["10.0.0.2 db"]
    assert cs["Mounts"] == [{"Type": "bind", "Source": "/srv", "Target": "/data", "ReadOnly": True},
                            {"Type": "volume", "Source": "vol", "Target": "/v", "ReadOnly": False}]
    assert spec.auto_remove and spec.endpoints == [EndpointRequest("bridge")]
    assert spec.ports == [PortBinding(80, "tcp", "", 8080)]
    assert spec.task_spec.resources is not None
    assert spec.task_spec.resources.limits is not None
    assert spec.task_spec.resources.limits.memory_bytes == 64 << 20


@pytest.mark.parametrize(("host", "words"), [
    ({"Privileged": True}, "HostConfig.Privileged"),
    ({"PidMode": "host"}, "HostConfig.PidMode"),
    ({"Devices": [{"PathOnHost": "/dev/kvm"}]}, "HostConfig.Devices"),
    ({"RestartPolicy": {"Name": "always"}, "AutoRemove": True}, "AutoRemove"),
    ({"RestartPolicy": {"Name": "sometimes"}}, "invalid restart policy 'sometimes'"),
    ({"NoSuchField": 1}, "HostConfig.NoSuchField"),
])
def test_run_request_refusals_name_the_field(host: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        parse_run({"Image": "busybox", "HostConfig": host}, None)


class FakeNetworks:
    """LocalNetworks for one function's unit test: records the calls."""

    def __init__(self) -> None:
        self.attached: list[tuple[str, list[EndpointRequest], list[PortBinding]]] = []
        self.released: list[str] = []

    async def attach(self, container_id: str, requests: Sequence[EndpointRequest], *,
                     hostname: str, ports: Sequence[PortBinding] = ()) -> Sandbox:
        self.attached.append((container_id, list(requests), list(ports)))
        return Sandbox("/run/netns/x", (Endpoint("nid", "mynet", "eid", "10.0.0.2", 24),),
                       tuple(ports), embedded_dns=True)

    async def connect(self, container_id: str, request: EndpointRequest, *,
                      hostname: str) -> Endpoint:
        raise AssertionError("not called")

    async def disconnect(self, container_id: str, network: str, *, force: bool = False) -> None:
        raise AssertionError("not called")

    def sandbox(self, container_id: str) -> Sandbox | None:
        return None

    async def release(self, container_id: str) -> None:
        self.released.append(container_id)


def _standalone_dir(tmp_path: Path, mode: str) -> Path:
    d = tmp_path / "containers" / CID
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"linux": {"namespaces": [
        {"type": "pid"}, {"type": "network"}]}}))
    record.write_record(d, {"Name": "/x", "Config": {"Hostname": "hh"}})
    write_json(d / RUN_FILE, {"network_mode": mode, "endpoints": [
        {"network": "mynet", "aliases": ["a"], "ipv4_address": ""}],
        "ports": [{"container_port": 80, "protocol": "tcp", "host_ip": "", "host_port": 0}]})
    return d


async def test_standalone_networks_attach_and_release(tmp_path: Path) -> None:
    fake = FakeNetworks()
    standalone = Standalone(Containers(_config(tmp_path)), fake)
    d = _standalone_dir(tmp_path, "mynet")
    info = standalone.run_info(CID)
    assert info is not None
    sandbox = await attach_networks(d, info, fake)
    assert sandbox is not None and fake.attached == [
        (CID, [EndpointRequest("mynet", ("a",))], [PortBinding(80)])]
    ns = json.loads((d / "config.json").read_text())["linux"]["namespaces"]
    assert ns[1] == {"type": "network", "path": "/run/netns/x"}
    assert (d / "resolv.conf").read_text().startswith("nameserver 127.0.0.11")
    await release(CID, info, fake)
    assert fake.released == [CID]


async def test_without_local_networks_only_none_and_host(tmp_path: Path) -> None:
    standalone = Standalone(Containers(_config(tmp_path)), None)
    with pytest.raises(InvalidArgument, match='network "mynet": this node has no local'):
        check_networks(parse_run({"Image": "b", "HostConfig": {
            "NetworkMode": "mynet"}}, None), None)
    with pytest.raises(InvalidArgument, match='network "bridge"'):
        check_networks(parse_run({"Image": "b"}, None), None)
    check_networks(parse_run({"Image": "b", "HostConfig": {"NetworkMode": "none"}}, None), None)
    d = _standalone_dir(tmp_path, "none")
    info = standalone.run_info(CID)
    assert info is not None and await attach_networks(d, info, None) is None
    ns = json.loads((d / "config.json").read_text())["linux"]["namespaces"]
    assert ns[1] == {"type": "network"}


def test_events_carry_dockers_attributes(tmp_path: Path) -> None:
    from shoal.events import EventLog

    events = EventLog()
    containers = Containers(_config(tmp_path), events)
    d = tmp_path / "containers" / CID
    d.mkdir(parents=True)
    record.write_record(d, {"Name": "/web.1.t", "Config": {"Image": "busybox",
                                                          "Labels": {"a": "b"}}})
    containers.publish(CID, "kill", {"signal": "15"})
    [event] = events.replay(0)
    assert event.to_json()["Actor"] == {"ID": CID, "Attributes": {
        "a": "b", "image": "busybox", "name": "web.1.t", "signal": "15"}}
    assert event.to_json()["status"] == "kill" and event.to_json()["from"] == "busybox"
