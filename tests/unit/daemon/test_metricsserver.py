"""``shoald --metrics-addr``: the address checked as dockerd's, Prometheus text served on
/metrics with the engine's own figures, and the listener closed again."""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shoal.daemon.metricsserver import EngineFacts, MetricsServer, parse_addr
from shoal.errors import InvalidArgument


@pytest.mark.parametrize("bad", ["", "9323", "localhost:9323", "127.0.0.1:0", "127.0.0.1:70000",
                                 "127.0.0.1:x", "[::1", "300.1.1.1:80"])
def test_bad_addresses_are_refused(bad: str) -> None:
    with pytest.raises(InvalidArgument, match="--metrics-addr"):
        parse_addr(bad)


def test_addresses() -> None:
    assert parse_addr("127.0.0.1:9323") == ("127.0.0.1", 9323)
    assert parse_addr("[::1]:9323") == ("::1", 9323)


async def test_serves_the_engine_figures_and_the_swarm_membership(unused_tcp_port: int) -> None:
    server = MetricsServer(f"127.0.0.1:{unused_tcp_port}",
                           EngineFacts("h1", swarm=lambda: ("c1", "n1", True), containers=None))
    await server.start()
    try:
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{unused_tcp_port}/metrics") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain; version=")
            text = await resp.text()
    finally:
        await server.close()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("swarm_node_info", (("node_id", "n1"), ("swarm_id", "c1")))] == 1
    assert samples[("swarm_node_manager", ())] == 1
    assert samples[("engine_daemon_container_states_containers", (("state", "running"),))] == 0
    assert samples[("engine_daemon_engine_cpus_cpus", ())] >= 1
    assert ("engine_daemon_container_actions_seconds_count", (("action", "create"),)) in samples
    assert not any(name.endswith("_created") for name, _ in samples)
    # closed: a new server may take the same port, and the engine collector is gone
    again = MetricsServer(f"127.0.0.1:{unused_tcp_port}",
                          EngineFacts("h1", swarm=lambda: ("", "", False), containers=None))
    await again.start()
    await again.close()


async def test_a_port_in_use_is_a_clear_error(unused_tcp_port: int) -> None:
    first = MetricsServer(f"127.0.0.1:{unused_tcp_port}",
                          EngineFacts("h1", swarm=lambda: ("", "", False), containers=None))
    await first.start()
    try:
        second = MetricsServer(f"127.0.0.1:{unused_tcp_port}",
                               EngineFacts("h1", swarm=lambda: ("", "", False), containers=None))
        with pytest.raises(InvalidArgument, match="in use"):
            await second.start()
    finally:
        await first.close()
