"""The web view on a big swarm: time to the first full render in headless Chromium, the size
of what the page loads first, and how soon a store change is on the page.

The swarm is a manager's store as a 100-node sim swarm fills it (nodes, services, their
running tasks), in process (Store over MemoryBackend): the web view reads nothing but that
store, so this measures the page and its server without 100 shoald processes on two cores.
The server is the real one (``shoal.web.build_web_app``) on loopback in a thread of its own;
the browser is Debian's chromium through chromedriver (scripts/setup installs both).

Prints: the snapshot's build time and size (raw and gzip), the page's files, per load the time
from navigation to the first full render as the browser measures it (``window.shoalFirstRender``,
ms after navigation start) and as the bench sees it (``get`` to rows drawn), and the delay from
a store commit that moves tasks to the page showing it. No asserts on timing.

    python bench/bench_web.py [--nodes 100] [--tasks 1000] [--services 20] [--loads 5]

With ``--daemons`` the swarm is real instead: ``--nodes`` shoald processes with the sim
executor on loopback 127.0.106.N (a manager serving the web view, the rest workers), the
services created through the docker CLI; then the same loads, and the delay measured from a
``service scale`` to the page. Heavy on two cores (about 70 MB and a second of CPU per daemon
to start): run it alone. ``--keep-going`` is not offered: the swarm is always torn down.

    python bench/bench_web.py --daemons [--nodes 100] [--tasks 1000] [--services 20]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import logging
import socket
import statistics
import threading
import time
from concurrent.futures import Future
from importlib import resources
from typing import Any

import msgspec
from aiohttp import web

from shoal.model.objects import (
    Endpoint,
    ManagerStatus,
    Network,
    Node,
    NodeDescription,
    NodeStatus,
    Service,
    Task,
)
from shoal.model.specs import (
    NetworkAttachmentConfig,
    NetworkSpec,
    NodeSpec,
    PortConfig,
    Replicated,
    ServiceMode,
    ServiceSpec,
    TaskSpec,
)
from shoal.model.states import TaskState
from shoal.store.membackend import MemoryBackend
from shoal.store.store import Store, Tx, copy
from shoal.web import build_web_app
from shoal.web.snapshot import snapshot

IP = "127.0.106.250"  # this bench's loopback address (the web helper's range)
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


class _State:
    local_node_state, role, error = "active", "manager", ""


class Source:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def store(self) -> Store:
        return self._store

    def swarm_state(self) -> _State:
        return _State()

    def logs(self) -> None:
        return None


def _nodes(tx: Tx, nodes: int) -> None:
    tx.create(Network(id="net-front", spec=NetworkSpec(name="front", driver="overlay")))
    for i in range(nodes):
        manager = i < 3
        tx.create(Node(id=f"node{i:04}", spec=NodeSpec(role="manager" if manager else "worker", availability="active"),
                       description=NodeDescription(hostname=f"sim-{i + 1:03}"),
                       status=NodeStatus(state="ready", addr=f"10.0.{i // 250}.{i % 250 + 1}"),
                       manager_status=ManagerStatus(leader=i == 0, reachability="reachable") if manager else None,
                       role="manager" if manager else "worker", cert_expiry="2027-03-01T00:00:00Z"))


def _service(tx: Tx, s: int, per: int, nodes: int) -> None:
    """Service ``s`` and its ``per`` running tasks, spread over the nodes."""
    spec = TaskSpec(container_spec={"Image": f"registry.local/app{s}:1.{s}"},
                    networks=[NetworkAttachmentConfig(target="net-front")])
    tx.create(Service(id=f"svc{s:03}", spec=ServiceSpec(
        name=f"app{s}", task_template=spec, mode=ServiceMode(replicated=Replicated(replicas=per))),
        endpoint=Endpoint(ports=[PortConfig(target_port=80, published_port=30000 + s)])))
    for k in range(per):
        n = (s * per + k) % nodes
        task = Task(id=f"t{s:03}{k:05}", service_id=f"svc{s:03}", service_name=f"app{s}", slot=k + 1,
                    node_id=f"node{n:04}", spec=spec)
        task.status.state = TaskState.RUNNING
        tx.create(task)


class Server:
    """The web app on its own loop in a thread (Selenium's calls block)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.store: Store = self.call(self._start(args))
        with socket.socket() as s:
            s.bind((IP, 0))
            self.port = s.getsockname()[1]
        self.runner: web.AppRunner = self.call(self._serve())

    def call(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout=120)

    async def _start(self, args: argparse.Namespace) -> Store:
        store = Store(MemoryBackend())
        await store.start()
        await store.update(lambda tx: _nodes(tx, args.nodes))
        per = args.tasks // args.services
        for s in range(args.services):  # a transaction holds 1,000 writes at most
            await store.update(lambda tx, s=s: _service(tx, s, per, args.nodes))
        return store

    async def _serve(self) -> web.AppRunner:
        runner = web.AppRunner(build_web_app(Source(self.store)), access_log=None, shutdown_timeout=2)
        await runner.setup()
        await web.TCPSite(runner, IP, self.port).start()
        return runner

    async def move(self, count: int) -> int:
        """Move ``count`` tasks to the next node (as a node's death does); the revision."""
        def fn(tx: Tx) -> None:
            nodes = sorted(n.id for n in tx.view.all(Node))
            for task in sorted(tx.view.all(Task), key=lambda t: t.id)[:count]:
                moved = copy(task)
                moved.node_id = nodes[(nodes.index(task.node_id) + 1) % len(nodes)]
                tx.update(moved)

        await self.store.update(fn)
        return int(self.store.revision)

    def close(self) -> None:
        self.call(self.runner.cleanup())
        self.call(self.store.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def _browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service as DriverService

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1600,1000", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=DriverService(CHROMEDRIVER))


def _wait(driver: Any, script: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.005)
    raise TimeoutError(f"no answer from {script!r} in {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--daemons", action="store_true", help="a real sim swarm of --nodes shoalds")
    parser.add_argument("--screenshot", default="", help="save the grid as this PNG")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    static = resources.files("shoal.web") / "static"
    files = {p: len((static / p).read_bytes()) for p in ("index.html", "app.js", "app.css")}
    print("page files: " + ", ".join(f"{p} {n / 1024:.1f} KiB" for p, n in files.items()))
    if args.daemons:
        from bench_web_swarm import run_on_daemons  # the real swarm's half

        run_on_daemons(args, loads=_loads, browser=_browser, wait=_wait)
        return
    server = Server(args)
    driver = None
    try:
        view, rev = server.store.view(), server.store.revision
        started = time.perf_counter()
        snap = snapshot(view, rev)
        built = time.perf_counter() - started
        body = msgspec.json.encode(snap)
        print(f"swarm: {args.nodes} nodes, {args.services} services, {len(snap['tasks'])} tasks (in process)")
        print(f"snapshot: built in {built * 1000:.1f} ms, {len(body) / 1024:.0f} KiB "
              f"({len(gzip.compress(body)) / 1024:.0f} KiB gzipped)")
        driver = _browser()
        _loads(driver, f"http://{IP}:{server.port}/", len(snap["tasks"]), args.loads)
        if args.screenshot:
            driver.save_screenshot(args.screenshot)
        delays = []
        for _ in range(5):
            started = time.perf_counter()
            revision = server.call(server.move(10))
            _wait(driver, f"return Number(document.body.dataset.revision) >= {revision}")
            delays.append((time.perf_counter() - started) * 1000)
        print(f"store commit (10 tasks moved) -> page redrawn: median {statistics.median(delays):.0f} ms, "
              f"max {max(delays):.0f} ms (includes the 50 ms batching gap)")
    finally:
        if driver is not None:
            driver.quit()
        server.close()


def _loads(driver: Any, url: str, tasks: int, loads: int) -> None:
    """Load the page ``loads`` times; print the first full render's times."""
    own, seen = [], []
    for _ in range(loads):
        driver.get("about:blank")
        started = time.perf_counter()
        driver.get(url)
        _wait(driver, f"return document.querySelectorAll('section.node a.task').length >= {tasks}")
        seen.append((time.perf_counter() - started) * 1000)
        own.append(float(_wait(driver, "return window.shoalFirstRender")))
    print(f"first full render, browser's clock (navigation start -> grid drawn): "
          f"median {statistics.median(own):.0f} ms, max {max(own):.0f} ms over {loads} loads")
    print(f"first full render, bench's clock (get -> {tasks} tasks in the DOM): "
          f"median {statistics.median(seen):.0f} ms, max {max(seen):.0f} ms")


if __name__ == "__main__":
    main()
