"""The runc executor's pieces that need no root: the json-file log format (write, rotate, read,
follow), user resolution, Mounts checks and the OCI spec, stop signals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shoal.exec.containerspec import resolve
from shoal.exec.errors import ExecError, TaskRejected
from shoal.exec.runc import logfile
from shoal.exec.runc.controller import _signal
from shoal.exec.runc.spec import build_mounts, build_spec, resolve_user
from shoal.model.objects import Task
from shoal.model.privileges import KNOWN_CAPS
from shoal.model.specs import Limits, Resources, TaskSpec
from shoal.volume import VolumeService

T0 = 1_795_000_000_123_456_789


def test_time_format_round_trips() -> None:
    text = logfile.format_time(T0)
    assert text.endswith(".123456789Z") and logfile.parse_time(text) == T0
    assert logfile.parse_time("2026-11-26T01:02:03.5Z") % 1_000_000_000 == 500_000_000


def test_writer_makes_docker_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    w = logfile.LogWriter(str(path), 0, 3)
    w.write(logfile.Entry("stdout", T0, b"hello \xff\n"))
    w.close()
    obj = json.loads(path.read_bytes())
    assert obj == {"log": "hello \ufffd\n", "stream": "stdout",
                   "time": logfile.format_time(T0)}


def test_rotation_keeps_max_files(tmp_path: Path) -> None:
    path = str(tmp_path / "c-json.log")
    w = logfile.LogWriter(path, 300, 3)
    for i in range(40):
        w.write(logfile.Entry("stdout", T0 + i, f"line{i}\n".encode()))
    w.close()
    assert logfile.paths(path) == [path + ".2", path + ".1", path]
    got = [e.data for e in logfile.read_entries(path)]
    assert got[-1] == b"line39\n" and got == [f"line{i}\n".encode()
                                              for i in range(40 - len(got), 40)]
    one = logfile.LogWriter(str(tmp_path / "one.log"), 100, 1)  # max-file 1: truncate
    for i in range(10):
        one.write(logfile.Entry("stdout", T0, b"x" * 30 + b"\n"))
    one.close()
    assert logfile.paths(str(tmp_path / "one.log")) == [str(tmp_path / "one.log")]


def test_splitter_cuts_lines_and_long_pieces() -> None:
    s = logfile.LineSplitter()
    assert s.feed(b"a\nb") == [b"a\n"]
    assert s.feed(b"c\n") == [b"bc\n"]
    long = s.feed(b"x" * (logfile.MAX_LINE + 10))
    assert long == [b"x" * logfile.MAX_LINE]
    assert s.flush() == [b"x" * 10] and s.flush() == []


def test_select_filters_and_tail() -> None:
    entries = [logfile.Entry("stdout" if i % 2 else "stderr", T0 + i, b"%d\n" % i)
               for i in range(10)]
    assert [e.data for e in logfile.select(entries, tail=2)] == [b"8\n", b"9\n"]
    assert all(e.stream == "stdout" for e in logfile.select(entries, stderr=False))
    assert [e.time - T0 for e in logfile.select(entries, since=T0 + 7, until=T0 + 8)] == [7, 8]
    assert logfile.select(entries, tail=0) == []


def test_history_in_chunks_then_the_follower_goes_on(tmp_path: Path) -> None:
    path = str(tmp_path / "c-json.log")
    w = logfile.LogWriter(path, 300, 3)
    for i in range(12):
        w.write(logfile.Entry("stdout" if i % 3 else "stderr", T0 + i, f"l{i}\n".encode()))
    follower = logfile.Follower(path)
    chunks = list(logfile.history(path, follower, stderr=False, chunk=3))
    assert all(len(c) <= 3 for c in chunks)
    seen = [e.data for c in chunks for e in c]
    assert seen[-1] == b"l11\n" and all(e.stream == "stdout" for c in chunks for e in c)
    other = logfile.Follower(path)
    (last,) = logfile.history(path, other, tail=2)
    other.close()
    assert [e.data for e in last] == [b"l10\n", b"l11\n"]
    w.write(logfile.Entry("stdout", T0 + 12, b"l12\n"))
    assert [e.data for e in follower.read_new()] == [b"l12\n"]  # only what came after
    w.close()
    follower.close()


def test_follower_reads_appends_and_survives_rotation(tmp_path: Path) -> None:
    path = str(tmp_path / "c-json.log")
    f = logfile.Follower(path)
    assert f.read_new() == []  # no file yet
    w = logfile.LogWriter(path, 200, 3)
    w.write(logfile.Entry("stdout", T0, b"one\n"))
    assert [e.data for e in f.read_new()] == [b"one\n"]
    with open(path, "ab") as raw:  # a torn line is kept until it is complete
        raw.write(b'{"log":"two\\n","stream":"stdout",')
    w._size += 1000  # the next write rotates
    assert f.read_new() == []
    with open(path, "ab") as raw:
        raw.write(b'"time":"' + logfile.format_time(T0).encode() + b'"}\n')
    w.write(logfile.Entry("stderr", T0, b"three\n"))
    w.close()
    assert [e.data for e in f.read_new()] == [b"two\n", b"three\n"]
    f.close()


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                         "www:x:33:33::/var/www:/bin/false\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nwww:x:33:\nextra:x:500:www,other\n")
    return tmp_path


@pytest.mark.parametrize(("user", "uid", "gid", "extra"), [
    ("", 0, 0, ()), ("www", 33, 33, (500,)), ("33", 33, 33, (500,)), ("1234", 1234, 0, ()),
    ("www:root", 33, 0, ()), ("www:7", 33, 7, ()), ("1234:5678", 1234, 5678, ()),
])
def test_resolve_user(rootfs: Path, user: str, uid: int, gid: int, extra: tuple[int, ...]) -> None:
    u = resolve_user(rootfs, user)
    assert (u.uid, u.gid, u.additional_gids) == (uid, gid, extra)


def test_resolve_user_errors(rootfs: Path) -> None:
    with pytest.raises(TaskRejected, match="unable to find user nobody: no matching entries"):
        resolve_user(rootfs, "nobody")
    with pytest.raises(TaskRejected, match="unable to find group nope"):
        resolve_user(rootfs, "www:nope")
    (rootfs / "etc/passwd").unlink()
    (rootfs / "etc/passwd").symlink_to("/etc/passwd")  # the host's file is not read
    with pytest.raises(TaskRejected):
        resolve_user(rootfs, "root")


def test_mount_errors(rootfs: Path, tmp_path: Path) -> None:
    def mounts(*ms: dict[str, Any]) -> list[dict[str, Any]]:
        return build_mounts({"Mounts": list(ms)}, volumes=VolumeService(tmp_path / "v"),
                            anon_root=tmp_path / "a", rootfs=rootfs)

    with pytest.raises(TaskRejected, match="bind source path does not exist: /nope"):
        mounts({"Type": "bind", "Source": "/nope", "Target": "/x"})
    with pytest.raises(TaskRejected, match="must be absolute"):
        mounts({"Type": "bind", "Source": str(tmp_path), "Target": "x"})
    with pytest.raises(TaskRejected, match="mount type unknown"):
        mounts({"Type": "npipe", "Source": "a", "Target": "/x"})
    got = mounts({"Type": "bind", "Source": str(tmp_path), "Target": "/x", "ReadOnly": True},
                 {"Type": "volume", "Source": "v1", "Target": "/etc"},
                 {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 4096}})
    assert got[0]["options"] == ["rbind", "rprivate", "ro"]
    assert got[1]["source"] == str(tmp_path / "v/v1/_data")
    assert (tmp_path / "v/v1/_data/passwd").exists()  # seeded from the image
    assert got[2]["type"] == "tmpfs" and "size=4096" in got[2]["options"]


def test_spec_from_task(rootfs: Path) -> None:
    cs = {"Image": "x", "Command": ["sh"], "Env": ["A=1"], "ReadOnly": True,
          "Labels": {"l": "v"}, "CapabilityAdd": ["NET_ADMIN"], "CapabilityDrop": ["CAP_KILL"]}
    task = Task(id="t1", spec=TaskSpec(container_spec=cs, resources=Resources(
        limits=Limits(nano_cpus=1_500_000_000, memory_bytes=1 << 26, pids=9))))
    spec = build_spec(task=task, process=resolve({}, cs), rootfs=rootfs, hostname="h",
                      user=resolve_user(rootfs, ""), mounts=[], host_files={"/etc/hosts": "/h"},
                      cgroups_path="/p/c", available_caps=KNOWN_CAPS)
    assert spec["root"] == {"path": str(rootfs), "readonly": True}
    assert spec["process"]["env"][:2] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=h"]
    caps = spec["process"]["capabilities"]["bounding"]
    assert "CAP_NET_ADMIN" in caps and "CAP_KILL" not in caps
    res = spec["linux"]["resources"]
    assert res["cpu"] == {"quota": 150_000, "period": 100_000}
    assert res["memory"] == {"limit": 1 << 26} and res["pids"] == {"limit": 9}
    assert spec["linux"]["cgroupsPath"] == "/p/c" and "rlimits" not in spec["process"]
    assert {"type": "network"} in spec["linux"]["namespaces"]
    assert spec["annotations"]["l"] == "v"
    assert spec["annotations"]["com.docker.swarm.task.id"] == "t1"
    assert spec["mounts"][-1]["options"] == ["rbind", "rprivate", "ro"]


@pytest.mark.parametrize(("value", "number"), [
    (None, 15), ("", 15), ("SIGKILL", 9), ("kill", 9), ("USR1", 10), ("2", 2)])
def test_stop_signal(value: str | None, number: int) -> None:
    assert _signal(value) == number


def test_bad_stop_signal() -> None:
    with pytest.raises(ExecError, match="invalid stop signal"):
        _signal("SIGNOPE")
