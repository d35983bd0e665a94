"""Where a container's cgroups live and what they recorded (cgroup v1, hybrid or v2).

runc with ``linux.cgroupsPath = "<parent>/<cid>"`` (the cgroupfs driver) makes that directory in
every mounted hierarchy: ``/sys/fs/cgroup/<controller>/<parent>/<cid>`` on v1 and also under
``/sys/fs/cgroup/unified`` on a hybrid host. ``runc delete`` removes the container's directories
but never the parent. Stdlib only: the shim (shim.py) imports this module too, to read the OOM
count before anything deletes the cgroup.
"""

from __future__ import annotations

import os

__all__ = ["CGROUP_ROOT", "container_dirs", "hierarchies", "oom_killed", "read_file", "remove_dirs",
           "remove_parent"]

CGROUP_ROOT = "/sys/fs/cgroup"


def _unified() -> bool:
    return os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers"))


def hierarchies() -> list[str]:
    """The root directory of every mounted hierarchy (v1 controllers, name=systemd, unified)."""
    if _unified():
        return [CGROUP_ROOT]
    try:
        names = sorted(os.listdir(CGROUP_ROOT))
    except OSError:
        return []
    out = []
    for name in names:
        path = os.path.join(CGROUP_ROOT, name)
        # cpu,cpuacct style co-mounts show up as symlinks next to the real directory
        if os.path.isdir(path) and not os.path.islink(path):
            out.append(path)
    return out


def container_dirs(cgroups_path: str) -> list[str]:
    """The container's directory in every hierarchy (existing or not)."""
    rel = cgroups_path.strip("/")
    return [os.path.join(root, rel) for root in hierarchies()]


def read_file(path: str) -> str:
    """A cgroup (or /proc) file's text, "" if it is not there."""
    try:
        with open(path, encoding="ascii") as f:
            return f.read()
    except OSError:
        return ""


def _counter(text: str, key: str) -> int:
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key and parts[1].isdigit():
            return int(parts[1])
    return 0


def oom_killed(cgroups_path: str) -> bool:
    """Whether the kernel OOM-killed a process of this cgroup (v1 memory.oom_control, v2
    memory.events); False once the cgroup is gone."""
    rel = cgroups_path.strip("/")
    if _unified():
        return _counter(read_file(os.path.join(CGROUP_ROOT, rel, "memory.events")), "oom_kill") > 0
    v1 = read_file(os.path.join(CGROUP_ROOT, "memory", rel, "memory.oom_control"))
    if _counter(v1, "oom_kill") > 0:
        return True
    hybrid = read_file(os.path.join(CGROUP_ROOT, "unified", rel, "memory.events"))
    return _counter(hybrid, "oom_kill") > 0


def remove_dirs(cgroups_path: str) -> list[str]:
    """rmdir the container's directory in every hierarchy, children first; returns the ones
    that could not be removed (still holding a process)."""
    left = []
    for top in container_dirs(cgroups_path):
        if not os.path.isdir(top):
            continue
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: -len(w[0])):
            try:
                os.rmdir(dirpath)
            except FileNotFoundError:
                pass
            except OSError:
                left.append(dirpath)
    return left


def remove_parent(cgroup_parent: str) -> None:
    """rmdir the parent in every hierarchy if it is empty (other executors may share it)."""
    for path in container_dirs(cgroup_parent):
        try:
            os.rmdir(path)
        except OSError:
            pass
