"""What a stopped local daemon can leave behind, and its removal: runc containers (they outlive
shoald on purpose, as with dockerd's live-restore), overlay mounts under its roots, and the
cgroups named after a prefix. Used by ``shoal dev down`` and by the tests' swarms."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from shoal.exec.runc.mounts import mounts_under

__all__ = ["mounts_under", "remove_cgroups", "remove_containers", "umount_under"]

CGROUP_ROOT = Path("/sys/fs/cgroup")
Echo = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def remove_containers(runc_root: Path, echo: Echo = _quiet) -> None:
    """``runc delete --force`` every container in a runc state dir."""
    runc = shutil.which("runc")
    if not runc_root.is_dir() or runc is None:
        return
    listed = subprocess.run([runc, "--root", str(runc_root), "list", "-q"], capture_output=True,
                            text=True, timeout=30, check=False)
    for cid in listed.stdout.split():
        subprocess.run([runc, "--root", str(runc_root), "delete", "--force", cid],
                       capture_output=True, timeout=30, check=False)
        echo(f"deleted container {cid}")


def umount_under(root: Path, echo: Echo = _quiet) -> None:
    for _ in range(3):  # a mount can hide another on the same point
        points = mounts_under(root)
        if not points:
            return
        for point in points:
            done = subprocess.run(["umount", point], capture_output=True, timeout=30, check=False)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True, timeout=30,
                               check=False)
            echo(f"unmounted {point}")


def remove_cgroups(prefix: str, echo: Echo = _quiet) -> None:
    """rmdir (children first) the empty cgroups whose top directory starts with ``prefix``, in
    every hierarchy; a cgroup that still holds a process refuses, and is left alone."""
    if not CGROUP_ROOT.is_dir():
        return
    for controller in sorted(CGROUP_ROOT.iterdir()):
        try:
            tops = [p for p in controller.iterdir() if p.is_dir() and p.name.startswith(prefix)]
        except OSError:
            continue
        for top in tops:
            for dirpath, _dirs, _files in os.walk(top, topdown=False):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass
            if not top.exists():
                echo(f"removed cgroup {top}")
