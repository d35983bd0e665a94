#!/usr/bin/env python3
"""The data path's cost: HTTP to a busybox web task directly, through its service VIP, and
through the routing mesh, in one run, with the ratios to direct (issue 5's target: VIP and
mesh at >= 90% of direct throughput, and < 100 us added at p50).

Setup: three simulated hosts (network namespaces on a virtual switch, each with its own
shoald and the runc executor: shoal.dev.local.Swarm(hosts=True)), an overlay network `benchnet`,
the service `web` (shoal/web, one replica, constrained to node2, port 8080 published) and a
client container `client` on node1 on the same network. The paths measured, all from node1:

* direct: a client container -> the task's overlay address (node1 -> vxlan -> node2)
* vip:    another client container -> the service VIP (nftables DNAT in its namespace)
* mesh:   node1's own namespace -> node1's underlay address:8080 (DNAT onto the ingress
          network, then node1 -> vxlan -> node2), i.e. a host that runs no task
* mesh-3: node1 -> node3's address:8080 (two hops: node1 -> node3 -> vxlan -> node2)

Each path gets, in rounds that alternate the paths (so load on this 2-core machine hits all of
them alike): latency of sequential requests for the small index page (p50, p99, one new TCP
connection per request, as busybox httpd closes them), requests per second with 4 concurrent
clients, and MB/s downloading a 16 MiB file. Clients are Python threads that entered the
namespace (setns), so no process is forked per request.

Usage: python bench/bench_network.py [--rounds 3] [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shoal.dev import hosts
from shoal.dev.images import build_all
from shoal.dev.local import Swarm
from shoal.dev.wait import wait_for
from shoal.net import netns

PREFIX = "shoalbench-net"
BIG_MB = 16


def get(addr: tuple[str, int], path: str) -> int:
    """One HTTP/1.0 GET on a new connection; the bytes received."""
    with socket.create_connection(addr, timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n".encode())
        n = 0
        while chunk := s.recv(262144):
            n += len(chunk)
    if n == 0:
        raise OSError(f"no answer from {addr}")
    return n


def in_ns(path: str, fn: Callable[[], Any]) -> Any:
    return netns.run_in(path, fn)


def latency(path: str, addr: tuple[str, int], count: int) -> list[float]:
    def run() -> list[float]:
        out = []
        for _ in range(count):
            t = time.perf_counter()
            get(addr, "/")
            out.append(time.perf_counter() - t)
        return out
    return list(in_ns(path, run))


def rate(path: str, addr: tuple[str, int], url: str, seconds: float, workers: int) -> tuple[float, float]:
    """(requests per second, MB per second) of ``workers`` clients in a closed loop."""
    done: list[tuple[int, int]] = []
    stop = time.perf_counter() + seconds

    def worker() -> None:
        def run() -> tuple[int, int]:
            reqs = size = 0
            while time.perf_counter() < stop:
                size += get(addr, url)
                reqs += 1
            return reqs, size
        done.append(in_ns(path, run))

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return sum(r for r, _ in done) / elapsed, sum(s for _, s in done) / elapsed / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--requests", type=int, default=400, help="sequential requests per latency round")
    args = ap.parse_args()

    hosts.remove_all(PREFIX)
    root = Path(tempfile.mkdtemp(prefix="shoalbench-net-"))
    swarm = Swarm(root, prefix=PREFIX, base_ip="172.31.5", hosts=True)
    try:
        registry = swarm.start_registry()
        for image in build_all():
            registry.push(image)
        node1 = swarm.add(executor="runc")
        node1.docker("swarm", "init", "--advertise-addr", node1.ip)
        token = node1.docker("swarm", "join-token", "-q", "worker").stdout.strip()
        for _ in range(2):
            w = swarm.add(executor="runc")
            w.docker("swarm", "join", "--token", token, "--advertise-addr", w.ip, f"{node1.ip}:2377")
        node2, node3 = swarm.daemons[1], swarm.daemons[2]
        wait_for("3 nodes ready", lambda: node1.docker("node", "ls", "--format", "{{.Status}}")
                 .stdout.split().count("Ready") == 3, timeout=60)
        web = f"{swarm.registry_addr}/shoal/web:latest"
        node1.docker("network", "create", "-d", "overlay", "benchnet")
        node1.docker("service", "create", "--detach", "--name", "web", "--network", "benchnet",
                     "--publish", "8080:80", "--constraint", f"node.hostname=={node2.hostname}", web)
        # two clients: the VIP's DNATed connections and the direct ones would otherwise share
        # 4-tuples (and conntrack entries) and slow each other down
        node1.docker("service", "create", "--detach", "--name", "client", "--network", "benchnet",
                     "--replicas", "2", "--constraint", f"node.hostname=={node1.hostname}", web)

        def running(service: str, n: int) -> list[dict[str, Any]] | None:
            tasks = node1.api(f'/tasks?filters={{"service":["{service}"]}}')
            up = [t for t in tasks if t["Status"]["State"] == "running"]
            return up if len(up) == n else None

        task = wait_for("web running", lambda: running("web", 1), timeout=120)[0]
        clients = wait_for("clients running", lambda: running("client", 2), timeout=120)
        net = json.loads(node1.docker("network", "inspect", "benchnet").stdout)[0]
        svc = json.loads(node1.docker("service", "inspect", "web").stdout)[0]
        vip = next(v["Addr"].split("/")[0] for v in svc["Endpoint"]["VirtualIPs"]
                   if v["NetworkID"] == net["Id"])
        task_ip = next(a["Addresses"][0].split("/")[0] for a in task["NetworksAttachments"]
                       if a["Network"]["ID"] == net["Id"])
        subprocess.run(["nsenter", "-t", str(task["Status"]["ContainerStatus"]["PID"]), "-m", "--",
                        "/bin/busybox", "dd", "if=/dev/zero", "of=/www/big", "bs=1048576",
                        f"count={BIG_MB}"], check=True, capture_output=True)
        direct_ns, vip_ns = (f"/proc/{c['Status']['ContainerStatus']['PID']}/ns/net"
                             for c in clients)
        paths: dict[str, tuple[str, tuple[str, int]]] = {
            "direct": (direct_ns, (task_ip, 80)),
            "vip": (vip_ns, (vip, 80)),
            "mesh": (node1.netns or "", (node1.ip, 8080)),
            "mesh-3": (node1.netns or "", (node3.ip, 8080)),
        }
        for name, (path, addr) in paths.items():  # every path answers, and warms up
            wait_for(f"{name} answering", lambda p=path, a=addr: in_ns(p, lambda: get(a, "/")) > 0,  # type: ignore[misc]
                     timeout=30)
        results: dict[str, dict[str, list[float]]] = {n: {"p50": [], "p99": [], "rps": [], "mbs": []}
                                                      for n in paths}
        for r in range(args.rounds):
            for name, (path, addr) in paths.items():
                lat = sorted(latency(path, addr, args.requests))
                results[name]["p50"].append(lat[len(lat) // 2] * 1e6)
                results[name]["p99"].append(lat[int(len(lat) * 0.99)] * 1e6)
                rps, _ = rate(path, addr, "/", args.seconds, 4)
                _, mbs = rate(path, addr, "/big", args.seconds, 2)
                results[name]["rps"].append(rps)
                results[name]["mbs"].append(mbs)
            print(f"round {r + 1}/{args.rounds}: " + "  ".join(
                f"{n} {m['rps'][-1]:.0f} req/s {m['mbs'][-1]:.0f} MB/s p50 {m['p50'][-1]:.0f} us"
                for n, m in results.items()), file=sys.stderr)
        med = {n: {k: statistics.median(v) for k, v in m.items()} for n, m in results.items()}
        d = med["direct"]
        print(f"{'path':<8} {'p50 us':>8} {'p99 us':>8} {'req/s':>8} {'MB/s':>8}   "
              f"{'req/s ratio':>11} {'MB/s ratio':>10} {'p50 added us':>12}")
        for name, m in med.items():
            print(f"{name:<8} {m['p50']:>8.0f} {m['p99']:>8.0f} {m['rps']:>8.0f} {m['mbs']:>8.1f}   "
                  f"{m['rps'] / d['rps']:>11.2f} {m['mbs'] / d['mbs']:>10.2f} "
                  f"{m['p50'] - d['p50']:>12.0f}")
        print(f"(medians of {args.rounds} rounds; {args.requests} sequential requests per latency "
              f"round; {args.seconds:.0f} s per rate round; 4 clients for req/s, 2 for MB/s of a "
              f"{BIG_MB} MiB file)")
    finally:
        swarm.close()
        shutil.rmtree(root, ignore_errors=True)
        hosts.remove_all(PREFIX)


if __name__ == "__main__":
    main()
