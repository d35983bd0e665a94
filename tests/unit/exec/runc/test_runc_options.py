"""The ContainerSpec's options in the container the runc executor builds (issue 15): config.json
(init, groups, rlimits, OOM score, terminal, sysctls), the host files (resolv.conf with the
embedded DNS and the service's --dns, /etc/hosts with --host) and the mount options. No root."""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any

import pytest

from shoal.exec.containerspec import resolve
from shoal.exec.errors import TaskRejected
from shoal.exec.runc import hostfiles, procopts
from shoal.exec.runc.spec import build_mounts, build_spec, resolve_user
from shoal.model.containeropts import DNSConfig, HostEntry, container_options
from shoal.model.objects import Task
from shoal.model.privileges import KNOWN_CAPS
from shoal.model.specs import TaskSpec
from shoal.volume import VolumeService

NO_SYS_RESOURCE = frozenset(KNOWN_CAPS) - {"CAP_SYS_RESOURCE"}
HOST = "nameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch corp.example lab.example\n" \
       "options rotate timeout:2\n"


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nwww:x:33:33::/:/bin/sh\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nwww:x:33:\nstaff:x:50:\naudio:x:29:www\n")
    return tmp_path


def _spec(rootfs: Path, *, user: str = "", available: frozenset[str] = frozenset(KNOWN_CAPS),
          init: str | None = "/usr/bin/tini-static", **cs: Any) -> dict[str, Any]:
    cs = {"Image": "x", "Command": ["sh"], **cs}
    task = Task(id="t1", spec=TaskSpec(container_spec=cs))
    return build_spec(task=task, process=resolve({}, cs), rootfs=rootfs, hostname="h",
                      user=resolve_user(rootfs, user), mounts=[], host_files={},
                      cgroups_path="/p/c", available_caps=available, init=lambda: init)


def test_no_options_no_changes(rootfs: Path) -> None:
    proc = _spec(rootfs)["process"]
    assert proc["terminal"] is False and proc["args"] == ["sh"]
    assert "oomScoreAdj" not in proc and "rlimits" not in proc  # the node's, inherited
    assert not any(e.startswith("TERM=") for e in proc["env"])


def test_init_runs_the_command_as_pid_1(rootfs: Path) -> None:
    spec = _spec(rootfs, Init=True)
    assert spec["process"]["args"] == ["/sbin/docker-init", "--", "sh"]
    mount = next(m for m in spec["mounts"] if m["destination"] == "/sbin/docker-init")
    assert mount["source"] == "/usr/bin/tini-static" and "ro" in mount["options"]
    with pytest.raises(TaskRejected, match="--init: this node has no init binary"):
        _spec(rootfs, Init=True, init=None)


def test_groups_by_name_and_number_after_the_users(rootfs: Path) -> None:
    user = _spec(rootfs, user="www", Groups=["staff", "1234", "audio"])["process"]["user"]
    assert user == {"uid": 33, "gid": 33, "additionalGids": [29, 50, 1234]}
    with pytest.raises(TaskRejected, match="Unable to find group nope: no matching entries"):
        _spec(rootfs, Groups=["nope"])


def test_tty_sets_terminal_and_term(rootfs: Path) -> None:
    proc = _spec(rootfs, TTY=True)["process"]
    assert proc["terminal"] is True and "TERM=xterm" in proc["env"]
    own = _spec(rootfs, TTY=True, Env=["TERM=vt100"])["process"]["env"]
    assert "TERM=vt100" in own and "TERM=xterm" not in own


def test_ulimits_oom_and_sysctls(rootfs: Path) -> None:
    spec = _spec(rootfs, OomScoreAdj=-100, Sysctls={"net.ipv4.ip_forward": "1"},
                 Ulimits=[{"Name": "nofile", "Soft": 100, "Hard": 200},
                          {"Name": "core", "Soft": -1, "Hard": -1}])
    assert spec["process"]["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
        {"type": "RLIMIT_CORE", "soft": 2**64 - 1, "hard": 2**64 - 1}]
    assert spec["process"]["oomScoreAdj"] == -100
    assert spec["linux"]["sysctl"] == {"net.ipv4.ip_forward": "1"}


def test_what_the_node_cannot_grant_is_rejected_naming_it(rootfs: Path) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY:
        with pytest.raises(TaskRejected, match=r"--ulimit nofile: hard limit \d+ is above this "
                                               r"node's .*CAP_SYS_RESOURCE"):
            _spec(rootfs, available=NO_SYS_RESOURCE,
                  Ulimits=[{"Name": "nofile", "Soft": 1, "Hard": hard + 1}])
    _spec(rootfs, available=NO_SYS_RESOURCE, Ulimits=[{"Name": "nofile", "Soft": 1, "Hard": 2}])
    own = int(Path("/proc/self/oom_score_adj").read_text())
    if own > -1000:
        with pytest.raises(TaskRejected, match="--oom-score-adj .* is below this node's"):
            _spec(rootfs, available=NO_SYS_RESOURCE, OomScoreAdj=own - 1)
    with pytest.raises(TaskRejected, match="is not in a separate kernel namespace"):
        _spec(rootfs, Sysctls={"vm.swappiness": "1"})  # stored before the control API checked


def test_find_init_prefers_docker_init(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("docker-init", "tini-static"):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert procopts.find_init() == str(tmp_path / "docker-init")
    (tmp_path / "docker-init").unlink()
    assert procopts.find_init() == str(tmp_path / "tini-static")


# --- host files ------------------------------------------------------------------------------

def test_resolv_conf_on_networks_keeps_the_embedded_dns() -> None:
    plain = hostfiles.resolv_conf(HOST, None, embedded=True)
    assert plain.splitlines()[:3] == ["nameserver 127.0.0.11", "search corp.example lab.example",
                                      "options ndots:0"]
    assert "# ExtServers: [192.0.2.53 192.0.2.54]" in plain
    asked = hostfiles.resolv_conf(HOST, DNSConfig(("9.9.9.9",), ("example.com",),
                                                  ("ndots:3", "timeout:1")), embedded=True)
    assert asked.splitlines()[:3] == ["nameserver 127.0.0.11", "search example.com",
                                      "options ndots:3 timeout:1"]
    assert "# ExtServers: [9.9.9.9]" in asked
    no_search = hostfiles.resolv_conf(HOST, DNSConfig(search=(".",)), embedded=True)
    assert "search" not in no_search and "options ndots:0" in no_search


def test_resolv_conf_on_loopback_only() -> None:
    assert hostfiles.resolv_conf(HOST, None, embedded=False) == HOST
    asked = hostfiles.resolv_conf("# a comment\n" + HOST, DNSConfig(("9.9.9.9",), (),
                                                                   ("ndots:2",)),
                                  embedded=False)
    assert asked == ("# a comment\nnameserver 9.9.9.9\nsearch corp.example lab.example\n"
                     "options ndots:2\n")


def test_hosts_file_has_the_services_hosts(tmp_path: Path) -> None:
    files = hostfiles.write_host_files(tmp_path, "web-1", addresses=["10.0.1.5/24"],
                                       hosts=(HostEntry("10.0.0.9", ("db", "db.local")),))
    lines = Path(files["/etc/hosts"]).read_text().splitlines()
    assert lines[2:] == ["10.0.0.9\tdb db.local", "10.0.1.5\tweb-1"]
    assert Path(files["/etc/resolv.conf"]).read_text().startswith("nameserver 127.0.0.11\n")
    assert set(files) == {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}


def test_options_from_a_spec_reach_the_host_files(tmp_path: Path) -> None:
    opts = container_options({"DNSConfig": {"Nameservers": ["1.1.1.1"]},
                              "Hosts": ["192.0.2.1 gw"]})
    files = hostfiles.write_host_files(tmp_path, "h", addresses=[], dns=opts.dns,
                                       hosts=opts.hosts)
    assert "192.0.2.1\tgw" in Path(files["/etc/hosts"]).read_text()
    assert "# ExtServers: [1.1.1.1]" in Path(files["/etc/resolv.conf"]).read_text()


# --- mounts ----------------------------------------------------------------------------------

def test_mount_options(rootfs: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (rootfs / "data/sub").mkdir(parents=True)

    def mounts(*ms: dict[str, Any]) -> list[dict[str, Any]]:
        return build_mounts({"Mounts": list(ms)}, volumes=VolumeService(tmp_path / "v"),
                            anon_root=tmp_path / "a", rootfs=rootfs)

    got = mounts(
        {"Type": "bind", "Source": str(src), "Target": "/a", "ReadOnly": True,
         "BindOptions": {"CreateMountpoint": True, "NonRecursive": True,
                         "ReadOnlyForceRecursive": True, "Propagation": "rslave"}},
        {"Type": "volume", "Source": "v1", "Target": "/data",
         "VolumeOptions": {"Subpath": "sub"}},
        {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"Options": [["noexec"],
                                                                        ["uid", "1000"]]}})
    assert src.is_dir() and got[0]["options"] == ["bind", "rslave", "rro"]
    assert got[1]["source"] == str(tmp_path / "v/v1/_data/sub")
    assert got[2]["options"][-2:] == ["noexec", "uid=1000"]
    with pytest.raises(TaskRejected, match="cannot access path .*/nope: no such file"):
        mounts({"Type": "volume", "Source": "v1", "Target": "/data",
                "VolumeOptions": {"Subpath": "nope"}})
