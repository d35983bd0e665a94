#!/usr/bin/env python3
"""The read barrier before every API GET on a manager (``Store.sync``): what one costs as the
store grows.

One real etcd member (mutual TLS, via shoal.store.etcd.testing) filled with --keys objects of
200 bytes; each form of the barrier's linearizable read is timed --rounds times:
  old: a count-only range over the whole keyspace (what Shoal did until issue 16: etcd counts
       every key under its read lock, so the cost grows with the swarm's tasks);
  new: a count-only read of one key that never exists (EtcdBackend.revision): the quorum's
       revision in the header, whatever the store holds.
Prints p50/p99 of each and the ratio old/new at each size. No peer: Docker's managers read their
own raft log, which has no such barrier.

    ./.venv/bin/python bench/bench_read_barrier.py --keys 0 20000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from shoal.store.etcd import EtcdBackend
from shoal.store.etcd.testing import client_context, throwaway_member


async def _time(fn: Callable[[], Awaitable[object]], rounds: int) -> tuple[float, float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - started)
    samples.sort()
    return statistics.median(samples) * 1000, samples[int(len(samples) * 0.99) - 1] * 1000


async def main(sizes: list[int], rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="shoalbench-barrier-") as tmp:
        async with throwaway_member(Path(tmp)) as member:
            backend = EtcdBackend([member.settings.client_url],
                                  ssl_context=client_context(member.settings), timeout=5.0)
            await backend.start()
            try:
                client = backend.client
                have = 0
                for size in sorted(sizes):
                    for i in range(have, size):
                        await client.put(b"/bench/%08d" % i, b"x" * 200)
                    have = max(have, size)
                    old = await _time(lambda: client.range(b"\x00", b"\x00", count_only=True), rounds)
                    new = await _time(backend.revision, rounds)
                    print(f"{size:7d} keys  old p50 {old[0]:6.2f} ms p99 {old[1]:6.2f} ms   "
                          f"new p50 {new[0]:6.2f} ms p99 {new[1]:6.2f} ms   "
                          f"old/new p50 {old[0] / new[0]:5.1f}x")
            finally:
                await backend.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, nargs="+", default=[0, 5000, 20000])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.keys, args.rounds))
