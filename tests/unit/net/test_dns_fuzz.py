"""Bad input on the embedded DNS server (issue 16): a real ``DNSServer`` and ``Resolver`` on
127.0.0.1, fed mutated queries, compression loops, counts past the packet, EDNS oddities and
random bytes over UDP and TCP, and TCP length prefixes that lie (``tests/fuzz/portfuzz.py``,
hypothesis). Every query with a header gets an answer with its ID; valid queries are still
answered right afterwards; a TCP asker that never reads its answers cannot make the server hold
more than a transport buffer, and its connection is cut off once idle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Mapping, Sequence

import pytest
from dnslib import QTYPE, DNSRecord

from shoal.dev.wait import wait_for_async
from shoal.net.dns import MAX_TCP_CONNECTIONS, DNSServer, Resolver
from tests.fuzz.portfuzz import Report, fuzz_dns

# the fuzzer draws its cases (hypothesis, seconds of CPU cold) on the loop the servers share;
# in a thread it would see the servers' use of `random` and refuse
pytestmark = pytest.mark.blocks_loop

NET = "net1"
WEB = [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(300)]  # an answer larger than 4 KiB


class Records:
    def networks(self, container_id: str) -> Mapping[str, str]:
        return {NET: "front"} if container_id == "c1" else {}

    def lookup_service(self, name: str, networks: Collection[str]) -> Sequence[str]:
        return ["10.0.9.1"] if name == "api" else []

    def lookup_tasks(self, service: str, networks: Collection[str]) -> Sequence[str]:
        return WEB if service == "web" else []

    def lookup_task_name(self, name: str, networks: Collection[str]) -> Sequence[str]:
        return []

    def lookup_address(self, address: str, networks: Collection[str]) -> str | None:
        return "api" if address == "10.0.9.1" else None


@pytest.fixture
async def server() -> AsyncIterator[DNSServer]:
    async with DNSServer(Resolver(Records()), "c1", host="127.0.0.1", port=0, idle=0.5) as s:
        yield s


async def _answers(server: DNSServer) -> list[str]:
    """``api``'s A records, asked over UDP as a container would."""
    assert server.udp_address is not None
    loop = asyncio.get_running_loop()
    reply = await loop.run_in_executor(None, lambda: DNSRecord.question("api").send(*server.udp_address, timeout=2))
    return [str(rr.rdata) for rr in DNSRecord.parse(reply).rr if rr.rtype == QTYPE.A]


async def test_the_dns_server_answers_every_bad_query_and_keeps_answering(server: DNSServer) -> None:
    assert server.udp_address is not None and server.tcp_address is not None
    report = Report()
    await fuzz_dns(server.udp_address, server.tcp_address, ["api", "tasks.web", "1.9.0.10.in-addr.arpa"],
                   report, n=300)
    print(report.summary())
    assert report.sent["dns"] > 600
    assert not report.failures, "\n".join(report.failures)
    assert await _answers(server) == ["10.0.9.1"]


async def test_an_asker_that_never_reads_its_answers_is_held_to_one_buffer() -> None:
    # its own server: an idle time long enough to look at the connection before it is cut off
    async with DNSServer(Resolver(Records()), "c1", host="127.0.0.1", port=0, idle=3.0) as server:
        assert server.tcp_address is not None
        _, writer = await asyncio.open_connection(*server.tcp_address)
        query = DNSRecord.question("tasks.web").pack()  # each answer ~40 times the query
        try:
            writer.write((len(query).to_bytes(2, "big") + query) * 3000)
            # the kernel's socket buffers fill first: a loaded machine takes a while to get there
            await wait_for_async("the server to stop reading", lambda: any(
                c._paused for c in server._connections), timeout=30)
            held = max(c._transport.get_write_buffer_size() for c in server._connections if c._transport)
            # asyncio's high-water mark is 64 KiB; 3000 answers would be about 10 MB
            assert held < 1024 * 1024, held
            await wait_for_async("the idle asker cut off", lambda: not server._connections, timeout=10)
        finally:
            writer.close()
        assert await _answers(server) == ["10.0.9.1"]


async def test_tcp_connections_past_the_cap_are_closed_at_once(server: DNSServer) -> None:
    assert server.tcp_address is not None
    conns = [await asyncio.open_connection(*server.tcp_address) for _ in range(MAX_TCP_CONNECTIONS)]
    try:
        await wait_for_async("all served", lambda: len(server._connections) == MAX_TCP_CONNECTIONS)
        reader, writer = await asyncio.open_connection(*server.tcp_address)
        conns.append((reader, writer))
        try:
            assert await asyncio.wait_for(reader.read(1), 5) == b""
        except ConnectionResetError:
            pass
        assert len(server._connections) == MAX_TCP_CONNECTIONS
    finally:
        for _, w in conns:
            w.close()
    assert await _answers(server) == ["10.0.9.1"]
