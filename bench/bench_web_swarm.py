"""bench_web.py --daemons: the same page measured on a real swarm of sim shoalds on loopback.

The daemons start eight at a time, join through the docker CLI, and are always stopped (the
swarm's ``close``), their roots removed. See bench_web.py for what is printed.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from shoal.dev.local import Daemon, Swarm
from shoal.dev.wait import wait_for

BASE_IP = "127.0.106"
PREFIX = "shoalbench-web"


def _running(manager: Daemon) -> int:
    tasks = manager.api('/tasks?filters={"desired-state":["running"]}')
    return sum(1 for t in tasks if t["Status"]["State"] == "running")


def _start_swarm(swarm: Swarm, nodes: int) -> Daemon:
    manager = swarm.add(start=False)
    with socket.socket() as s:
        s.bind((manager.ip, 0))
        manager.web_addr = f"{manager.ip}:{s.getsockname()[1]}"
    manager.start()
    manager.docker("swarm", "init", "--advertise-addr", manager.ip)
    token = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    workers = [swarm.add(start=False) for _ in range(nodes - 1)]

    def join(w: Daemon) -> None:
        w.start()
        w.docker("swarm", "join", "--token", token, "--advertise-addr", w.ip, f"{manager.ip}:2377",
                 timeout=120)

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(join, workers))
    wait_for(f"{nodes} nodes ready", lambda: manager.docker("node", "ls", "--format", "{{.Status}}")
             .stdout.split().count("Ready") == nodes, timeout=300, interval=1)
    print(f"swarm: {nodes} sim shoalds started and joined in {time.monotonic() - started:.0f} s")
    return manager


def run_on_daemons(args: argparse.Namespace, *, loads: Callable[[Any, str, int, int], None],
                   browser: Callable[[], Any], wait: Callable[[Any, str], Any]) -> None:
    root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-"))
    swarm = Swarm(root, base_ip=BASE_IP, prefix=PREFIX)
    driver = None
    try:
        manager = _start_swarm(swarm, args.nodes)
        per = args.tasks // args.services
        started = time.monotonic()
        for s in range(args.services):
            # One service publishes a port: every task of a publishing service takes an address
            # on ingress, whose /24 holds 254 (as Docker's does).
            publish = ["--publish", "30000:80"] if s == 0 else []
            manager.docker("service", "create", "-d", "--name", f"{PREFIX}-app{s}", "--replicas", str(per),
                           *publish, "busybox:latest")
        total = per * args.services
        wait_for(f"{total} tasks running", lambda: _running(manager) >= total, timeout=600, interval=1)
        print(f"services: {args.services} x {per} tasks running {time.monotonic() - started:.0f} s after the first create")
        url = f"http://{manager.web_addr}/"
        body = httpx.get(f"{url}api/state", timeout=30).content
        print(f"snapshot (/api/state): {len(body) / 1024:.0f} KiB")
        driver = browser()
        loads(driver, url, total, args.loads)
        delays = []
        for i in range(3):
            before = int(driver.execute_script("return Number(document.body.dataset.revision)"))
            started = time.monotonic()
            manager.docker("service", "scale", "-d", f"{PREFIX}-app0={per + i + 1}")
            wait(driver, f"return Number(document.body.dataset.revision) > {before}")
            delays.append((time.monotonic() - started) * 1000)
        print(f"service scale (CLI) -> page redrawn: median {statistics.median(delays):.0f} ms, "
              f"max {max(delays):.0f} ms (includes the docker CLI and the API's answer)")
    finally:
        if driver is not None:
            driver.quit()
        swarm.close()
        shutil.rmtree(root, ignore_errors=True)
