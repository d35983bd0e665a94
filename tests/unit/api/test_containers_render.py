"""/containers/json's filters and shapes, and the stream framing of logs, attach and exec."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.api.render_containers import check_filters, inspect, listed, summary
from shoal.api.streams import frame
from shoal.errors import InvalidArgument
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
