"""The daemon's Prometheus metrics (``shoald --metrics-addr``), made with the official client.

Docker's names where Docker has one (moby internal/metrics, swarmkit manager/metrics and
dispatcher; ../shared/reference/swarm-features.md section 7), so dashboards made for dockerd
read Shoal's; ``shoal_*`` where Shoal knows more. Timers are histograms in seconds with
docker/go-metrics' default buckets, counters end in ``_total``. The parts observe these
module-level objects; counts read at scrape time (containers by state, nodes and tasks by
state) are collectors the daemon and the manager register (``register``/``unregister``).
One registry per process: a shoald is one node. docs/metrics.md lists every name.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, ParamSpec, TypeVar

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.registry import Collector

__all__ = [
    "AGENT_HEARTBEAT", "AGENT_SESSIONS", "BUCKETS", "CONTAINER_ACTIONS", "DISPATCHER_BATCH",
    "DNS_QUERIES", "DNS_SECONDS", "EVENTS", "EVENT_SUBSCRIBERS",
    "GOSSIP_MESSAGES", "HEALTH_CHECKS", "HEALTH_CHECKS_FAILED", "IMAGE_ACTIONS", "LEADER_CHANGES",
    "NFT_SECONDS", "NFT_UPDATES", "RAFT_TX", "RECONCILE", "REGISTRY", "SCHEDULING_DELAY",
    "STORE_READ", "STORE_WRITE", "register", "timed", "timed_async", "unregister",
]

disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: dockerd's (Go) metrics have none

P = ParamSpec("P")
T = TypeVar("T")

# docker/go-metrics' default timer buckets
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# -- the engine (every node) ------------------------------------------------------------------
CONTAINER_ACTIONS = Histogram("engine_daemon_container_actions_seconds",
                              "The number of seconds it takes to process each container action",
                              ["action"], buckets=BUCKETS)
for _action in ("changes", "commit", "create", "delete", "start"):  # dockerd pre-registers these
    CONTAINER_ACTIONS.labels(_action)
IMAGE_ACTIONS = Histogram("engine_daemon_image_actions_seconds",
                          "The number of seconds it takes to process each image action",
                          ["action"], buckets=BUCKETS)
HEALTH_CHECKS = Counter("engine_daemon_health_checks", "The total number of health checks")
HEALTH_CHECKS_FAILED = Counter("engine_daemon_health_checks_failed",
                               "The total number of failed health checks")
EVENTS = Counter("engine_daemon_events", "The number of events logged")
EVENT_SUBSCRIBERS = Gauge("engine_daemon_events_subscribers_total",
                          "The number of current subscribers to events")

# -- the agent --------------------------------------------------------------------------------
AGENT_HEARTBEAT = Histogram("shoal_agent_heartbeat_seconds",
                            "Round trip of the agent's heartbeats to its manager", buckets=BUCKETS)
AGENT_SESSIONS = Counter("shoal_agent_sessions", "Sessions the agent opened with a manager",
                         ["outcome"])

# -- the swarm (managers) ---------------------------------------------------------------------
SCHEDULING_DELAY = Histogram("swarm_dispatcher_scheduling_delay_seconds",
                             "Scheduling delay is the time a task takes to go from NEW to RUNNING state.",
                             buckets=BUCKETS)
STORE_WRITE = Histogram("swarm_store_write_tx_latency_seconds",
                        "Raft store write tx latency.", buckets=BUCKETS)
STORE_READ = Histogram("swarm_store_read_tx_latency_seconds",
                       "Raft store read tx latency (the linearizable read barrier).", buckets=BUCKETS)
RAFT_TX = Histogram("swarm_raft_transaction_latency_seconds",
                    "Raft transaction latency (an etcd transaction's commit).", buckets=BUCKETS)
LEADER_CHANGES = Counter("shoal_manager_leader_changes",
                         "Times this manager saw the swarm's leader change")
RECONCILE = Histogram("shoal_reconcile_seconds", "One pass of a manager's reconcile loop",
                      ["loop"], buckets=BUCKETS)
DISPATCHER_BATCH = Histogram("shoal_dispatcher_batch_size",
                             "Task status updates the dispatcher writes in one store transaction",
                             buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000))

# -- the data path (every node) ---------------------------------------------------------------
NFT_UPDATES = Counter("shoal_nftables_updates", "nftables rule sets applied", ["table"])
NFT_SECONDS = Histogram("shoal_nftables_update_seconds", "Time to apply one nftables rule set",
                        buckets=BUCKETS)
DNS_QUERIES = Counter("shoal_dns_queries", "Queries the embedded DNS server answered",
                      ["result"])
DNS_SECONDS = Histogram("shoal_dns_query_seconds", "Time the embedded DNS server took to answer",
                        buckets=BUCKETS)
GOSSIP_MESSAGES = Counter("shoal_gossip_messages",
                          "Gossip datagrams and push-pull exchanges, by outcome", ["outcome"])


@contextlib.contextmanager
def timed(histogram: Histogram) -> Iterator[None]:
    """Observe the block's duration, whether it raises or not."""
    start = time.monotonic()
    try:
        yield
    finally:
        histogram.observe(time.monotonic() - start)


def timed_async(histogram: Histogram) -> Callable[[Callable[P, Coroutine[Any, Any, T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """Decorate a coroutine function: each call's duration is observed."""
    def decorate(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            with timed(histogram):
                return await fn(*args, **kwargs)
        return wrapper
    return decorate


def register(collector: Collector) -> None:
    REGISTRY.register(collector)


def unregister(collector: Collector) -> None:
    with contextlib.suppress(KeyError):  # never registered (a part stopped before it started)
        REGISTRY.unregister(collector)
