"""Process and disk faults on a local swarm: a manager's etcd member found and signalled, processes
paused together, a small loop-mounted filesystem filled to ENOSPC, and the figures each fault
test reports (seconds to the first accepted write, seconds to convergence)."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shoal.dev.linearizability import History
from shoal.dev.local import Daemon, leader
from shoal.dev.wait import wait_for


def etcd_pid(daemon: Daemon) -> int | None:
    """The daemon's etcd member, found by its command line (the binary, the daemon's root)."""
    marker = str(daemon.root).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"/etcd") and any(marker in a for a in argv):
            return int(proc.name)
    return None


@contextmanager
def stopped(*pids: int) -> Iterator[None]:
    """SIGSTOP every pid (shoald's, its etcd's), SIGCONT them all on the way out."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def first_write_after(history: History, t0: float) -> float | None:
    """Seconds from ``t0`` to the first acknowledged create or write invoked after it."""
    done = [op.ret for op in history.ops()
            if op.f in ("create", "write") and op.status == "ok" and op.call >= t0 and op.ret is not None]
    return min(done) - t0 if done else None


def timed_write(d: Daemon, name: str, timeout: float = 30.0) -> tuple[float, int, str]:
    """Create a service through ``d``: (seconds taken, HTTP status or 0 on no answer, message)."""
    body = {"Name": name, "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}},
            "Mode": {"Replicated": {"Replicas": 0}}}
    start = time.monotonic()
    try:
        with d.client(timeout) as c:
            r = c.post("/services/create", json=body)
        status, message = r.status_code, r.text.strip()
    except httpx.HTTPError as exc:
        status, message = 0, f"{type(exc).__name__}: {exc}"
    return time.monotonic() - start, status, message


def views(managers: list[Daemon]) -> dict[str, object]:
    """Each manager's services (name -> label v, replicas), as it serves them."""
    out: dict[str, object] = {}
    for d in managers:
        services = d.api("/services")
        out[d.hostname] = sorted((s["Spec"]["Name"], s["Spec"].get("Labels", {}).get("v"),
                                  s["Spec"]["Mode"].get("Replicated", {}).get("Replicas")) for s in services)
    return out


def converged(managers: list[Daemon], nodes: int) -> bool:
    """Every manager agrees on one leader, sees every node Ready and every manager reachable,
    and serves the same services."""
    try:
        if leader(managers) is None:
            return False
        for d in managers:
            listed = d.api("/nodes")
            if sum(n["Status"]["State"] == "ready" for n in listed) != nodes:
                return False
            if sum((n.get("ManagerStatus") or {}).get("Reachability") == "reachable" for n in listed) != len(managers):
                return False
        return len({repr(v) for v in views(managers).values()}) == 1
    except (httpx.HTTPError, OSError, ValueError):
        return False


def time_to_converge(managers: list[Daemon], nodes: int, since: float, timeout: float = 90) -> float:
    wait_for("the swarm converged", lambda: converged(managers, nodes), timeout=timeout, interval=0.25)
    return time.monotonic() - since


def running_tasks(d: Daemon, service: str) -> set[str]:
    tasks = d.api(f'/tasks?filters={{"service":["{service}"]}}')
    return {t["ID"] for t in tasks if t["Status"]["State"] == "running" and t["DesiredState"] == "running"}


@dataclass
class Figures:
    """Per fault: seconds to the first accepted write after it, and to convergence after healing."""

    rows: list[tuple[str, float | None, float | None, str]] = field(default_factory=list)

    def add(self, fault: str, first_write: float | None, converged: float | None, note: str = "") -> None:
        self.rows.append((fault, first_write, converged, note))

    def table(self) -> str:
        def f(x: float | None) -> str:
            return "-" if x is None else f"{x:.1f}"

        width = max([len(r[0]) for r in self.rows] + [5])
        lines = [f"{'fault':<{width}}  first write (s)  converged (s)  note"]
        lines += [f"{r[0]:<{width}}  {f(r[1]):>15}  {f(r[2]):>13}  {r[3]}" for r in self.rows]
        return "\n".join(lines)


@contextmanager
def loop_filesystem(image: Path, mountpoint: Path, size_mib: int) -> Iterator[Path]:
    """An ext4 filesystem of ``size_mib`` in the file ``image``, loop-mounted on ``mountpoint``;
    always unmounted and its loop device detached on the way out (the caller stops what uses it
    first)."""
    subprocess.run(["truncate", "-s", f"{size_mib}M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True, capture_output=True)
    device = subprocess.run(["losetup", "--find", "--show", str(image)], check=True, capture_output=True,
                            text=True).stdout.strip()
    try:
        mountpoint.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", device, str(mountpoint)], check=True, capture_output=True)
        try:
            yield mountpoint
        finally:
            if subprocess.run(["umount", str(mountpoint)], capture_output=True, check=False).returncode:
                subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, check=False)
    finally:
        subprocess.run(["losetup", "-d", device], capture_output=True, check=False)
        image.unlink(missing_ok=True)


def fill(directory: Path, name: str = "shoaltest-pft-fill") -> list[Path]:
    """Fill the filesystem holding ``directory`` until ENOSPC, again while what runs on it
    frees some (etcd drops its preallocated WAL file when it dies); return the filler files."""
    files: list[Path] = []
    for _ in range(10):
        files.append(_fill_once(directory / f"{name}-{time.monotonic_ns()}"))
        if free_bytes(directory) < (256 << 10):
            break
        time.sleep(0.5)
    return files


def _fill_once(path: Path) -> Path:
    directory = path.parent
    st = os.statvfs(directory)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with suppress(OSError):
            os.posix_fallocate(fd, 0, max(0, st.f_bfree * st.f_frsize - (1 << 20)))
        os.lseek(fd, 0, os.SEEK_END)
        chunk = b"\0" * 4096
        for _ in range(1 << 16):  # bounded: 256 MiB at most, far beyond what is left
            try:
                os.write(fd, chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
        with suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
    return path


def free_bytes(directory: Path) -> int:
    st = os.statvfs(directory)
    return st.f_bfree * st.f_frsize


def copy_out(src: Path, dst: Path) -> None:
    """Keep a file from a filesystem about to go away (etcd's log, for the report)."""
    with suppress(OSError):
        shutil.copyfile(src, dst)
