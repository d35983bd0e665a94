#!/usr/bin/env python3
"""Seconds from `service create --replicas 1000` to 1000/1000 running on 100 sim nodes.

One real shoald manager (its own process, with its etcd member) and 100 real agents (sim
executor, each with its own certificate from the real join protocol and its own mutual-TLS
session) in this process. The manager node is drained so every task lands on the 100 agents.
Target: < 2.5 s (SwarmKit's published figure for 1,000 containers on 100 workers).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shoal.agent import Agent
from shoal.dev.local import Swarm
from shoal.exec.sim import SimExecutor
from shoal.node.join import join

NODES = int(sys.argv[1]) if len(sys.argv) > 1 else 100
REPLICAS = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
TRACE = bool(os.environ.get("SHOAL_BENCH_TRACE"))  # print task states over time
PROFILE = bool(os.environ.get("SHOAL_BENCH_PROFILE"))  # cProfile the agents' side


def api(sock: Path) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(sock)), base_url="http://shoal", timeout=30)


async def main(root: Path, swarm: Swarm) -> None:
    # The simulated nodes' state goes on tmpfs, as a real node's exec root (/run) does; 100
    # nodes' file writes on this VM's slow root disk would measure the disk, not the swarm.
    nodes_root = Path(tempfile.mkdtemp(prefix="shoalbench-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    manager = swarm.add()
    manager.docker("swarm", "init", "--advertise-addr", manager.ip)
    manager.docker("node", "update", "--availability", "drain", manager.hostname)
    token = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    addr = f"{manager.ip}:2377"
    t0 = time.perf_counter()
    identities = await asyncio.gather(*[join([addr], token, hostname=f"shoalbench-{i}") for i in range(NODES)])
    t_join = time.perf_counter() - t0
    agents = []
    for i, ident in enumerate(identities):
        state = nodes_root / f"agent{i}"
        state.mkdir()
        agents.append(Agent(executor=SimExecutor(hostname=f"shoalbench-{i}", state_dir=state), state_dir=state,
                            ssl_context=ident.client_ssl_context, managers=[addr], addr="127.0.0.1"))
    runs = [asyncio.create_task(a.run()) for a in agents]
    async with api(manager.sock) as c:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            nodes = (await c.get("/v1.50/nodes")).json()
            if sum(n["Status"]["State"] == "ready" for n in nodes) == NODES + 1:
                break
            await asyncio.sleep(0.2)
        else:
            raise SystemExit("agents did not all register within 60 s")
        spec = {"Name": "shoalbench", "TaskTemplate": {"ContainerSpec": {"Image": "busybox:latest"}},
                "Mode": {"Replicated": {"Replicas": REPLICAS}}}
        print("creating the service", file=sys.stderr, flush=True)
        if PROFILE:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        t0 = time.perf_counter()
        r = await c.post("/v1.50/services/create", json=spec)
        r.raise_for_status()
        running = 0
        deadline = time.monotonic() + 120
        while running < REPLICAS and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            svc = (await c.get("/v1.50/services", params={"status": "true"})).json()[0]
            running = svc["ServiceStatus"]["RunningTasks"]
            if TRACE:
                states: dict[str, int] = {}
                for t in (await c.get("/v1.50/tasks")).json():
                    states[t["Status"]["State"]] = states.get(t["Status"]["State"], 0) + 1
                print(f"{time.perf_counter() - t0:6.2f}s {states}", file=sys.stderr)
        t_conv = time.perf_counter() - t0
        if PROFILE:
            import pstats

            prof.disable()
            pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
    for a in agents:
        await a.stop()
    for t in runs:
        t.cancel()
    await asyncio.gather(*runs, return_exceptions=True)
    shutil.rmtree(nodes_root, ignore_errors=True)
    print(f"joined {NODES} nodes (real CA join, mTLS): {t_join:.2f} s")
    print(f"service create --replicas {REPLICAS} -> {running}/{REPLICAS} running on {NODES} sim nodes: {t_conv:.2f} s")
    print(f"target < 2.5 s (SwarmKit: < 2.5 s for 1,000 containers on 100 workers); ratio to target {t_conv / 2.5:.2f}")


if __name__ == "__main__":
    tmp = Path(tempfile.mkdtemp(prefix="shoalbench-"))
    s = Swarm(tmp / "swarm", base_ip="127.0.6", prefix="shoalbench-mgr")
    try:
        asyncio.run(main(tmp, s))
    finally:
        s.close()
        shutil.rmtree(tmp, ignore_errors=True)
