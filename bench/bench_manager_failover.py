#!/usr/bin/env python3
"""Leader failover of real managers: SIGKILL of the leader's shoald (its etcd dies with it).

Three managers (shoald processes with their etcd members, sim executor, heartbeat 1 s) on
127.0.4.1-3, started by this bench and always stopped. A client keeps creating services through
a follower's API socket (each request bounded by --attempt-timeout); per trial the bench prints
the seconds from the kill to

  * the first committed write: the first service create, issued after the kill, that succeeds;
  * a new leader: every live manager names the same other manager as Leader in ``node ls``;
  * the new leader at work: a service created after the kill has a running task (the new
    leader's orchestrator, scheduler and dispatcher did their part, and the agents found the
    new leader). Its services avoid the killed node: the new leader takes that node for alive
    until its grace period (6 heartbeats, as swarmkit) ends, so a task placed there would wait.

The killed manager is restarted on its data root and rejoins before the next trial.
Target (issue 3): failover < 3 s to the first committed write.

    python bench/bench_manager_failover.py [--trials 3] [--attempt-timeout 0.5]
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shoal.dev.local import Daemon, Swarm, leader
from shoal.dev.wait import wait_for

SPEC: dict[str, Any] = {"TaskTemplate": {"ContainerSpec": {"Image": "busybox"}}, "Mode": {"Replicated": {"Replicas": 1}}}


def reachable(d: Daemon) -> int:
    with d.client(5) as c:
        return sum(1 for n in c.get("/nodes").json()
                   if (n.get("ManagerStatus") or {}).get("Reachability") == "reachable")


class Writer(threading.Thread):
    """Creates services through one manager; records (issued, done, name) of each success."""

    def __init__(self, target: Daemon, attempt_timeout: float, avoid: str) -> None:
        super().__init__(daemon=True)
        self.target = target
        self.attempt_timeout = attempt_timeout
        self.ok: list[tuple[float, float, str]] = []
        self.stop = threading.Event()
        self.n = 0
        # Not on the node about to be killed: until its grace period ends (6 heartbeats, as
        # swarmkit) the new leader takes it for alive, and a task placed there waits for that.
        self.spec = {**SPEC, "TaskTemplate": {**SPEC["TaskTemplate"],
                                              "Placement": {"Constraints": [f"node.hostname!={avoid}"]}}}

    def run(self) -> None:
        deadline = time.monotonic() + 600
        while not self.stop.is_set() and time.monotonic() < deadline:
            self.n += 1
            name = f"fo{self.n}"
            issued = time.monotonic()
            try:
                with self.target.client(self.attempt_timeout) as c:
                    r = c.post("/services/create", json={**self.spec, "Name": name})
                if r.status_code == 201:
                    self.ok.append((issued, time.monotonic(), name))
            except (httpx.HTTPError, OSError):
                pass
            time.sleep(0.02)


def trial(daemons: list[Daemon], attempt_timeout: float) -> tuple[float, float, float]:
    lead = wait_for("a leader", lambda: leader(daemons), timeout=60)
    lead_name = lead.hostname
    follower = next(d for d in daemons if d is not lead)
    writer = Writer(follower, attempt_timeout, avoid=lead_name)
    writer.start()
    try:
        time.sleep(2)
        killed = time.monotonic()
        lead.kill(signal.SIGKILL)
        write = wait_for("a committed write", lambda: next(
            (done for issued, done, _ in writer.ok if issued > killed), None), timeout=60) - killed
        new = wait_for("a new leader", lambda: (n := leader(daemons)) is not None and n is not lead and n.hostname,
                   timeout=60)
        elected = time.monotonic() - killed
        first_after = next(name for issued, _, name in writer.ok if issued > killed)

        def running() -> bool:
            with follower.client(5) as c:
                tasks = c.get("/tasks", params={"filters": f'{{"service":["{first_after}"]}}'}).json()
            return any(t["Status"]["State"] == "running" for t in tasks)

        wait_for("a task of a post-kill service running", running, timeout=60, interval=0.05)
        working = time.monotonic() - killed
        print(f"  killed {lead_name}; new leader {new}: first committed write {write:.2f} s, "
              f"leader named {elected:.2f} s, its task running {working:.2f} s")
    finally:
        writer.stop.set()
        writer.join(timeout=30)
    lead.start()
    wait_for("three reachable managers", lambda: reachable(follower) == 3, timeout=90)
    time.sleep(6)  # etcd's strict reconfiguration check wants members up for 5 s
    return write, elected, working


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--attempt-timeout", type=float, default=0.5)
    parser.add_argument("--keep-logs", help="copy the daemons' logs into this directory")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="shoalbench-mfailover-"))
    swarm = Swarm(root, base_ip="127.0.4", prefix="shoalbench")
    try:
        first = swarm.add()
        first.docker("swarm", "init", "--advertise-addr", first.ip, "--dispatcher-heartbeat", "1s")
        token = first.docker("swarm", "join-token", "-q", "manager").stdout.strip()
        for _ in range(2):
            d = swarm.add()
            d.docker("swarm", "join", "--token", token, "--advertise-addr", d.ip, f"{first.ip}:2377", timeout=120)
        wait_for("three reachable managers", lambda: reachable(first) == 3, timeout=90)
        time.sleep(6)
        print(f"3 managers (shoald + etcd each) on 127.0.4.x; writes through a follower, "
              f"each attempt bounded by {args.attempt_timeout} s")
        results = [trial(swarm.daemons, args.attempt_timeout) for _ in range(args.trials)]
        for label, i in (("first committed write", 0), ("new leader named", 1), ("new leader at work", 2)):
            values = [r[i] for r in results]
            print(f"{label:24s} median {statistics.median(values):.2f} s "
                  f"(min {min(values):.2f}, max {max(values):.2f})")
        print("target: first committed write < 3 s after the leader is killed")
    finally:
        swarm.close()
        if args.keep_logs:
            Path(args.keep_logs).mkdir(parents=True, exist_ok=True)
            for d in swarm.daemons:
                shutil.copy(d.log, Path(args.keep_logs) / f"{d.hostname}.log")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
