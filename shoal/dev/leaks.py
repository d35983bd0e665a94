"""What a local daemon's containers leave on the machine, counted the way a user would look:
``runc list``, ``findmnt`` under its root, its cgroups, its network namespaces, the links in its
host's namespace (veths, overlay bridges and vxlans, the gateway bridge), its nftables tables
and its shims. Used by the cleanup tests and the soak bench (``bench/bench_soak.py``)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from shoal.dev import procs
from shoal.dev.hosts import nsenter
from shoal.exec.runc.mounts import mounts_under

__all__ = ["LINK_PREFIXES", "leftovers"]

CGROUP_ROOT = Path("/sys/fs/cgroup")
# Shoal's links in a node's namespace: task veths, overlay bridges and vxlans, gateway veths
# and bridge (shoal.net.links, gateway.py)
LINK_PREFIXES = ("shv", "shbr", "shvx", "shgw", "shoal_gw")


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


def containers(root: Path) -> list[str]:
    """``runc list`` of a daemon's runc root (its exec root's ``runc``)."""
    runc = shutil.which("runc")
    runc_root = root / "exec" / "runc"
    if runc is None or not runc_root.is_dir():
        return []
    listed = json.loads(_run([runc, "--root", str(runc_root), "list", "--format", "json"]) or "null")
    return sorted(str(c["id"])[:12] for c in listed or [])


def cgroups(parent: str) -> list[str]:
    """The cgroups under a daemon's ``--cgroup-parent``, in every hierarchy."""
    out = []
    top = parent.strip("/")
    for ctrl in sorted(CGROUP_ROOT.iterdir()) if CGROUP_ROOT.is_dir() else []:
        base = ctrl / top
        if base.is_dir():
            out += [f"{ctrl.name}/{top}/{p.name}" for p in base.iterdir() if p.is_dir()]
    return out


def namespaces(root: Path) -> list[str]:
    """The network namespace files a daemon made for its containers (tasks' and standalone)."""
    out = []
    for sub in ("netns", "localnet"):
        d = root / "exec" / sub
        out += [f"{sub}/{p.name}" for p in d.iterdir()] if d.is_dir() else []
    return sorted(out)


def links(netns: str | None) -> list[str]:
    """Shoal's links in a daemon's host namespace (``netns``; None: the machine's own)."""
    prefix = nsenter(netns) if netns else []
    text = _run([*prefix, "ip", "-o", "link", "show"])
    names = [line.split(":", 2)[1].strip().split("@")[0] for line in text.splitlines() if ":" in line]
    return sorted(n for n in names if n.startswith(LINK_PREFIXES))


def nft_tables(netns: str | None) -> list[str]:
    """nftables tables in a daemon's host namespace."""
    prefix = nsenter(netns) if netns else []
    text = _run([*prefix, "nft", "list", "tables"])
    return sorted(line.removeprefix("table ").strip() for line in text.splitlines() if line.strip())


def shims(root: Path) -> list[int]:
    """Container shims of a daemon (their command lines name its root)."""
    return [p for p in procs.matching(str(root) + "/") if _comm(p) == "shoal-shim"]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def leftovers(root: Path, cgroup_parent: str, netns: str | None, *,
              kernel: bool = True) -> dict[str, list[str]]:
    """Everything of a daemon's containers still on the machine, by kind (empty lists when
    nothing is left). ``kernel=False`` skips links and nftables tables (a daemon in the
    machine's own namespace shares them with everything else)."""
    found: dict[str, list[str]] = {
        "containers": containers(root),
        "mounts": mounts_under(root),
        "cgroups": cgroups(cgroup_parent),
        "namespaces": namespaces(root),
        "shims": [str(p) for p in shims(root)],
    }
    if kernel:
        found["links"] = links(netns)
        found["nft tables"] = nft_tables(netns)
    return found
