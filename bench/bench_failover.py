#!/usr/bin/env python3
"""Seconds from SIGKILL of a worker's shoald to its tasks' replacements being assigned to other
nodes, and to them running (after the default 5 s restart delay), with a 1 s heartbeat.

Real shoald processes (1 manager, 3 workers, sim executor) on 127.0.4.x. Target from the issue:
replacements within 3 heartbeats + 1 s = 4 s. Runs ROUNDS kills and prints each and the median.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shoal.dev.local import Daemon, Swarm  # noqa: E402
from shoal.dev.wait import wait_for  # noqa: E402

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3


def tasks(manager: Daemon, service_id: str) -> list[dict]:  # type: ignore[type-arg]
    return manager.api(f'/tasks?filters={{"service":["{service_id}"]}}')  # type: ignore[no-any-return]


def main(swarm: Swarm) -> None:
    manager = swarm.add()
    manager.docker("swarm", "init", "--advertise-addr", manager.ip, "--dispatcher-heartbeat", "1s")
    manager.docker("node", "update", "--availability", "drain", manager.hostname)
    token = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    workers = [swarm.add() for _ in range(3)]
    for w in workers:
        w.docker("swarm", "join", "--token", token, "--advertise-addr", w.ip, f"{manager.ip}:2377")
    manager.docker("service", "create", "-d", "--name", "shoalbench-web", "--replicas", "6", "busybox:latest")
    service_id = manager.api("/services/shoalbench-web")["ID"]
    assigned_s, running_s = [], []
    for round_ in range(ROUNDS):
        wait_for("6 running", lambda: sum(t["Status"]["State"] == "running" and t["DesiredState"] == "running"
                                          for t in tasks(manager, service_id)) == 6, timeout=60)
        victim = workers[round_ % len(workers)]
        victim_id = manager.api(f"/nodes/{victim.hostname}")["ID"]
        slots = {t["Slot"] for t in tasks(manager, service_id)
                 if t["NodeID"] == victim_id and t["DesiredState"] == "running"}
        victim.kill()
        t0 = time.monotonic()

        def moved(state: str) -> bool:
            fresh = [t for t in tasks(manager, service_id) if t["Slot"] in slots and t["NodeID"] != victim_id
                     and t["DesiredState"] in ("ready", "running") and t["Status"]["State"] in state.split()]
            return len({t["Slot"] for t in fresh}) == len(slots)

        wait_for("replacements assigned", lambda: moved("assigned accepted preparing ready starting running"),
                 timeout=30, interval=0.02)
        assigned_s.append(time.monotonic() - t0)
        wait_for("replacements running", lambda: moved("running"), timeout=30, interval=0.05)
        running_s.append(time.monotonic() - t0)
        print(f"round {round_ + 1}: {len(slots)} tasks reassigned in {assigned_s[-1]:.2f} s, "
              f"running in {running_s[-1]:.2f} s", flush=True)
        victim.start()
        wait_for("victim back", lambda: manager.api(f"/nodes/{victim.hostname}")["Status"]["State"] == "ready")
    median = statistics.median(assigned_s)
    print(f"kill -> replacements assigned elsewhere: median {median:.2f} s "
          f"(target 3 heartbeats + 1 s = 4.00 s; ratio {median / 4:.2f})")
    print(f"kill -> replacements running: median {statistics.median(running_s):.2f} s "
          "(includes the default 5 s restart delay)")


if __name__ == "__main__":
    tmp = Path(tempfile.mkdtemp(prefix="shoalbench-"))
    s = Swarm(tmp, base_ip="127.0.4", prefix="shoalbench")
    try:
        main(s)
    finally:
        s.close()
        shutil.rmtree(tmp, ignore_errors=True)
