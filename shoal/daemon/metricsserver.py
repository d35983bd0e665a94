"""``shoald --metrics-addr IP:PORT``: Prometheus text on ``GET /metrics``, plain HTTP as dockerd's
(off by default; dockerd binds it where it is told, and so does this). The engine's figures
read at scrape time come from this node (its info, CPUs, memory, containers by state, swarm
membership); the rest are the module-level metrics of ``shoal.metrics`` the parts observe and
the manager's collector (``shoal.manager.metrics``)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import platform
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shoal import __version__, metrics
from shoal.errors import InvalidArgument
from shoal.exec.executor import memory_bytes
from shoal.exec.runc.engine import ContainerEngine

__all__ = ["EngineFacts", "MetricsServer", "parse_addr"]

log = logging.getLogger(__name__)

_DOCKER_STATES = ("running", "paused", "stopped")


def parse_addr(addr: str) -> tuple[str, int]:
    """dockerd's ``--metrics-addr`` form, ``IP:PORT`` (IPv6 in brackets)."""
    host, sep, port = addr.rpartition(":")
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
        number = int(port)
    except ValueError:
        raise InvalidArgument(f"--metrics-addr {addr!r}: expected IP:PORT") from None
    if not sep or not 0 < number < 65536:
        raise InvalidArgument(f"--metrics-addr {addr!r}: expected IP:PORT")
    return str(ip), number


@dataclass(frozen=True)
class EngineFacts:
    hostname: str
    swarm: Callable[[], tuple[str, str, bool]]  # (cluster ID, node ID, is a manager); "" out of a swarm
    containers: ContainerEngine | None


class _EngineCollector(Collector):
    def __init__(self, facts: EngineFacts) -> None:
        self._facts = facts
        self.states: dict[str, int] = dict.fromkeys(_DOCKER_STATES, 0)  # refreshed per scrape

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "engine_daemon_engine_info", "The information related to the engine and the OS it is running on",
            labels=["architecture", "commit", "daemon_id", "graphdriver", "kernel", "os",
                    "os_type", "os_version", "version"])
        cluster, node, manager = self._facts.swarm()
        info.add_metric([platform.machine(), "", node or self._facts.hostname, "overlay2",
                         platform.release(), "Shoal", "linux", "", __version__], 1)
        yield info
        cpus = GaugeMetricFamily("engine_daemon_engine_cpus_cpus", "The number of cpus that the host system of the engine has")
        cpus.add_metric([], os.cpu_count() or 1)
        yield cpus
        memory = GaugeMetricFamily("engine_daemon_engine_memory_bytes", "The number of bytes of memory that the host system of the engine has")
        memory.add_metric([], memory_bytes())
        yield memory
        states = GaugeMetricFamily("engine_daemon_container_states_containers",
                                   "The count of containers in various states", labels=["state"])
        for state, count in self.states.items():
            states.add_metric([state], count)
        yield states
        if node:
            node_info = GaugeMetricFamily("swarm_node_info", "Information about the swarm node",
                                          labels=["node_id", "swarm_id"])
            node_info.add_metric([node, cluster], 1)
            yield node_info
            is_manager = GaugeMetricFamily("swarm_node_manager", "Whether this node is a manager or not")
            is_manager.add_metric([], 1 if manager else 0)
            yield is_manager


def _container_states(engine: ContainerEngine | None) -> dict[str, int]:
    """Docker's three: running, paused (never here), stopped (every other)."""
    counts = dict.fromkeys(_DOCKER_STATES, 0)
    if engine is None:
        return counts
    for cid in engine.containers.ids():
        running = engine.containers.state(cid).status == "running"
        counts["running" if running else "stopped"] += 1
    return counts


class MetricsServer:
    def __init__(self, addr: str, facts: EngineFacts) -> None:
        self._ip, self._port = parse_addr(addr)
        self._facts = facts
        self._collector = _EngineCollector(facts)
        self._runner: web.AppRunner | None = None
        self._render = asyncio.Lock()  # one scrape renders at a time

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._ip, self._port).start()
        except OSError as exc:
            await runner.cleanup()
            raise InvalidArgument(f"--metrics-addr {self._ip}:{self._port}: {exc.strerror}") from None
        self._runner = runner
        metrics.register(self._collector)
        log.info("metrics on http://%s:%d/metrics", self._ip, self._port)

    async def close(self) -> None:
        metrics.unregister(self._collector)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        async with self._render:
            # the container records are files: read them off the loop
            self._collector.states = await asyncio.to_thread(_container_states, self._facts.containers)
            body = generate_latest(metrics.REGISTRY)  # on the loop: the store's tables are read
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
