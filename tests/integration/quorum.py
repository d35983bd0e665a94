"""Helpers for the multi-manager tests: a swarm of several managers, finding the leader, and a
client that records every operation for the linearizability checker."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from typing import Any, Self

import httpx

from shoal.api.server import STALE_READ_HEADER
from shoal.dev.linearizability import History
from shoal.dev.local import Daemon, Swarm, leader
from shoal.dev.wait import wait_for


def init_managers(swarm: Swarm, managers: int, workers: int = 0) -> list[Daemon]:
    """``managers`` managers (the first inits, heartbeat 1 s) and ``workers`` workers, all ready."""
    first = swarm.add()
    first.docker("swarm", "init", "--advertise-addr", first.ip, "--dispatcher-heartbeat", "1s")
    tokens = {role: first.docker("swarm", "join-token", "-q", role).stdout.strip()
              for role in ("manager", "worker")}
    for role, count in (("manager", managers - 1), ("worker", workers)):
        for _ in range(count):
            d = swarm.add()
            d.docker("swarm", "join", "--token", tokens[role], "--advertise-addr", d.ip,
                     f"{first.ip}:2377", timeout=120)
    wait_for("every manager reachable and every node ready",
             lambda: statuses(first) == {"Ready": managers + workers, "managers": managers}, timeout=60)
    return list(swarm.daemons)


def statuses(d: Daemon) -> dict[str, int]:
    nodes = d.api("/nodes")
    ready = sum(1 for n in nodes if n["Status"]["State"] == "ready")
    reachable = sum(1 for n in nodes if (n.get("ManagerStatus") or {}).get("Reachability") == "reachable")
    return {"Ready": ready, "managers": reachable}


def wait_leader(daemons: list[Daemon], *, other_than: Daemon | None = None, timeout: float = 30) -> Daemon:
    def new_leader() -> Daemon | None:
        lead = leader(daemons)
        return lead if lead is not None and lead is not other_than else None

    return wait_for("a leader", new_leader, timeout=timeout)


def pause(d: Daemon, seconds: float) -> None:
    """SIGSTOP shoald (not its etcd) for ``seconds``, then SIGCONT."""
    assert d.proc is not None
    os.killpg(d.proc.pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.killpg(d.proc.pid, signal.SIGCONT)


SPEC: dict[str, Any] = {"TaskTemplate": {"ContainerSpec": {"Image": "busybox"}},
                        "Mode": {"Replicated": {"Replicas": 1}}}


class Recorder:
    """Client processes issuing creates, updates (label and scale) and reads of a few services
    through random live managers, recording each operation as ok, fail (no effect) or unknown (it may have applied)."""

    def __init__(self, daemons: list[Daemon], keys: list[str], processes: int = 3, seed: int = 7) -> None:
        self.daemons = daemons
        self.keys = keys
        self.history = History()
        self._stop = threading.Event()
        self._counter = 0
        self.stale_reads = 0  # reads a manager without a quorum answered from its cache
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(p, random.Random(seed + p)), daemon=True)
                         for p in range(processes)]

    def __enter__(self) -> Self:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def final_reads(self) -> list[str]:
        """After the run: every key read through every manager, into the history, so that an
        acknowledged write a manager lost shows as a read the checker cannot place. Returns
        the reads that did not answer fresh."""
        missed = []
        for d in self.daemons:
            with d.client(15.0) as c:
                for key in self.keys:
                    op = len(self.history)
                    self._read(c, f"final-{d.hostname}", key)
                    if self.history.ops()[op].status != "ok":
                        missed.append(f"{key} on {d.hostname}")
        return missed

    def _value(self) -> str:
        with self._lock:
            self._counter += 1
            return f"v{self._counter}"

    def _run(self, process: int, rng: random.Random) -> None:
        deadline = time.monotonic() + 300  # bounded even if never stopped
        while not self._stop.is_set() and time.monotonic() < deadline:
            live = [d for d in self.daemons if d.proc is not None]
            if not live:
                time.sleep(0.1)
                continue
            d = rng.choice(live)
            key = rng.choice(self.keys)
            try:
                with d.client(8.0) as c:
                    self._one(c, process, key, rng)
            except OSError:
                pass
            time.sleep(rng.uniform(0.0, 0.05))

    def _one(self, c: httpx.Client, process: int, key: str, rng: random.Random) -> None:
        read = self._read(c, process, key)
        if read is not None and rng.random() < 0.3:
            return
        if read is None or read == ("absent",):
            value = self._value()
            op = self.history.invoke(process, "create", key, value)
            body = {**SPEC, "Name": key, "Labels": {"v": value}}
            self._finish(op, lambda: c.post("/services/create", json=body), ok=201)
            return
        service = read[1]
        value = self._value()
        op = self.history.invoke(process, "write", key, value)
        # A scale as well as a change: every write sets the replica count too.
        spec = {**service["Spec"], "Labels": {"v": value},
                "Mode": {"Replicated": {"Replicas": rng.randint(0, 3)}}}
        version = service["Version"]["Index"]
        self._finish(op, lambda: c.post(f"/services/{service['ID']}/update", params={"version": version},
                                        json=spec), ok=200)

    def _read(self, c: httpx.Client, process: int, key: str) -> tuple[Any, ...] | None:
        op = self.history.invoke(process, "read", key)
        try:
            r = c.get(f"/services/{key}")
        except httpx.HTTPError:
            self.history.unknown(op)
            return None
        if r.status_code not in (200, 404):
            self.history.fail(op)  # a read that failed observed nothing
            return None
        service = r.json() if r.status_code == 200 else None
        if STALE_READ_HEADER in r.headers:
            # Served without a quorum, and said so: it promises nothing, so it is not checked.
            self.history.fail(op)
            self.stale_reads += 1
        else:
            self.history.ok(op, None if service is None else service["Spec"]["Labels"]["v"])
        return ("absent",) if service is None else ("present", service)

    def _finish(self, op: int, call: Any, ok: int) -> None:
        try:
            r = call()
        except httpx.HTTPError:
            self.history.unknown(op)
            return
        if r.status_code == ok:
            self.history.ok(op)
        elif r.status_code < 500 or "out of sequence" in r.text:
            self.history.fail(op)  # refused before anything was written (conflict, not found)
        else:
            self.history.unknown(op)  # no quorum, timeout: it may still commit
