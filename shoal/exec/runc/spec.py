"""The OCI runtime spec (config.json) for one task's container, as Docker would write it.

The process comes from shoal.exec.containerspec (image config merged with the ContainerSpec);
the user is resolved against the container's own /etc/passwd and /etc/group; Mounts (bind,
volume, tmpfs) are checked and turned into OCI mounts; limits become cgroup resources under
``cgroupsPath = <cgroup_parent>/<cid>``. The container gets its own network namespace (runc
makes it and brings ``lo`` up) and bind mounts of the /etc/hosts, /etc/hostname and
/etc/resolv.conf written into its directory (hostfiles.py). The ContainerSpec's other options
(shoal.model.containeropts: init, groups, ulimits, OOM score, terminal, sysctls) are set as
procopts.py makes them.
The sandbox is Docker's: its 14 default capabilities with the service's CapabilityAdd/Drop, its
seccomp profile (shoal.exec.runc.seccomp) unless Privileges says otherwise, no_new_privs only
when Privileges.NoNewPrivileges asks for it (shoal.model.privileges).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shoal.errors import InvalidArgument
from shoal.exec.containerspec import Process
from shoal.exec.errors import TaskRejected
from shoal.exec.runc import procopts, seccomp
from shoal.exec.runc.specmounts import build_mounts, named_volumes, remount_volumes
from shoal.model import privileges
from shoal.model.containeropts import ContainerOptions, container_options
from shoal.model.objects import Task

__all__ = ["User", "build_mounts", "build_spec", "named_volumes", "node_caps", "options_of", "remount_volumes",
           "resolve_user"]

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MASKED = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
          "/sys/firmware", "/sys/devices/virtual/powercap"]
READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
CPU_PERIOD = 100_000  # microseconds, Docker's
BASE_MOUNTS: list[dict[str, Any]] = [
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec",
                                                                           "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
]


@dataclass(frozen=True, slots=True)
class User:
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = field(default=())


def resolve_user(rootfs: Path, user: str) -> User:
    """"name", "uid", "name:group" or "uid:gid" as Docker accepts; names from the container's
    /etc/passwd and /etc/group, numbers pass through."""
    if not user:
        user = "0"
    name, _, group = user.partition(":")
    passwd = [e for e in procopts.entries_of(rootfs, "etc/passwd") if len(e) >= 4]
    groups = [e for e in procopts.entries_of(rootfs, "etc/group") if len(e) >= 3]
    entry = next((e for e in passwd if (e[2] if name.isdigit() else e[0]) == name), None)
    if name.isdigit():
        uid = int(name)
        gid = int(entry[3]) if entry and entry[3].isdigit() else 0
    elif entry is None or not entry[2].isdigit():
        raise TaskRejected(f"unable to find user {name}: no matching entries in passwd file")
    else:
        uid, gid = int(entry[2]), int(entry[3]) if entry[3].isdigit() else 0
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            g = next((e for e in groups if e[0] == group and e[2].isdigit()), None)
            if g is None:
                raise TaskRejected(f"unable to find group {group}: no matching entries in "
                                   "group file")
            gid = int(g[2])
    extra: list[int] = []
    if entry is not None and not group:
        members = [e for e in groups if len(e) >= 4 and entry[0] in e[3].split(",")]
        extra = [int(e[2]) for e in members if e[2].isdigit() and int(e[2]) != gid]
    return User(uid, gid, tuple(extra))


@functools.cache
def node_caps() -> frozenset[str]:
    """The capabilities shoald itself has, all a container can get (moby caps.Current: the
    effective set; a host may lack some, e.g. CAP_SYS_RESOURCE here)."""
    with open("/proc/self/status", encoding="utf-8", errors="replace") as f:
        line = next((x for x in f if x.startswith("CapEff:")), "CapEff: 0")
    bits = int(line.split()[1], 16)
    return frozenset(c for i, c in enumerate(privileges.KNOWN_CAPS) if bits >> i & 1)


def _sandbox(container_spec: dict[str, Any],
             available: Collection[str] | None) -> tuple[list[str], dict[str, Any] | None, bool]:
    """The container's capabilities, its seccomp section (None: unconfined) and whether it runs
    with no_new_privs, as Docker makes them from the service's caps and Privileges."""
    try:
        box = privileges.sandbox(container_spec)
        caps = privileges.effective_caps(box.cap_add, box.cap_drop,
                                         available=node_caps() if available is None else available)
    except InvalidArgument as exc:  # a spec stored before the control API checked these
        raise TaskRejected(str(exc)) from exc
    profile = None
    if box.seccomp != "unconfined":  # its rules follow the caps after add and drop
        profile = seccomp.render(box.seccomp_profile or seccomp.DEFAULT_PROFILE, caps)
    return list(caps), profile, box.no_new_privileges


def _annotations(task: Task, container_spec: dict[str, Any]) -> dict[str, str]:
    out = {str(k): str(v) for k, v in (container_spec.get("Labels") or {}).items()}
    out.update({"com.docker.swarm.task.id": task.id, "com.docker.swarm.task.name": task.name,
                "com.docker.swarm.service.id": task.service_id,
                "com.docker.swarm.node.id": task.node_id})
    return out


def _resources(task: Task) -> dict[str, Any]:
    res: dict[str, Any] = {"devices": [{"allow": False, "access": "rwm"}]}
    limits = task.spec.resources.limits if task.spec.resources else None
    if limits is None:
        return res
    if limits.nano_cpus:
        res["cpu"] = {"quota": max(1000, limits.nano_cpus * CPU_PERIOD // 1_000_000_000),
                      "period": CPU_PERIOD}
    if limits.memory_bytes:
        res["memory"] = {"limit": limits.memory_bytes}
    if limits.pids:
        res["pids"] = {"limit": limits.pids}
    return res


def options_of(container_spec: dict[str, Any]) -> ContainerOptions:
    """The ContainerSpec's options (shoal.model.containeropts), or TaskRejected."""
    try:
        return container_options(container_spec)
    except InvalidArgument as exc:  # a spec stored before the control API checked these
        raise TaskRejected(str(exc)) from exc


def _process(process: Process, options: ContainerOptions, *, hostname: str, user: User,
             rootfs: Path, caps: Collection[str], available: Collection[str],
             init: Callable[[], str | None]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The OCI process and the mounts it needs (the init's)."""
    env = list(process.env)
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, DEFAULT_PATH)
    env.insert(1, f"HOSTNAME={hostname}")
    if options.tty:
        env = procopts.tty_env(env)
    args, mounts = list(process.args), list[dict[str, Any]]()
    if options.init:
        args, mounts = procopts.init_args(args, init())
    gids = [*user.additional_gids]
    gids += [g for g in procopts.resolve_groups(rootfs, options.groups) if g not in gids]
    user_obj: dict[str, Any] = {"uid": user.uid, "gid": user.gid}
    if gids:
        user_obj["additionalGids"] = gids
    out: dict[str, Any] = {
        "terminal": options.tty, "user": user_obj, "args": args, "env": env,
        "cwd": process.cwd or "/",
        "capabilities": {k: list(caps) for k in ("bounding", "effective", "permitted")},
    }
    if options.oom_score_adj:  # else the node's, inherited: 0 cannot be told from unset
        procopts.check_oom_score_adj(options.oom_score_adj, available)
        out["oomScoreAdj"] = options.oom_score_adj
    limits = procopts.rlimits(options, available)
    if limits:
        out["rlimits"] = limits
    return out, mounts


def build_spec(*, task: Task, process: Process, rootfs: Path, hostname: str, user: User,
               mounts: list[dict[str, Any]], host_files: dict[str, str],
               cgroups_path: str, netns: str | None = None,
               available_caps: Collection[str] | None = None,
               container_spec: dict[str, Any] | None = None,
               init: Callable[[], str | None] = procopts.find_init) -> dict[str, Any]:
    """config.json as a dict; ``netns``: the network namespace to join (the container's own
    overlay sandbox), else a new one with only loopback; ``available_caps``: what ``ALL`` and
    CapabilityAdd may give (default: `node_caps`); ``container_spec``: the task's with its
    templates expanded (default: the task's own); ``init``: finds the node's init binary."""
    if container_spec is None:
        container_spec = task.spec.container_spec or {}
    available = node_caps() if available_caps is None else available_caps
    options = options_of(container_spec)
    readonly = bool(container_spec.get("ReadOnly"))
    caps, seccomp_section, no_new_privs = _sandbox(container_spec, available)
    proc, init_mounts = _process(process, options, hostname=hostname, user=user, rootfs=rootfs,
                                 caps=caps, available=available, init=init)
    proc["noNewPrivileges"] = no_new_privs
    ns: list[dict[str, str]] = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")]
    if netns:
        ns[-1]["path"] = netns
    files = [{"destination": dest, "type": "bind", "source": src,
              "options": ["rbind", "rprivate", *(["ro"] if readonly else [])]}
             for dest, src in host_files.items()]
    linux: dict[str, Any] = {
        "namespaces": ns, "resources": _resources(task), "cgroupsPath": cgroups_path,
        "maskedPaths": MASKED, "readonlyPaths": READONLY,
    }
    if options.sysctls:
        linux["sysctl"] = dict(options.sysctls)
    if seccomp_section is not None:
        linux["seccomp"] = seccomp_section
    return {
        "ociVersion": "1.0.2",
        "process": proc,
        "root": {"path": str(rootfs), "readonly": readonly},
        "hostname": hostname,
        "mounts": [*BASE_MOUNTS, *mounts, *init_mounts, *files],
        "annotations": _annotations(task, container_spec),
        "linux": linux,
    }
