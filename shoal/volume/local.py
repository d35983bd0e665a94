"""Docker's ``local`` volume driver on this node's disk (moby ``volume/local``).

A volume is ``<root>/<name>/``: ``_data`` (what containers see, the Mountpoint) and
``volume.json`` (driver, labels, options, as the creator gave them). A directory without
``volume.json`` (made by an older shoald's executor) is a local volume without labels.

Options are the local driver's: ``type``, ``device`` and ``o`` are honoured as moby honours them,
by mounting ``device`` on ``_data`` (``mount -t TYPE -o O DEVICE``: tmpfs, a bind of a host
directory with ``type=none,o=bind``, nfs...) when a container first uses the volume, unmounted
when no container uses it any more and before removal; ``size`` needs a filesystem quota
support this driver does not have, so it is refused with moby's words, as on a host without it.
Mounts happen in the host's mount namespace (shoald's), never in its network setup.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from shoal.errors import InvalidArgument, ShoalError

__all__ = ["DRIVER", "LocalDriver", "is_mounted", "validate_name", "validate_options"]

DRIVER = "local"
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")  # moby names.RestrictedNamePattern
_NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
_VALID_OPTS = ("type", "o", "device", "size")
_MAX_STACKED = 8  # mounts unmount takes off one volume before it gives up
_MANDATORY = {"device": ("type",), "type": ("device",), "o": ("device", "type")}


def validate_name(name: str) -> None:
    """moby's local driver validateName, its words."""
    if len(name) == 1:
        raise InvalidArgument("volume name is too short, names should be at least two alphanumeric characters")
    if not _NAME.match(name):
        raise InvalidArgument(
            f'"{name}" includes invalid characters for a local volume name, only "{_NAME_CHARS}" '
            "are allowed. If you intended to pass a host directory, use absolute path")


def validate_options(opts: dict[str, str] | None) -> None:
    """moby's local driver validateOpts: known keys, their companions; ``size`` refused."""
    if not opts:
        return
    for key in opts:
        if key not in _VALID_OPTS:
            raise InvalidArgument(f'invalid option: "{key}"')
    if "size" in opts:
        # moby refuses a size when the volumes' filesystem has no project quotas; this driver
        # never sets quotas, so any size would be silently ignored.
        raise InvalidArgument("quota size requested but no quota support")
    for key, needed in _MANDATORY.items():
        if key in opts:
            for other in needed:
                if other not in opts:
                    raise InvalidArgument(f'missing required option: "{other}"')


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as \\ooo."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def is_mounted(path: Path) -> bool:
    """Whether something is mounted on ``path``, from mountinfo: ``os.path.ismount`` misses a
    bind of a directory of the same filesystem (same device), the case that matters most here."""
    target = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            return any(_unescape(line.split()[4]) == target for line in f if line.strip())
    except OSError:
        return os.path.ismount(target)


def _run(argv: list[str]) -> str:
    """Run mount(8)/umount(8); its error text (passwords in options masked), "" on success."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as exc:
        return str(exc)
    if proc.returncode == 0:
        return ""
    return re.sub(r"password=[^,\s]*", "password=********", proc.stderr.strip() or f"exit {proc.returncode}")


class LocalDriver:
    """The files and mounts of local volumes under ``root``; blocking calls (the service runs
    them in a thread, one at a time)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        return self.root / name / "_data"

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "_data").is_dir())

    def create(self, name: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o701)  # as /var/lib/docker/volumes: names not listable by others
        (self.root / name).mkdir(exist_ok=True)
        self.path(name).mkdir(exist_ok=True)

    def mount(self, name: str, opts: dict[str, str] | None) -> None:
        """Mount the volume's device on its data directory, unless it has none or is mounted."""
        opts = opts or {}
        if "type" not in opts and "device" not in opts:
            return
        target = self.path(name)
        if is_mounted(target):
            return
        argv = ["mount", "-t", opts.get("type", ""), *(["-o", opts["o"]] if opts.get("o") else []),
                opts.get("device", ""), str(target)]
        error = _run(argv)
        if error:
            raise ShoalError(f"failed to mount local volume: {error}")

    def unmount(self, name: str) -> None:
        target = self.path(name)
        for _ in range(_MAX_STACKED):  # every mount stacked there, the last made first
            if not is_mounted(target):
                return
            error = _run(["umount", str(target)])
            if error and is_mounted(target):
                raise ShoalError(f"error while unmounting volume {name}: {error}")

    def remove(self, name: str) -> None:
        """Unmount, then delete the volume's files: never what a mount still shows there (a
        bound host directory is on the same filesystem, so ``--one-file-system`` would not
        spare it)."""
        self.unmount(name)
        if is_mounted(self.path(name)):
            raise ShoalError(f"error while removing volume {name}: still mounted")
        shutil.rmtree(self.root / name)

    def size(self, name: str) -> int:
        """Bytes under the volume's data (0 for a mounted device's: not ours to count)."""
        top = self.path(name)
        if is_mounted(top):
            return 0
        total = 0
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if not os.path.ismount(os.path.join(dirpath, d))]
            for f in filenames:
                try:
                    total += os.lstat(os.path.join(dirpath, f)).st_size
                except OSError:
                    continue
        return total
