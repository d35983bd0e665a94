#!/usr/bin/env python3
"""Store writes on a 3-member etcd quorum: throughput, commit latency, and leader-kill failover.

Three real etcd members (the etcd-server binary, via EtcdMember) on 127.0.5.1-3 with mutual TLS
on client and peer links and production raft timing (heartbeat 100 ms, election 1000 ms), and one
Store per member (EtcdBackend: its own member first, the others after), as three managers would
have; all three stores live in this process and each applies every write to its cache.

Measured:
  a. sequential single-object ``Store.update`` calls from one store (via the etcd leader's member,
     then via a follower's): writes/s and commit latency p50/p99/max. Latency is the whole update
     call: the etcd txn round trip plus waiting for the store's own cache (watch) to apply it;
     both parts are shown;
  b. three stores writing concurrently, one sequential writer each (--writes split over the
     three): total writes/s, p50/p99;
  c. ``Store.update(fn, atomic=False)`` batches of --batch objects: object writes/s, per batch
     p50/p99;
  d. SIGKILL of the etcd leader while a store attached to another member keeps writing: seconds
     from the kill to the first committed write issued after it (each trial, and the median).
     Each attempt is bounded by --attempt-timeout, which is also the figure's resolution: a
     write in flight at the kill is lost with the dead leader and would otherwise hang until
     EtcdBackend's 5 s call timeout (etcd's own request timeout is 7 s), holding the store's
     write lock; --attempt-timeout 10 shows that (~5 s).
     The killed member is restarted on its data dir and rejoins before the next trial.

Each phase also prints the CPU seconds each etcd member and this process used: on a small
machine the figures are bounded by CPU (etcd's JSON gateway, TLS, three caches), not by fsync;
``--tmpdir /dev/shm`` takes the disk out to check.

Targets: >= 10,000 object writes/s in batches, single-write p99 < 5 ms, failover < 3 s.

    python bench/bench_quorum.py [--writes 2000] [--batch 1000] [--batches 10]
                                 [--failover-trials 3] [--skip-failover] [--attempt-timeout 0.25]
                                 [--tmpdir DIR] [-v]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import shutil
import signal
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shoal.errors import ShoalError
from shoal.model.ids import new_id
from shoal.model.objects import Task, TaskStatus, now
from shoal.model.specs import TaskSpec
from shoal.store.backend import TxnResult
from shoal.store.etcd.backend import EtcdBackend
from shoal.store.etcd.client import EtcdClient
from shoal.store.etcd.grpc_client import GrpcEtcdClient
from shoal.store.etcd.member import EtcdMember
from shoal.store.etcd.settings import EtcdMemberSettings
from shoal.store.etcd.testing import client_context, make_pki, member_settings
from shoal.store.store import Store, Tx

IPS = ("127.0.5.1", "127.0.5.2", "127.0.5.3")
TRANSPORT = "grpc"  # set from --transport: the etcd client under each store
TARGET_BATCH_WRITES_S = 10_000
TARGET_P99_MS = 5.0
TARGET_FAILOVER_S = 3.0
STABILISE_S = 6.0  # after a killed member rejoins, before the next trial
TARGETS = ">= 10,000 object writes/s in batches, p99 < 5 ms, failover < 3 s"


class TimedBackend(EtcdBackend):
    """EtcdBackend that records each txn's round trip, to split update latency in two."""

    def __init__(self, endpoints: list[str], *, ssl_context: ssl.SSLContext,
                 client: GrpcEtcdClient | None = None) -> None:
        super().__init__(endpoints, ssl_context=ssl_context, client=client)
        self.txn_s: list[float] = []

    async def txn(self, *args: Any, **kwargs: Any) -> TxnResult:  # whatever the contract's is
        t0 = time.perf_counter()
        result = await super().txn(*args, **kwargs)
        self.txn_s.append(time.perf_counter() - t0)
        return result


# -- helpers ---------------------------------------------------------------------------------

_SPEC = TaskSpec(container_spec={"Image": "busybox:latest"})


def make_task(slot: int) -> Task:
    return Task(id=new_id(), service_id="shoalbench-svc", slot=slot, spec=_SPEC,
                status=TaskStatus(state="pending", timestamp=now()))


def create_one(slot: int) -> Callable[[Tx], None]:
    task = make_task(slot)
    return lambda tx: tx.create(task)


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile of ``values`` (``p`` in 0..100)."""
    ordered = sorted(values)
    rank = max(1, round(p / 100 * len(ordered) + 0.4999))
    return ordered[min(rank, len(ordered)) - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds used so far by ``pid`` (this process when None)."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU used by each etcd member and by this process (the 3 stores) during a phase."""

    def __init__(self, q: Quorum) -> None:
        self.q = q
        self.pids = [m.pid if m is not None else None for m in q.members]
        self.start = [cpu_seconds(p) for p in self.pids if p is not None] + [cpu_seconds(None)]
        self.t0 = time.perf_counter()

    def report(self) -> str:
        wall = time.perf_counter() - self.t0
        now_ = [cpu_seconds(p) for p in self.pids if p is not None] + [cpu_seconds(None)]
        used = [b - a for a, b in zip(self.start, now_, strict=True)]
        names = [s.name for s, p in zip(self.q.settings, self.pids, strict=True) if p is not None]
        parts = [f"etcd {n} {u:.2f}" for n, u in zip(names, used, strict=False)]
        parts.append(f"python (3 stores + writers) {used[-1]:.2f}")
        return (f"    CPU s over {wall:.2f} s wall: {', '.join(parts)}; total {sum(used):.2f} "
                f"= {sum(used) / wall:.1f} of {os.cpu_count()} cores")


def mark(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


class Quorum:
    """Three etcd members and one store per member."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.settings: list[EtcdMemberSettings] = []
        self.members: list[EtcdMember | None] = [None, None, None]
        self.stores: list[Store] = []
        self.backends: list[TimedBackend] = []
        self.probes: list[EtcdClient] = []
        self.ssl: ssl.SSLContext | None = None
        self.ids: dict[int, int] = {}  # etcd member id -> index

    async def start(self) -> None:
        # etcd 3.4 checks a peer's client certificate against the connection's source address,
        # and the kernel sends from 127.0.0.1 to any 127.x address: that goes in the SAN too.
        pki = make_pki(self.root / "pki", ips=(*IPS, "127.0.0.1"), cn="shoalbench-etcd")
        drafts = [member_settings(self.root / "etcd", pki, name=f"m{i}", host=ip,
                                  heartbeat_interval_ms=100, election_timeout_ms=1000)
                  for i, ip in enumerate(IPS)]
        cluster = ",".join(f"{s.name}={s.peer_url}" for s in drafts)
        self.settings = [dataclasses.replace(s, initial_cluster=cluster, initial_cluster_state="new",
                                             initial_cluster_token="shoalbench-quorum")
                         for s in drafts]
        self.ssl = client_context(self.settings[0])
        members = [EtcdMember(s) for s in self.settings]
        self.members = list(members)
        # start() returns once the member serves, which needs a quorum: start all three at once.
        results = await asyncio.gather(*(m.start() for m in members), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        urls = [s.client_url for s in self.settings]
        self.probes = [EtcdClient([u], ssl_context=self.ssl, timeout=1.0) for u in urls]
        for i in range(3):
            order = urls[i:] + urls[:i]
            s0 = self.settings[0]
            grpc_client = (GrpcEtcdClient(order, cert_file=s0.cert_file, key_file=s0.key_file,
                                          ca_file=s0.trusted_ca_file) if TRANSPORT == "grpc" else None)
            backend = TimedBackend(order, ssl_context=self.ssl, client=grpc_client)
            self.backends.append(backend)
            await backend.start()
            store = Store(backend)
            await store.start()
            self.stores.append(store)

    async def close(self) -> None:
        """Stop everything; a failure closing one part does not leave etcd running."""
        closers = [s.close for s in self.stores] + [b.close for b in self.backends]
        closers += [p.close for p in self.probes]
        closers += [m.stop for m in self.members if m is not None]
        for close in closers:
            try:
                await close()
            except Exception as e:  # noqa: BLE001 - keep stopping the rest
                print(f"cleanup: {type(e).__name__}: {e}", file=sys.stderr)

    async def leader(self, timeout: float = 30.0) -> int:
        """Index of the etcd leader, once every live member names the same one."""
        deadline = time.monotonic() + timeout
        while True:
            ids: dict[int, int] = {}
            leaders: set[int] = set()
            for i, probe in enumerate(self.probes):
                member = self.members[i]
                if member is None or member.pid is None:
                    continue
                try:
                    status = await probe.status()
                except ShoalError:
                    leaders.add(-1)
                    continue
                ids[status.header.member_id] = i
                leaders.add(status.leader)
            self.ids.update(ids)
            if len(leaders) == 1:
                (leader,) = leaders
                if leader in ids:
                    return ids[leader]
            if time.monotonic() > deadline:
                raise SystemExit(f"no agreed etcd leader within {timeout:g} s")
            await asyncio.sleep(0.1)

    async def talks_to(self, store_index: int) -> int:
        """Index of the member store ``store_index``'s client sends to now (after a failure it
        moves on to its next endpoint and stays there)."""
        status = await self.backends[store_index].client.status()
        return self.ids[status.header.member_id]


# -- measurements ----------------------------------------------------------------------------


async def sequential(store: Store, backend: TimedBackend, n: int) -> tuple[float, list[float],
                                                                           list[float]]:
    """``n`` single-object updates one after another: elapsed, latencies, txn round trips."""
    backend.txn_s.clear()
    latencies: list[float] = []
    t_start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        await store.update(create_one(i))
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - t_start
    return elapsed, latencies, list(backend.txn_s)


def print_single(label: str, n: int, elapsed: float, lat: list[float], txn: list[float]) -> None:
    p99 = pct(lat, 99)
    print(f"  {label}: {n} writes in {elapsed:.2f} s = {n / elapsed:,.0f} writes/s; "
          f"latency p50 {ms(pct(lat, 50))}, p99 {ms(p99)}, max {ms(max(lat))} "
          f"(p99 target < {TARGET_P99_MS:g} ms: {mark(p99 * 1000 < TARGET_P99_MS)})")
    if txn:
        wait = [max(0.0, a - b) for a, b in zip(lat, txn, strict=False)]
        print(f"    of which etcd txn round trip p50 {ms(pct(txn, 50))}, p99 {ms(pct(txn, 99))}; "
              f"waiting for the own cache to apply p50 {ms(pct(wait, 50))}, "
              f"p99 {ms(pct(wait, 99))}", flush=True)


async def bench_single(q: Quorum, n: int) -> None:
    leader = await q.leader()
    follower = (leader + 1) % 3
    print(f"a. sequential single-object Store.update, {n} writes per store "
          f"(etcd leader: {q.settings[leader].name})", flush=True)
    for label, i in (("via the leader's member  ", leader), ("via a follower's member", follower)):
        cpu = CpuMeter(q)
        elapsed, lat, txn = await sequential(q.stores[i], q.backends[i], n)
        print_single(f"{label} ({q.settings[i].name})", n, elapsed, lat, txn)
        print(cpu.report(), flush=True)


async def bench_concurrent(q: Quorum, total: int) -> None:
    n = -(-total // 3)
    print(f"b. 3 stores writing concurrently, one sequential writer each, {n} writes each",
          flush=True)
    cpu = CpuMeter(q)
    t0 = time.perf_counter()
    runs = await asyncio.gather(*(sequential(q.stores[i], q.backends[i], n) for i in range(3)))
    elapsed = time.perf_counter() - t0
    lat = [x for _, latencies, _ in runs for x in latencies]
    txn = [x for _, _, trips in runs for x in trips]
    print_single("all 3 stores", len(lat), elapsed, lat, txn)
    print(cpu.report(), flush=True)


async def bench_batches(q: Quorum, size: int, count: int, *, only_writer: bool = False) -> None:
    leader = await q.leader()
    i = (leader + 1) % 3
    store, backend = q.stores[i], q.backends[i]
    if only_writer:
        # On real managers the other two caches run on their own machines; in this process they
        # would take this machine's cores from the writer and from etcd.
        for other in q.stores:
            if other is not store:
                await other.close()
        print("c'. the same with only the writer's cache (the other managers' caches stopped)",
              flush=True)
    else:
        print(f"c. Store.update(fn, atomic=False) batches: {count} x {size} task creates via a "
              f"follower's member ({q.settings[i].name})", flush=True)
    per_batch: list[float] = []
    backend.txn_s.clear()
    cpu = CpuMeter(q)
    t_start = time.perf_counter()
    for b in range(count):
        tasks = [make_task(b * size + k) for k in range(size)]

        def write(tx: Tx, tasks: list[Task] = tasks) -> None:
            for t in tasks:
                tx.create(t)

        t0 = time.perf_counter()
        await store.update(write, atomic=False)
        per_batch.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - t_start
    rate = size * count / elapsed
    print(f"  {size * count} objects in {elapsed:.2f} s = {rate:,.0f} object writes/s "
          f"(target >= {TARGET_BATCH_WRITES_S:,}: {mark(rate >= TARGET_BATCH_WRITES_S)}); "
          f"per batch p50 {ms(pct(per_batch, 50))}, p99 {ms(pct(per_batch, 99))}; "
          f"{len(backend.txn_s)} etcd txns of <= 120 ops, each p50 {ms(pct(backend.txn_s, 50))}, "
          f"max {ms(max(backend.txn_s))}", flush=True)
    print(cpu.report(), flush=True)
    # the same batch straight to etcd, without the store: how much the store itself costs
    tasks = [make_task(k) for k in range(size)]
    tx = Tx(store.view())
    for t in tasks:
        tx.create(t)
    chunks = tx.chunks()
    t0 = time.perf_counter()
    await asyncio.gather(*(backend.txn(c, o) for c, o in chunks))
    raw = time.perf_counter() - t0
    print(f"  for comparison, one batch's {len(chunks)} txns straight to etcd (no store, "
          f"no cache wait): {ms(raw)} = {size / raw:,.0f} object writes/s", flush=True)


async def failover_trial(q: Quorum, trial: int, attempt_timeout: float) -> float:
    leader = await q.leader()
    # A store of its own for the trial, whose client talks to a follower's member first (a store
    # attached to the leader's member would lose its connection with the leader).
    writer_index = (leader + 1) % 3
    urls = [q.settings[i].client_url for i in (writer_index, (leader + 2) % 3, leader)]
    s0 = q.settings[0]
    client = (GrpcEtcdClient(urls, cert_file=s0.cert_file, key_file=s0.key_file, ca_file=s0.trusted_ca_file)
              if TRANSPORT == "grpc" else None)
    trial_backend = TimedBackend(urls, ssl_context=q.ssl, client=client)
    await trial_backend.start()
    store = Store(trial_backend)
    await store.start()
    via = writer_index
    member = q.members[leader]
    assert member is not None and member.pid is not None
    pid = member.pid
    leader_id = next(k for k, v in q.ids.items() if v == leader)
    survivors = [q.probes[i] for i in range(3) if i != leader]
    commits: list[tuple[float, float]] = []  # (issued, committed), monotonic
    failed_after_kill = {"error": 0, "timeout": 0}
    t_kill = float("inf")
    t_elected = float("nan")
    recovered = asyncio.Event()
    stop = False

    async def writer() -> None:
        slot = 0
        while not stop:
            slot += 1
            issued = time.monotonic()
            try:
                async with asyncio.timeout(attempt_timeout):
                    await store.update(create_one(slot))
            except (ShoalError, TimeoutError) as e:
                if time.monotonic() > t_kill:
                    failed_after_kill["timeout" if isinstance(e, TimeoutError) else "error"] += 1
                continue  # at once: the next attempt is the next chance to see recovery
            done = time.monotonic()
            commits.append((issued, done))
            if issued > t_kill:
                recovered.set()

    async def election() -> None:
        """When a survivor first names a new leader (polled every 50 ms)."""
        nonlocal t_elected
        while True:
            for probe in survivors:
                try:
                    status = await probe.status(timeout=0.2)
                except ShoalError:
                    continue
                if status.leader not in (0, leader_id):
                    t_elected = time.monotonic()
                    return
            await asyncio.sleep(0.05)

    task = asyncio.create_task(writer())
    watcher: asyncio.Task[None] | None = None
    try:
        await asyncio.sleep(0.5)  # steady writes first
        before = len(commits)
        os.kill(pid, signal.SIGKILL)
        t_kill = time.monotonic()
        watcher = asyncio.create_task(election())
        try:
            async with asyncio.timeout(60):
                await recovered.wait()
                await watcher
        except TimeoutError:
            raise SystemExit(f"failover trial {trial}: no committed write within 60 s") from None
    finally:
        stop = True
        await task
        if watcher is not None and not watcher.done():
            watcher.cancel()
        await store.close()
        await trial_backend.close()
    first = next(done for issued, done in commits if issued > t_kill)
    seconds = first - t_kill
    new_leader = await q.leader()
    print(f"  trial {trial}: killed {q.settings[leader].name} (pid {pid}), writing via "
          f"{q.settings[via].name}: new leader {q.settings[new_leader].name} named after "
          f"{t_elected - t_kill:.2f} s; first write issued after the kill committed after "
          f"{seconds:.2f} s ({before} writes in the 0.5 s before; after the kill "
          f"{failed_after_kill['error']} attempts failed, {failed_after_kill['timeout']} "
          f"timed out)", flush=True)
    await restart(q, leader)
    return seconds


async def restart(q: Quorum, index: int) -> None:
    """Reap the killed member and start it again on its data dir; wait until it has caught up."""
    old = q.members[index]
    q.members[index] = None
    if old is not None:
        await old.stop()
    fresh = EtcdMember(q.settings[index])
    q.members[index] = fresh
    await fresh.start()
    await q.leader()


async def bench_failover(q: Quorum, trials: int, attempt_timeout: float) -> None:
    print(f"d. SIGKILL the etcd leader while another member's store writes continuously "
          f"({trials} trials; each attempt bounded to {attempt_timeout:g} s)", flush=True)
    results = []
    for trial in range(1, trials + 1):
        results.append(await failover_trial(q, trial, attempt_timeout))
        if trial < trials:
            await asyncio.sleep(STABILISE_S)
    median = statistics.median(results)
    print(f"  failover median {median:.2f} s (target < {TARGET_FAILOVER_S:g} s: "
          f"{mark(median < TARGET_FAILOVER_S)}); trials: "
          f"{', '.join(f'{s:.2f}' for s in results)} s", flush=True)


async def main(args: argparse.Namespace, root: Path) -> None:
    print(f"3 etcd members on loopback ({', '.join(IPS)}), mutual TLS on client and peer links, "
          f"heartbeat 100 ms / election 1000 ms; 3 Stores (one per member) in this process; "
          f"{os.cpu_count()} CPU cores", flush=True)
    print(f"targets: {TARGETS}", flush=True)
    q = Quorum(root)
    try:
        t0 = time.perf_counter()
        await q.start()
        leader = await q.leader()
        version = (await q.probes[leader].status()).version
        print(f"quorum up in {time.perf_counter() - t0:.2f} s (etcd {version}, leader "
              f"{q.settings[leader].name})", flush=True)
        await bench_single(q, args.writes)
        await bench_concurrent(q, args.writes)
        await bench_batches(q, args.batch, args.batches)
        if not args.skip_failover and args.failover_trials > 0:
            await bench_failover(q, args.failover_trials, args.attempt_timeout)
        await bench_batches(q, args.batch, args.batches, only_writer=True)  # stops 2 caches: last
    finally:
        await q.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--writes", type=int, default=2000,
                        help="single writes per store in a, in total (split over 3) in b")
    parser.add_argument("--batch", type=int, default=1000, help="objects per batch")
    parser.add_argument("--batches", type=int, default=10, help="number of batches")
    parser.add_argument("--failover-trials", type=int, default=3)
    parser.add_argument("--skip-failover", action="store_true")
    parser.add_argument("--attempt-timeout", type=float, default=0.25,
                        help="seconds per write attempt during failover")
    parser.add_argument("--tmpdir", default=None,
                        help="parent of the etcd data dirs (default: $TMPDIR or /tmp; "
                             "/dev/shm takes the disk's fsync out of the figures)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show shoal's log lines")
    parser.add_argument("--transport", choices=("json", "grpc"), default="grpc",
                        help="the etcd client: etcd's JSON gateway or native gRPC")
    cli = parser.parse_args()
    TRANSPORT = cli.transport
    logging.basicConfig(level=logging.INFO if cli.verbose else logging.ERROR,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    tmp = Path(tempfile.mkdtemp(prefix="shoalbench-quorum-", dir=cli.tmpdir))
    try:
        asyncio.run(main(cli, tmp))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
