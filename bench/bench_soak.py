#!/usr/bin/env python3
"""Soak: a swarm under churn for an hour (``--minutes N`` to shorten), then what it kept.

Five shoald on simulated hosts (prefix ``shoalsoak``, 172.31.24.x): 3 managers and a sim
worker, and a worker running real containers (runc) from the fabric's registry. In a loop:
services created (sim or runc, some on an overlay network, some publishing a port), updated,
scaled and removed; a node (a manager other than the first, or the runc worker) SIGKILLed and
started again; ``service logs -f`` followed for a few seconds. The first manager and the sim
worker are never killed, so their series cover the whole run.

Every ``--sample-minutes`` (default: a twelfth of the run) it samples each daemon: RSS, open
fds, threads, asyncio tasks (``NGoroutines`` of /info) and, on managers, etcd's RSS and its
database file. At the end it prints the series and the end/start ratio, removes every service
and network and prints what is left against the counts taken before the start: processes,
mounts, network namespaces, cgroups, and in each host's namespace nftables tables and links
(shoal.dev.leaks); the machine's own namespace must not change at all.

    flock -w 2700 /work/integ.lock python3 bench/bench_soak.py --minutes 12
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shoal.dev import hosts, leaks, procs
from shoal.dev.images import build_all
from shoal.dev.local import Daemon, Swarm
from shoal.dev.wait import wait_for
from shoal.exec.runc.mounts import mounts_under

PREFIX = "shoalsoak"
BASE_IP = "172.31.24"
NET = "soak-net"
MAX_SERVICES = 6
METRICS = ("rss_mb", "fds", "threads", "tasks", "etcd_rss_mb", "etcd_db_mb", "revision")


@dataclass
class Soak:
    swarm: Swarm
    managers: list[Daemon]
    sim: Daemon
    runc: Daemon
    image: str
    services: dict[str, str] = field(default_factory=dict)  # name -> "sim" | "runc"
    counter: int = 0
    ok: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    restarts: Counter[str] = field(default_factory=Counter)
    log_lines: int = 0

    @property
    def daemons(self) -> list[Daemon]:
        return [*self.managers, self.sim, self.runc]

    def cli(self) -> Daemon:
        """A running manager (the first one is never killed, but the others take turns)."""
        alive = [m for m in self.managers if m.proc is not None]
        return random.choice(alive)

    def docker(self, action: str, *args: str, timeout: float = 60) -> bool:
        try:
            done = self.cli().docker(*args, check=False, timeout=timeout)
        except subprocess.TimeoutExpired:
            done = None
        if done is not None and done.returncode == 0:
            self.ok[action] += 1
            return True
        self.failed[action] += 1
        return False


# -- the churn ---------------------------------------------------------------------------------

def create(s: Soak) -> None:
    if len(s.services) >= MAX_SERVICES:
        return remove(s)
    s.counter += 1
    name, kind = f"soak-{s.counter}", random.choice(["sim", "sim", "runc"])
    where = "==" if kind == "runc" else "!="
    args = ["service", "create", "--detach", "--name", name, "--constraint",
            f"node.hostname{where}{s.runc.hostname}", "--stop-grace-period", "2s",
            "--replicas", str(random.randint(1, 2 if kind == "runc" else 5))]
    if random.random() < 0.5:
        args += ["--network", NET]
    if random.random() < 0.3:
        args += ["--publish", f"{30000 + s.counter % 2000}:80"]
    if s.docker("create", *args, s.image):
        s.services[name] = kind
    return None


def update(s: Soak) -> None:
    if s.services:
        s.docker("update", "service", "update", "--detach", "--env-add", f"ROUND={s.counter}",
                 random.choice(list(s.services)))


def scale(s: Soak) -> None:
    if s.services:
        name = random.choice(list(s.services))
        top = 2 if s.services[name] == "runc" else 6
        s.docker("scale", "service", "scale", "--detach", f"{name}={random.randint(0, top)}")


def remove(s: Soak) -> None:
    if s.services:
        name = random.choice(list(s.services))
        if s.docker("remove", "service", "rm", name):
            del s.services[name]


def kill(s: Soak) -> None:
    victim = random.choice([*s.managers[1:], s.runc])
    victim.kill()
    time.sleep(random.uniform(2, 8))
    victim.start()
    s.restarts[victim.hostname] += 1
    s.ok["kill+restart"] += 1
    if victim in s.managers:  # back in the etcd membership before the next kill
        wait_for(f"{victim.hostname} a manager again", lambda: victim.api("/info")["Swarm"]
                 .get("ControlAvailable"), timeout=90, interval=0.5)


def follow_logs(s: Soak) -> None:
    names = [n for n, k in s.services.items() if k == "runc"]
    if not names:
        return
    m = s.cli()
    proc = subprocess.Popen(["docker", "service", "logs", "-f", random.choice(names)], env=m.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    time.sleep(random.uniform(3, 8))
    proc.terminate()
    out, _ = proc.communicate(timeout=15)
    s.log_lines += out.count(b"\n")
    s.ok["logs -f"] += 1


ACTIONS = [(create, 4), (update, 3), (scale, 3), (remove, 2), (kill, 1), (follow_logs, 1)]


# -- samples -----------------------------------------------------------------------------------

def _status(pid: int) -> dict[str, str]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def _etcd_pid(shoald: int) -> int | None:
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            st = _status(int(p.name))
            if st.get("PPid") == str(shoald) and st.get("Name") == "etcd":
                return int(p.name)
    return None


def sample(d: Daemon) -> dict[str, float]:
    if d.proc is None:
        return {}
    pid = d.proc.pid
    st = _status(pid)
    out: dict[str, float] = {"rss_mb": int(st.get("VmRSS", "0 kB").split()[0]) / 1024,
                             "threads": int(st.get("Threads", "0"))}
    # a daemon busy restarting: the sample goes without these
    with contextlib.suppress(Exception):
        out["fds"] = len(list(Path(f"/proc/{pid}/fd").iterdir()))
        out["tasks"] = d.api("/info").get("NGoroutines", -1)
    etcd = _etcd_pid(pid)
    if etcd is not None:
        out["etcd_rss_mb"] = int(_status(etcd).get("VmRSS", "0 kB").split()[0]) / 1024
        db = d.root / "data" / "swarm" / "etcd" / "member" / "snap" / "db"
        out["etcd_db_mb"] = db.stat().st_size / 2**20 if db.exists() else 0
        # the store's revision (about: the newest Version.Index): etcd compacts to 10,000 behind
        with contextlib.suppress(Exception):
            out["revision"] = max(o["Version"]["Index"] for kind in ("/nodes", "/tasks", "/services")
                                  for o in d.api(kind))
    return out


# -- leftovers ---------------------------------------------------------------------------------

def machine(root: Path) -> dict[str, list[str]]:
    """Ours on the machine: processes naming the root, mounts under it, namespaces and cgroups
    with the prefix; and the machine's own namespace's links and nftables tables."""
    cgroups = [f"{c.name}/{p.name}" for c in Path("/sys/fs/cgroup").iterdir() if c.is_dir()
               for p in c.iterdir() if p.is_dir() and p.name.startswith(PREFIX)]
    return {"processes": [str(p) for p in procs.matching(str(root) + "/")],
            "mounts": mounts_under(root), "namespaces": hosts.list_netns(PREFIX),
            "cgroups": cgroups, "machine links": leaks.links(None),
            "machine nft tables": leaks.nft_tables(None)}


def node_state(d: Daemon) -> dict[str, list[str]]:
    return leaks.leftovers(d.root, d.cgroup_parent, d.netns)


def diff(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, list[str]]:
    return {k: new for k, v in after.items() if (new := sorted(set(v) - set(before.get(k, []))))}


# -- the run -----------------------------------------------------------------------------------

def setup(swarm: Swarm) -> Soak:
    registry = swarm.start_registry()
    for image in build_all():
        registry.push(image)
    first = swarm.add()
    first.docker("swarm", "init", "--advertise-addr", first.ip, "--dispatcher-heartbeat", "1s")
    mtoken = first.docker("swarm", "join-token", "-q", "manager").stdout.strip()
    wtoken = first.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    managers = [first]
    for _ in range(2):
        m = swarm.add()
        m.docker("swarm", "join", "--token", mtoken, "--advertise-addr", m.ip, f"{first.ip}:2377")
        managers.append(m)
    sim, runc = swarm.add(), swarm.add(executor="runc")
    for w in (sim, runc):
        w.docker("swarm", "join", "--token", wtoken, "--advertise-addr", w.ip, f"{first.ip}:2377")
    wait_for("5 nodes ready", lambda: first.docker("node", "ls", "--format", "{{.Status}}")
             .stdout.split().count("Ready") == 5, timeout=90)
    first.docker("network", "create", "-d", "overlay", NET)
    return Soak(swarm, managers, sim, runc, f"{swarm.registry_addr}/shoal/web:latest")


def clear(s: Soak) -> None:
    m = s.managers[0]
    for d in s.daemons:
        if d.proc is None:
            d.start()
    names = m.docker("service", "ls", "-q").stdout.split()
    if names:
        m.docker("service", "rm", *names, check=False)
    wait_for("no task left", lambda: not m.api("/tasks"), timeout=120, interval=1)
    m.docker("network", "rm", NET, check=False)


def run(s: Soak, minutes: float, every: float) -> dict[str, list[tuple[float, dict[str, float]]]]:
    series: dict[str, list[tuple[float, dict[str, float]]]] = {d.hostname: [] for d in s.daemons}
    start = time.monotonic()
    end, next_sample = start + minutes * 60, start
    weights = [w for _, w in ACTIONS]
    while True:
        now = time.monotonic()
        if now >= next_sample:
            t = (now - start) / 60
            line = [f"t={t:5.1f} min"]
            for d in s.daemons:
                got = sample(d)
                series[d.hostname].append((t, got))
                line.append(f"{d.hostname.removeprefix(PREFIX + '-')}: " + " ".join(
                    f"{k}={got[k]:.1f}" for k in METRICS if k in got))
            print(" | ".join(line), flush=True)
            next_sample += every * 60
        if now >= end:
            return series
        action = random.choices([a for a, _ in ACTIONS], weights)[0]
        try:
            action(s)
        except (AssertionError, OSError, subprocess.SubprocessError, ValueError) as exc:
            s.failed[action.__name__] += 1
            print(f"  {action.__name__}: {str(exc).splitlines()[0][:160]}", flush=True)
        time.sleep(random.uniform(0.5, 2))


def report(s: Soak, series: dict[str, list[tuple[float, dict[str, float]]]]) -> None:
    print("\nactions ok:", dict(s.ok), " failed:", dict(s.failed), " restarts:", dict(s.restarts),
          f" log lines followed: {s.log_lines}")
    print("\nseries (one value per sample) and end/start:")
    for name, points in series.items():
        note = f" (restarted {s.restarts[name]}x: its values restart too)" if s.restarts[name] else ""
        print(f"{name}{note}")
        for k in METRICS:
            values = [p[k] for _, p in points if k in p]
            if len(values) >= 2:
                ratio = values[-1] / values[0] if values[0] else float("nan")
                print(f"  {k:12} {' '.join(f'{v:.1f}' for v in values)}  end/start {ratio:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--sample-minutes", type=float, default=0.0, help="default: a twelfth of the run")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    random.seed(args.seed)
    every = args.sample_minutes or max(0.5, args.minutes / 12)
    root = Path(tempfile.mkdtemp(prefix=PREFIX + "-"))
    hosts.remove_all(PREFIX)  # a crashed earlier run
    before = machine(root)
    swarm = Swarm(root, prefix=PREFIX, base_ip=BASE_IP, hosts=True)
    try:
        s = setup(swarm)
        node_before = {d.hostname: node_state(d) for d in s.daemons}
        series = run(s, args.minutes, every)
        report(s, series)
        clear(s)
        t0 = time.monotonic()
        left: dict[str, dict[str, list[str]]] = {}

        def nothing_left() -> bool:
            left.clear()
            for d in s.daemons:
                if found := diff(node_before[d.hostname], node_state(d)):
                    left[d.hostname] = found
            return not left
        try:
            wait_for("the nodes clean", nothing_left, timeout=60, interval=1)
            print(f"\nafter removing everything: nothing left on any node "
                  f"({time.monotonic() - t0:.1f} s)")
        except AssertionError:
            print(f"\nafter removing everything, left on the nodes: {left}")
    finally:
        swarm.close()
        after = diff(before, machine(root))
        print(f"after stopping the swarm, left on the machine: {after or 'nothing'}")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
