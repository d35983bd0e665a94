"""/containers/json's filters and shapes, and the stream framing of logs, attach and exec."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.api.render_containers import check_filters, inspect, listed, summary
from shoal.api.streams import frame
from shoal.errors import InvalidArgument
from shoal.exec.localnet import Endpoint, PortBinding, Sandbox
from shoal.exec.runc import record
from shoal.exec.runc.containers import ContainerState
from shoal.exec.runc.state import write_json

CID = "cd" * 32
REC = {"Name": "/web.1.abc", "Created": "2026-12-07T10:00:00.000000000Z", "Path": "sleep",
       "Args": ["9"], "Image": "sha256:" + "e" * 64,
       "Config": {"Image": "busybox:latest", "Labels": {"com.docker.swarm.task": "", "a": "b"},
                  "Tty": False},
       "Networks": {"web_net": {"NetworkID": "n1" * 10, "IPAddress": "10.0.0.3"}}}


def _state(tmp_path: Path) -> ContainerState:
    d = tmp_path / CID
    d.mkdir()
    record.write_record(d, REC)
    write_json(d / "exit.json", {"code": 2, "finished_at": 1})
    write_json(d / "shim.json", {"shim_pid": 999_999_999, "pid": 3})
    return ContainerState(d)


def test_frames_are_dockers() -> None:
    assert frame(1, b"hi") == b"\x01\x00\x00\x00\x00\x00\x00\x02hi"
    assert frame(2, b"") == b"\x02\x00\x00\x00\x00\x00\x00\x00"


def test_summary_and_inspect(tmp_path: Path) -> None:
    st = _state(tmp_path)
    s = summary(CID, REC, st)
    assert s["Names"] == ["/web.1.abc"] and s["Command"] == "sleep 9"
    assert s["State"] == "exited" and s["Status"].startswith("Exited (2)")
    assert s["Created"] == 1_796_637_600
    i = inspect(CID, REC, st)
    assert i["State"]["ExitCode"] == 2 and i["Config"]["Tty"] is False
    assert i["NetworkSettings"]["Networks"]["web_net"]["IPAddress"] == "10.0.0.3"


@pytest.mark.parametrize(("filters", "shown"), [
    ({"is-task": ["true"]}, True), ({"is-task": ["false"]}, False),
    ({"label": ["a=b"]}, True), ({"label": ["a=c"]}, False),
    ({"name": ["web"]}, True), ({"name": ["^db"]}, False),
    ({"status": ["exited"]}, True), ({"status": ["running"]}, False),
    ({"exited": ["2"]}, True), ({"exited": ["0"]}, False),
    ({"id": [CID[:5]]}, True), ({"network": ["web_net"]}, True), ({"network": ["x"]}, False),
    ({"ancestor": ["busybox"]}, True), ({"ancestor": ["alpine"]}, False),
    ({"health": ["none"]}, True),
])
def test_list_filters(tmp_path: Path, filters: dict[str, list[str]], shown: bool) -> None:
    assert listed(CID, REC, _state(tmp_path), filters) is shown


def test_bad_filter_values() -> None:
    with pytest.raises(InvalidArgument, match="invalid filter 'status=sleeping'"):
        check_filters({"status": ["sleeping"]})
    with pytest.raises(InvalidArgument, match="Unrecognized filter value for health: ok"):
        check_filters({"health": ["ok"]})


def test_a_standalone_containers_networks_and_ports_come_from_its_sandbox(tmp_path: Path) -> None:
    rec = {**REC, "Networks": {}}
    ep = Endpoint(network_id="b1" * 32, network_name="bridge", endpoint_id="e1" * 32,
                  ip_address="172.17.0.2", prefix_len=16, gateway="172.17.0.1",
                  mac_address="02:42:ac:11:00:02", dns_names=("web",))
    box = Sandbox(path="/run/x", endpoints=(ep,),
                  ports=(PortBinding(80, "tcp", "", 8088), PortBinding(53, "udp", "10.0.0.1", 5353)))
    out = inspect(CID, rec, _state(tmp_path), box)["NetworkSettings"]
    assert out["Networks"]["bridge"]["IPAddress"] == "172.17.0.2"
    assert out["Networks"]["bridge"]["DNSNames"] == ["web"]
    assert (out["IPAddress"], out["IPPrefixLen"], out["Gateway"]) == ("172.17.0.2", 16, "172.17.0.1")
    assert out["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8088"}],
                            "53/udp": [{"HostIp": "10.0.0.1", "HostPort": "5353"}]}
    listed_ports = summary(CID, rec, ContainerState(tmp_path / CID), box)["Ports"]
    assert {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8088, "Type": "tcp"} in listed_ports
    # a task's networks are its attachments, whatever a sandbox says
    assert inspect(CID, REC, ContainerState(tmp_path / CID), box)["NetworkSettings"][
        "Networks"] == REC["Networks"]
