#!/usr/bin/env python3
"""Real containers: seconds from `service create --replicas 30` to 30/30 running, and from
`service scale =100` to 100/100 running, for shoal (runc executor) and for Docker Swarm, in one
run on this machine, and the ratio (issue 4's target: shoal under a third of Docker's time).

Both sides get the same image (a busybox-static rootfs imported as `shoalbench/bb:1`), the same
service (`sleep 3600`, no network, no published port) and the same Engine API calls; both are
polled through their API socket every 50 ms for tasks whose state is running.

* Docker: the Debian docker.io engine. The bench starts its own dockerd (own data root, exec
  root, socket and pidfile) inside its own network namespace `shoalbench-docker`, so the
  machine's network is untouched, runs `swarm init` on the namespace's loopback, and removes
  all of it at the end. Needs `apt-get install docker.io`.
* Shoal: one shoald on 127.0.5.1 with `--executor runc` (shoal.dev.local), `swarm init`, the
  image imported through the API.

Usage: python bench/bench_containers.py [--only shoal|docker] [--first N] [--then M]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shoal.dev.local import Swarm
from shoal.dev.wait import wait_for

IMAGE = "shoalbench/bb:1"
NETNS = "shoalbench-docker"
POLL = 0.05


def rootfs_tar() -> bytes:
    """A busybox-static rootfs: /bin/busybox, the applets as symlinks, passwd/group."""
    buf = io.BytesIO()
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "etc", "tmp", "proc", "sys", "dev"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        tar.add("/bin/busybox", "bin/busybox")
        for name in applets:
            if name != "busybox":
                link = tarfile.TarInfo(f"bin/{name}")
                link.type, link.linkname = tarfile.SYMTYPE, "/bin/busybox"
                tar.addfile(link)
        for name, text in (("etc/passwd", "root:x:0:0:root:/:/bin/sh\n"), ("etc/group", "root:x:0:\n")):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text.encode()))
    return buf.getvalue()


def api(sock: Path, timeout: float = 60) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), base_url="http://engine",
                        timeout=timeout)


def import_image(sock: Path, data: bytes) -> None:
    with api(sock, 300) as c:
        r = c.post("/v1.41/images/create", params={"fromSrc": "-", "repo": "shoalbench/bb", "tag": "1"},
                   content=data, headers={"Content-Type": "application/x-tar"})
        r.raise_for_status()


def running(c: httpx.Client, service_id: str) -> int:
    tasks = c.get("/v1.41/tasks", params={"filters": f'{{"service":["{service_id}"]}}'}).json()
    return sum(1 for t in tasks if t["Status"]["State"] == "running" and t["DesiredState"] == "running")


def converge(c: httpx.Client, service_id: str, n: int, limit: float = 300) -> float:
    t0 = time.monotonic()
    while running(c, service_id) < n:
        if time.monotonic() - t0 > limit:
            raise SystemExit(f"{service_id}: not {n} running after {limit} s")
        time.sleep(POLL)
    return time.monotonic() - t0


def measure(sock: Path, first: int, then: int) -> tuple[float, float]:
    spec: dict[str, Any] = {
        "Name": "shoalbench-sleep",
        "TaskTemplate": {"ContainerSpec": {"Image": IMAGE, "Command": ["sleep", "3600"]}},
        "Mode": {"Replicated": {"Replicas": first}},
    }
    with api(sock) as c:
        t0 = time.monotonic()
        r = c.post("/v1.41/services/create", json=spec)
        r.raise_for_status()
        sid = r.json()["ID"]
        converge(c, sid, first)
        create_s = time.monotonic() - t0  # the create call included
        svc = c.get(f"/v1.41/services/{sid}").json()
        spec = svc["Spec"]
        spec["Mode"]["Replicated"]["Replicas"] = then
        t0 = time.monotonic()
        c.post(f"/v1.41/services/{sid}/update", params={"version": svc["Version"]["Index"]},
               json=spec).raise_for_status()
        converge(c, sid, then)
        scale_s = time.monotonic() - t0
        c.delete(f"/v1.41/services/{sid}")
        wait_for("containers gone", lambda: not c.get("/v1.41/tasks").json(), timeout=120, interval=0.5)
    return create_s, scale_s


def docker_side(root: Path, data: bytes, first: int, then: int) -> tuple[float, float]:
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise SystemExit("dockerd is not installed: apt-get install docker.io")
    sock = root / "docker.sock"
    subprocess.run(["ip", "netns", "add", NETNS], check=True)
    proc = None
    try:
        subprocess.run(["ip", "-n", NETNS, "link", "set", "lo", "up"], check=True)
        with open(root / "dockerd.log", "wb") as log:
            proc = subprocess.Popen(
                # nsenter, not `ip netns exec`: that remounts /sys and hides the cgroup mounts
                ["nsenter", f"--net=/run/netns/{NETNS}", dockerd, "--data-root", str(root / "data"),
                 "--exec-root", str(root / "exec"), "-H", f"unix://{sock}",
                 "--pidfile", str(root / "docker.pid"), "--cgroup-parent", "/shoalbench-docker"],
                stdout=log, stderr=log, start_new_session=True)

        def ping() -> bool:
            with api(sock) as c:
                return sock.exists() and c.get("/_ping").status_code == 200

        wait_for("dockerd", ping, timeout=60)
        env = {**os.environ, "DOCKER_HOST": f"unix://{sock}"}
        subprocess.run(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"], env=env, check=True,
                       capture_output=True)
        import_image(sock, data)
        return measure(sock, first, then)
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
        subprocess.run(["ip", "netns", "del", NETNS], check=False)
        for mnt in reversed(_mounts_under(root)):
            subprocess.run(["umount", "-l", mnt], check=False)
        for parent in Path("/sys/fs/cgroup").glob("*/shoalbench-docker"):
            for d in sorted(parent.rglob("*"), key=lambda p: -len(p.parts)) + [parent]:
                if d.is_dir():
                    d.rmdir()


def _mounts_under(root: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(str(root))]


def shoal_side(root: Path, data: bytes, first: int, then: int) -> tuple[float, float]:
    swarm = Swarm(root, base_ip="127.0.5", prefix="shoalbench")
    try:
        d = swarm.add(executor="runc")
        d.docker("swarm", "init", "--advertise-addr", d.ip)
        import_image(d.sock, data)
        return measure(d.sock, first, then)
    finally:
        swarm.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=("shoal", "docker"))
    parser.add_argument("--first", type=int, default=30)
    parser.add_argument("--then", type=int, default=100)
    args = parser.parse_args()
    data = rootfs_tar()
    results: dict[str, tuple[float, float]] = {}
    for side, fn in (("docker", docker_side), ("shoal", shoal_side)):
        if args.only and args.only != side:
            continue
        root = Path(tempfile.mkdtemp(prefix=f"shoalbench-{side}-"))
        try:
            results[side] = fn(root, data, args.first, args.then)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        c, s = results[side]
        print(f"{side:6}: create to {args.first}/{args.first} running {c:6.2f} s; "
              f"scale to {args.then}/{args.then} running {s:6.2f} s", flush=True)
    if len(results) == 2:
        (dc, ds), (sc, ss) = results["docker"], results["shoal"]
        print(f"ratio shoal/docker: create {sc / dc:.2f}, scale {ss / ds:.2f}, "
              f"total {(sc + ss) / (dc + ds):.2f} (target < 0.33)")


if __name__ == "__main__":
    main()
