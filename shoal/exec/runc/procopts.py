"""The parts of a container's OCI process that come from shoal.model.containeropts: its init
(``--init``), supplementary groups (``--group``), rlimits (``--ulimit``), OOM score
adjustment and terminal (``-t``). Called by spec.build_spec.

What the kernel would refuse is refused here first, naming the option, so the task is rejected
with a sentence rather than a runc error: raising a hard rlimit above the node's own, or the
OOM score adjustment below it, needs CAP_SYS_RESOURCE, which shoald may lack (as on a host
where it runs in a container itself).
"""

from __future__ import annotations

import os
import resource
import shutil
from collections.abc import Collection
from pathlib import Path
from typing import Any

from shoal.exec.errors import TaskRejected
from shoal.model.containeropts import RLIMIT_INFINITY, ContainerOptions

__all__ = ["INIT_PATH", "check_oom_score_adj", "entries_of", "find_init", "init_args", "resolve_groups", "rlimits",
           "tty_env"]

INIT_PATH = "/sbin/docker-init"  # where Docker mounts its init, in every container
# Docker's docker-init is tini-static; Debian's tini package has it under that name
INIT_NAMES = ("docker-init", "tini-static")
INIT_DIRS = ("/usr/libexec/docker", "/usr/local/libexec/docker")


def find_init() -> str | None:
    """The node's static init binary: docker-init (Docker's) or tini-static, on PATH or in
    Docker's libexec directories; None when there is none."""
    for name in INIT_NAMES:
        found = shutil.which(name)
        if found:
            return os.path.realpath(found)
    for d in INIT_DIRS:
        path = Path(d) / "docker-init"
        if path.is_file() and os.access(path, os.X_OK):
            return str(path.resolve())
    return None


def init_args(args: list[str], init: str | None) -> tuple[list[str], list[dict[str, Any]]]:
    """``--init``: the init as PID 1 running the command (Docker's ``docker-init --``), and
    the read-only bind mount of the node's binary at /sbin/docker-init."""
    if init is None:
        raise TaskRejected("--init: this node has no init binary (docker-init or tini-static: "
                           "apt-get install tini)")
    mount = {"destination": INIT_PATH, "type": "bind", "source": init,
             "options": ["bind", "ro", "nosuid", "nodev"]}
    return [INIT_PATH, "--", *args], [mount]


def entries_of(rootfs: Path, rel: str) -> list[list[str]]:
    """The colon-separated entries of a file of the container, /etc/passwd or /etc/group (none
    if the path escapes its root through a symlink)."""
    path = rootfs / rel
    real = os.path.realpath(path)
    if not real.startswith(str(rootfs.resolve()) + "/"):
        return []
    try:
        with open(real, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip()]
    except OSError:
        return []


def resolve_groups(rootfs: Path, groups: Collection[str]) -> tuple[int, ...]:
    """``--group`` names and numbers as gids: names from the container's /etc/group (moby's
    GetAdditionalGroups), numbers as they are."""
    entries = [e for e in entries_of(rootfs, "etc/group") if len(e) >= 3 and e[2].isdigit()]
    out: list[int] = []
    for group in groups:
        entry = next((e for e in entries if e[0] == group), None)
        if entry is not None:
            gid = int(entry[2])
        elif group.isdigit():
            gid = int(group)
        else:
            raise TaskRejected(f"Unable to find group {group}: no matching entries in group "
                               "file")
        if gid not in out:
            out.append(gid)
    return tuple(out)


def _shown(value: int) -> str:
    return "unlimited" if value >= RLIMIT_INFINITY else str(value)


def rlimits(options: ContainerOptions, caps: Collection[str]) -> list[dict[str, Any]]:
    """The OCI rlimits; TaskRejected for a hard limit above the node's without
    CAP_SYS_RESOURCE (setrlimit would fail with EPERM in runc)."""
    out = []
    for u in options.ulimits:
        entry = u.rlimit
        if "CAP_SYS_RESOURCE" not in caps:
            own = resource.getrlimit(getattr(resource, entry["type"]))[1]
            own = RLIMIT_INFINITY if own == resource.RLIM_INFINITY else own
            if entry["hard"] > own:
                raise TaskRejected(f"--ulimit {u.name}: hard limit {_shown(entry['hard'])} is "
                                   f"above this node's ({_shown(own)}), which only "
                                   "CAP_SYS_RESOURCE could raise and shoald lacks")
        out.append(entry)
    return out


def check_oom_score_adj(value: int, caps: Collection[str]) -> None:
    """Lowering the OOM score adjustment below the node's needs CAP_SYS_RESOURCE."""
    if "CAP_SYS_RESOURCE" in caps:
        return
    try:
        own = int(Path("/proc/self/oom_score_adj").read_text())
    except (OSError, ValueError):
        return
    if value < own:
        raise TaskRejected(f"--oom-score-adj {value} is below this node's ({own}), which only "
                           "CAP_SYS_RESOURCE allows and shoald lacks")


def tty_env(env: list[str]) -> list[str]:
    """``-t``: TERM=xterm unless the container sets TERM (Docker's)."""
    return env if any(e.startswith("TERM=") for e in env) else [*env, "TERM=xterm"]
