"""Scheduler throughput: 10,000 tasks over 1,000 nodes, in process (Store over MemoryBackend).

Prints two figures: end to end (tasks written PENDING -> all ASSIGNED in the store, including
the 50 ms debounce and the batched commit) and the pure decision time of ``place_group``. No
asserts on timing: compare with the target and with SwarmKit's published figure.

    python bench/bench_scheduler.py [--tasks 10000] [--nodes 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time

from shoal.manager.scheduler import NodeInfo, Pipeline, Scheduler, place_group
from shoal.model.objects import (
    Node,
    NodeDescription,
    NodeResources,
    NodeStatus,
    Task,
    TaskStatus,
    now,
)
from shoal.model.specs import NodeSpec, Platform, TaskSpec
from shoal.store.membackend import MemoryBackend
from shoal.store.store import Store, Tx

TARGET = 5_000  # placements per second
SWARMKIT = "SwarmKit (design/scheduler.md): 1k tasks on 1k nodes in 189 ms (~5,300 placements/s)"


def make_nodes(n: int) -> list[Node]:
    return [
        Node(
            id=f"node{i:05}",
            spec=NodeSpec(role="worker", availability="active", labels={"zone": f"z{i % 3}"}),
            description=NodeDescription(
                hostname=f"host{i:05}",
                platform=Platform(architecture="x86_64", os="linux"),
                resources=NodeResources(nano_cpus=8_000_000_000, memory_bytes=16 << 30),
            ),
            status=NodeStatus(state="ready"),
        )
        for i in range(n)
    ]


def make_tasks(n: int, prefix: str = "task") -> list[Task]:
    spec = TaskSpec(container_spec={"Image": "nginx:alpine"})
    return [
        Task(
            id=f"{prefix}{i:06}",
            service_id="svc",
            slot=i + 1,
            spec=spec,
            status=TaskStatus(state="pending", timestamp=now()),
        )
        for i in range(n)
    ]


def bench_decisions(n_tasks: int, n_nodes: int) -> float:
    infos = []
    for node in make_nodes(n_nodes):
        info = NodeInfo(node.id, node)
        infos.append(info)
    tasks = make_tasks(n_tasks)
    started = time.perf_counter()
    placement = place_group(tasks, infos, Pipeline(), now=0.0, timestamp=now())
    elapsed = time.perf_counter() - started
    assert len(placement.assigned) == n_tasks
    return elapsed


async def bench_end_to_end(n_tasks: int, n_nodes: int) -> tuple[float, float]:
    store = Store(MemoryBackend(history=1_000_000))
    await store.start()
    nodes = make_nodes(n_nodes)

    def write_all(objs: list[Node] | list[Task]) -> object:
        def fn(tx: Tx) -> None:
            for obj in objs:
                tx.create(obj)

        return fn

    await store.update(write_all(nodes), atomic=False)  # type: ignore[arg-type]
    scheduler = Scheduler(store)
    runner = asyncio.create_task(scheduler.run(), name="bench-scheduler")
    done = asyncio.Event()
    count = 0
    with store.subscribe([Task]) as changes:

        async def watch() -> None:
            nonlocal count
            while count < n_tasks:
                for change in await changes.next():
                    new = change.new
                    if isinstance(new, Task) and new.status.state == "assigned":
                        old = change.old
                        if not (isinstance(old, Task) and old.status.state == "assigned"):
                            count += 1
            done.set()

        watcher = asyncio.create_task(watch(), name="bench-watch")
        tasks = make_tasks(n_tasks)
        write_started = time.perf_counter()
        await store.update(write_all(tasks), atomic=False)  # type: ignore[arg-type]
        written = time.perf_counter()
        await asyncio.wait_for(done.wait(), 120)
        finished = time.perf_counter()
        watcher.cancel()
    runner.cancel()
    for t in (runner, watcher):
        try:
            await t
        except asyncio.CancelledError:
            pass
    await store.close()
    return written - write_started, finished - written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=1_000)
    parser.add_argument("-v", "--verbose", action="store_true", help="show scheduler log lines")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)

    decide = bench_decisions(args.tasks, args.nodes)
    write, e2e = asyncio.run(bench_end_to_end(args.tasks, args.nodes))
    n = args.tasks
    print(f"scheduler benchmark: {n} tasks on {args.nodes} nodes (in process, MemoryBackend)")
    print(f"  decision (place_group):  {decide * 1000:8.1f} ms  {n / decide:10,.0f} placements/s")
    print(f"  end to end (store):      {e2e * 1000:8.1f} ms  {n / e2e:10,.0f} placements/s")
    print(f"    (writing the {n} PENDING tasks took {write * 1000:.1f} ms, not counted;")
    print("     end to end includes the 50 ms debounce and the batched commit)")
    print(f"  target:                  {TARGET:,} placements/s")
    print(f"  reference: {SWARMKIT}")


if __name__ == "__main__":
    main()
