"""Docker's default seccomp profile rendered for a container, and the sandbox build_spec writes:
rules that depend on capabilities follow the caps after CapabilityAdd/Drop; Privileges pick the
profile and no_new_privs."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from shoal.exec.containerspec import resolve
from shoal.exec.errors import TaskRejected
from shoal.exec.runc.seccomp import DEFAULT_PROFILE, render
from shoal.exec.runc.spec import User, build_spec, node_caps
from shoal.model.objects import Task
from shoal.model.privileges import DEFAULT_CAPS, KNOWN_CAPS
from shoal.model.seccomp import decode_profile
from shoal.model.specs import TaskSpec

EVERY = frozenset(KNOWN_CAPS)


def _allowed(section: dict[str, Any]) -> set[str]:
    """Syscalls allowed whatever their arguments."""
    return {n for r in section["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and "args" not in r
            for n in r["names"]}


def _rules_for(section: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [r for r in section["syscalls"] if name in r["names"]]


def test_default_profile_denies_with_eperm_on_this_arch() -> None:
    section = render(DEFAULT_PROFILE, DEFAULT_CAPS, machine="x86_64")
    assert section["defaultAction"] == "SCMP_ACT_ERRNO" and section["defaultErrnoRet"] == 1
    assert section["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    allowed = _allowed(section)
    assert {"read", "write", "execve", "fork", "arch_prctl"} <= allowed
    assert len(allowed) > 350
    for never in ("keyctl", "add_key", "io_uring_setup", "userfaultfd", "kexec_load",
                  "pivot_root", "swapon"):
        assert never not in allowed and not _rules_for(section, never)


def test_aarch64_gets_its_own_calls_and_arches() -> None:
    section = render(DEFAULT_PROFILE, DEFAULT_CAPS, machine="aarch64")
    assert section["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert {"set_tls", "cacheflush"} <= _allowed(section)
    assert "arch_prctl" not in _allowed(section)


@pytest.mark.parametrize("name", ["unshare", "mount", "setns", "umount2", "sethostname", "bpf"])
def test_sys_admin_calls_only_with_cap_sys_admin(name: str) -> None:
    assert name not in _allowed(render(DEFAULT_PROFILE, DEFAULT_CAPS, machine="x86_64"))
    with_admin = render(DEFAULT_PROFILE, (*DEFAULT_CAPS, "CAP_SYS_ADMIN"), machine="x86_64")
    assert name in _allowed(with_admin)


@pytest.mark.parametrize(("cap", "name"), [
    ("CAP_SYS_PTRACE", "kcmp"), ("CAP_SYS_TIME", "settimeofday"), ("CAP_SYS_BOOT", "reboot"),
    ("CAP_SYS_MODULE", "init_module"), ("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
    ("CAP_SYSLOG", "syslog"), ("CAP_SYS_NICE", "mbind")])
def test_each_cap_unlocks_its_calls(cap: str, name: str) -> None:
    assert name not in _allowed(render(DEFAULT_PROFILE, DEFAULT_CAPS, machine="x86_64"))
    assert name in _allowed(render(DEFAULT_PROFILE, (*DEFAULT_CAPS, cap), machine="x86_64"))


def test_chroot_follows_a_dropped_sys_chroot() -> None:
    assert "chroot" in _allowed(render(DEFAULT_PROFILE, DEFAULT_CAPS, machine="x86_64"))
    fewer = [c for c in DEFAULT_CAPS if c != "CAP_SYS_CHROOT"]
    assert "chroot" not in _allowed(render(DEFAULT_PROFILE, fewer, machine="x86_64"))


def test_clone_is_filtered_without_sys_admin() -> None:
    plain = render(DEFAULT_PROFILE, DEFAULT_CAPS, machine="x86_64")
    (clone,) = _rules_for(plain, "clone")
    assert clone["args"] == [{"index": 0, "value": 0x7E020000, "op": "SCMP_CMP_MASKED_EQ"}]
    (clone3,) = _rules_for(plain, "clone3")
    assert clone3 == {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
    admin = render(DEFAULT_PROFILE, (*DEFAULT_CAPS, "CAP_SYS_ADMIN"), machine="x86_64")
    assert all("args" not in r for r in _rules_for(admin, "clone"))
    assert all(r["action"] == "SCMP_ACT_ALLOW" for r in _rules_for(admin, "clone3"))


def test_personality_and_socket_have_argument_filters() -> None:
    section = render(DEFAULT_PROFILE, DEFAULT_CAPS, machine="x86_64")
    personas = sorted(r["args"][0]["value"] for r in _rules_for(section, "personality"))
    assert personas == [0, 8, 0x20000, 0x20008, 0xFFFFFFFF]
    sockets = [(r["args"][0]["op"], r["args"][0]["value"]) for r in _rules_for(section, "socket")]
    assert sockets == [("SCMP_CMP_LT", 38), ("SCMP_CMP_EQ", 39), ("SCMP_CMP_GT", 40)]


def test_custom_profile_rules_follow_caps_and_kernel() -> None:
    profile = decode_profile(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                     {"names": ["chroot"], "action": "SCMP_ACT_KILL",
                      "excludes": {"caps": ["CAP_SYS_CHROOT"]}},
                     {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO",
                      "includes": {"minKernel": "7.0"}}]}))
    section = render(profile, DEFAULT_CAPS, machine="x86_64", kernel=(6, 1))
    assert section == {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                       "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                     "errnoRet": 13}]}
    later = render(profile, (), machine="x86_64", kernel=(7, 2))
    assert [r["names"] for r in later["syscalls"]] == [["mkdir"], ["chroot"], ["ptrace"]]


# --- build_spec: the sandbox in config.json ------------------------------------------------

def _spec(tmp_path: Path, available: frozenset[str] = EVERY, **cs: Any) -> dict[str, Any]:
    container_spec = {"Image": "x", "Command": ["sh"], **cs}
    task = Task(id="t1", spec=TaskSpec(container_spec=container_spec))
    return build_spec(task=task, process=resolve({}, container_spec), rootfs=tmp_path,
                      hostname="h", user=User(), mounts=[], host_files={}, cgroups_path="/p/c",
                      available_caps=available)


def test_default_sandbox_is_dockers(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    caps = spec["process"]["capabilities"]
    assert caps == {k: list(DEFAULT_CAPS) for k in ("bounding", "effective", "permitted")}
    assert spec["process"]["noNewPrivileges"] is False
    assert "unshare" not in _allowed(spec["linux"]["seccomp"])


def test_cap_add_reaches_caps_and_seccomp(tmp_path: Path) -> None:
    spec = _spec(tmp_path, CapabilityAdd=["sys_admin"], CapabilityDrop=["CAP_CHOWN"])
    bounding = spec["process"]["capabilities"]["bounding"]
    assert "CAP_SYS_ADMIN" in bounding and "CAP_CHOWN" not in bounding
    assert "unshare" in _allowed(spec["linux"]["seccomp"])


def test_all_is_what_the_node_has(tmp_path: Path) -> None:
    node = EVERY - {"CAP_SYS_RESOURCE"}
    spec = _spec(tmp_path, node, CapabilityAdd=["ALL"])
    assert set(spec["process"]["capabilities"]["bounding"]) == node
    assert _spec(tmp_path, node, CapabilityDrop=["ALL"])["process"]["capabilities"]["bounding"] == []
    with pytest.raises(TaskRejected, match="CAP_SYS_RESOURCE"):
        _spec(tmp_path, node, CapabilityAdd=["SYS_RESOURCE"])


def test_privileges_pick_profile_and_no_new_privs(tmp_path: Path) -> None:
    spec = _spec(tmp_path, Privileges={"NoNewPrivileges": True,
                                       "Seccomp": {"Mode": "unconfined"}})
    assert spec["process"]["noNewPrivileges"] is True and "seccomp" not in spec["linux"]
    profile = base64.b64encode(b'{"defaultAction": "SCMP_ACT_LOG"}').decode()
    spec = _spec(tmp_path, Privileges={"Seccomp": {"Mode": "custom", "Profile": profile}})
    assert spec["linux"]["seccomp"] == {"defaultAction": "SCMP_ACT_LOG", "syscalls": []}


def test_a_stored_spec_shoal_cannot_honour_rejects_the_task(tmp_path: Path) -> None:
    with pytest.raises(TaskRejected, match="Privileges.SELinuxContext.User is not supported"):
        _spec(tmp_path, Privileges={"SELinuxContext": {"User": "u"}})


def test_node_caps_reads_this_process() -> None:
    assert node_caps() <= EVERY
