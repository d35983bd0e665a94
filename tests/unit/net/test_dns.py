"""The embedded DNS server (shoal.net.dns) over real sockets on 127.0.0.1: answers from a fake
Records, scoping to the asker's networks, forwarding to fake upstreams started here, SERVFAIL
from a dead one, TCP, truncation, and sockets passed in. Queries go through dnslib's client in a
thread, each bounded by its own timeout."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import Any, cast

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from shoal.net.dns import DNSServer, Forward, Resolver, sockets_in_netns
from shoal.store.etcd.testing import free_port

LOOP = "127.0.0.1"
FRONT, BACK = "n-front", "n-back"
TASKS = ["10.0.1.3", "10.0.1.4", "10.0.1.5"]
BIG = [f"10.0.3.{i}" for i in range(1, 101)]


class FakeRecords:
    """Records as the daemon will keep them: dictionaries keyed by (name, network ID)."""

    def __init__(self) -> None:
        self.attached: dict[str, dict[str, str]] = {
            "c-front": {FRONT: "front"},
            "c-both": {FRONT: "front", BACK: "back"},
        }
        self.services: dict[tuple[str, str], list[str]] = {
            ("web", FRONT): ["10.0.1.100"],
            ("rr", FRONT): ["10.0.1.7", "10.0.1.8"],      # dnsrr: the task addresses
            ("db", BACK): ["10.0.2.100"],
            ("v6", FRONT): ["fd00::1:100"],
        }
        self.tasks: dict[tuple[str, str], list[str]] = {
            ("web", FRONT): TASKS, ("rr", FRONT): ["10.0.1.7", "10.0.1.8"], ("big", FRONT): BIG,
        }
        self.task_names: dict[tuple[str, str], list[str]] = {("web.1.abc", FRONT): [TASKS[0]]}
        self.addresses: dict[tuple[str, str], str] = {
            (TASKS[0], FRONT): "web.1.abc", ("10.0.1.100", FRONT): "web",
            ("fd00::1:100", FRONT): "v6",
        }

    def networks(self, container_id: str) -> Mapping[str, str]:
        return self.attached.get(container_id, {})

    def _find(self, table: Mapping[tuple[str, str], Any], key: str,
              networks: Collection[str]) -> list[Any]:
        return [v for n in networks if (v := table.get((key, n))) is not None]

    def lookup_service(self, name: str, networks: Collection[str]) -> Sequence[str]:
        return [a for found in self._find(self.services, name, networks) for a in found]

    def lookup_tasks(self, service: str, networks: Collection[str]) -> Sequence[str]:
        return [a for found in self._find(self.tasks, service, networks) for a in found]

    def lookup_task_name(self, name: str, networks: Collection[str]) -> Sequence[str]:
        return [a for found in self._find(self.task_names, name, networks) for a in found]

    def lookup_address(self, address: str, networks: Collection[str]) -> str | None:
        found = self._find(self.addresses, address, networks)
        return str(found[0]) if found else None


class FakeUpstream(asyncio.DatagramProtocol):
    """A resolver on loopback: example.com -> 192.0.2.1, big.example.com truncated over UDP
    (whole over TCP), any other name NXDOMAIN."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.seen: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(upstream_answer(data, self.seen, tcp=False), addr)


def upstream_answer(data: bytes, seen: list[str], *, tcp: bool) -> bytes:
    request = DNSRecord.parse(data)
    name = str(request.q.qname).rstrip(".").lower()
    seen.append(name)
    reply = request.reply()
    if name == "example.com":
        reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A("192.0.2.1"), ttl=60))
    elif name == "big.example.com" and not tcp:
        reply.header.tc = 1
    elif name == "big.example.com":
        for i in range(1, 60):
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(f"192.0.2.{i}"), ttl=60))
    else:
        reply.header.rcode = RCODE.NXDOMAIN
    packed: bytes = reply.pack()
    return packed


def bound_pair() -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on the same free loopback port (a few tries: the port UDP picks
    may be in use over TCP)."""
    for _ in range(20):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            udp.bind((LOOP, 0))
            tcp.bind(udp.getsockname())
            return udp, tcp
        except OSError:
            udp.close()
            tcp.close()
    raise AssertionError("no port free for both UDP and TCP on loopback")


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[FakeUpstream, int]]:
    """The fake upstream on UDP and TCP, same port."""
    loop = asyncio.get_running_loop()
    udp, tcp_sock = bound_pair()
    port = udp.getsockname()[1]
    transport, proto = await loop.create_datagram_endpoint(FakeUpstream, sock=udp)

    async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        size = int.from_bytes(await reader.readexactly(2), "big")
        reply = upstream_answer(await reader.readexactly(size), proto.seen, tcp=True)
        writer.write(len(reply).to_bytes(2, "big") + reply)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(tcp, sock=tcp_sock)
    try:
        yield proto, port
    finally:
        transport.close()
        server.close()
        await server.wait_closed()


@pytest.fixture
async def served() -> AsyncIterator[tuple[Resolver, DNSServer]]:
    """A resolver with no upstream and c-front's server, bound to a free loopback port."""
    resolver = Resolver(FakeRecords())
    async with DNSServer(resolver, "c-front", host=LOOP, port=0) as server:
        yield resolver, server


async def ask(server: DNSServer, name: str, qtype: str = "A", *, tcp: bool = False) -> Any:
    address = server.tcp_address if tcp else server.udp_address
    assert address is not None
    query = DNSRecord.question(name, qtype)
    data = await asyncio.to_thread(query.send, address[0], address[1], tcp=tcp, timeout=5)
    return DNSRecord.parse(data)


def addresses(reply: Any) -> list[str]:
    return sorted(str(rr.rdata) for rr in reply.rr)


async def test_service_answers_its_vip(served: tuple[Resolver, DNSServer]) -> None:
    reply = await ask(served[1], "web")
    assert reply.header.rcode == RCODE.NOERROR and addresses(reply) == ["10.0.1.100"]
    assert reply.rr[0].ttl == 600


async def test_dnsrr_service_answers_task_addresses(served: tuple[Resolver, DNSServer]) -> None:
    assert addresses(await ask(served[1], "rr")) == ["10.0.1.7", "10.0.1.8"]


async def test_tasks_service_and_task_name(served: tuple[Resolver, DNSServer]) -> None:
    assert addresses(await ask(served[1], "tasks.web")) == TASKS
    assert addresses(await ask(served[1], "web.1.abc")) == [TASKS[0]]


async def test_names_ignore_case_and_trailing_dot(served: tuple[Resolver, DNSServer]) -> None:
    for name in ("WEB", "Web.", "TASKS.web.", "web.front", "WEB.FRONT."):
        reply = await ask(served[1], name)
        assert addresses(reply) != [] and str(reply.q.qname).rstrip(".") == name.rstrip(".")


async def test_unshared_network_is_not_answered(served: tuple[Resolver, DNSServer]) -> None:
    for name in ("db", "db.back", "nothing-here"):
        assert (await ask(served[1], name)).header.rcode == RCODE.NXDOMAIN


async def test_scope_follows_the_socket_asked() -> None:
    resolver = Resolver(FakeRecords())
    async with (DNSServer(resolver, "c-front", host=LOOP, port=0) as front,
                DNSServer(resolver, "c-both", host=LOOP, port=0) as both):
        assert (await ask(front, "db")).header.rcode == RCODE.NXDOMAIN
        assert addresses(await ask(both, "db")) == ["10.0.2.100"]
        assert addresses(await ask(both, "db.back")) == ["10.0.2.100"]


async def test_aaaa_and_other_types(served: tuple[Resolver, DNSServer]) -> None:
    reply = await ask(served[1], "web", "AAAA")
    assert reply.header.rcode == RCODE.NOERROR and reply.rr == []
    assert (await ask(served[1], "web", "MX")).header.rcode == RCODE.NOERROR
    assert addresses(await ask(served[1], "v6", "AAAA")) == ["fd00::1:100"]
    assert (await ask(served[1], "v6", "A")).rr == []


async def test_ptr_for_task_and_vip(served: tuple[Resolver, DNSServer]) -> None:
    reply = await ask(served[1], "3.1.0.10.in-addr.arpa", "PTR")
    assert [str(rr.rdata) for rr in reply.rr] == ["web.1.abc."]
    reply = await ask(served[1], "100.1.0.10.in-addr.arpa.", "PTR")
    assert [str(rr.rdata) for rr in reply.rr] == ["web."]
    v6 = "0.0.1.0.1.0.0.0" + ".0" * 22 + ".d.f.ip6.arpa"
    assert [str(rr.rdata) for rr in (await ask(served[1], v6, "PTR")).rr] == ["v6."]
    reply = await ask(served[1], "100.2.0.10.in-addr.arpa", "PTR")   # db's VIP, not shared
    assert reply.header.rcode == RCODE.NXDOMAIN


async def test_search_domain_is_stripped() -> None:
    resolver = Resolver(FakeRecords(), search=["corp.example."])
    async with DNSServer(resolver, "c-front", host=LOOP, port=0) as server:
        assert addresses(await ask(server, "web.corp.example")) == ["10.0.1.100"]


async def test_unknown_container_gets_nxdomain_without_upstream() -> None:
    async with DNSServer(Resolver(FakeRecords()), "c-gone", host=LOOP, port=0) as server:
        assert (await ask(server, "web")).header.rcode == RCODE.NXDOMAIN


async def test_tcp_queries(served: tuple[Resolver, DNSServer]) -> None:
    assert addresses(await ask(served[1], "tasks.web", tcp=True)) == TASKS
    assert (await ask(served[1], "db", tcp=True)).header.rcode == RCODE.NXDOMAIN


async def test_big_answer_truncated_over_udp_whole_over_tcp(
        served: tuple[Resolver, DNSServer]) -> None:
    udp = await ask(served[1], "tasks.big")
    assert udp.header.tc == 1 and 0 < len(udp.rr) < len(BIG) and len(udp.pack()) <= 512
    tcp = await ask(served[1], "tasks.big", tcp=True)
    assert tcp.header.tc == 0 and addresses(tcp) == sorted(BIG)


async def test_other_names_are_forwarded(upstream: tuple[FakeUpstream, int]) -> None:
    proto, port = upstream
    resolver = Resolver(FakeRecords(), [(LOOP, port)])
    async with DNSServer(resolver, "c-front", host=LOOP, port=0) as server:
        assert addresses(await ask(server, "example.com")) == ["192.0.2.1"]
        assert addresses(await ask(server, "example.com", tcp=True)) == ["192.0.2.1"]
        assert (await ask(server, "nope.example")).header.rcode == RCODE.NXDOMAIN
        assert addresses(await ask(server, "web")) == ["10.0.1.100"]    # local, not forwarded
        assert (await ask(server, "db")).header.rcode == RCODE.NXDOMAIN  # not shared: upstream's
        assert proto.seen == ["example.com", "example.com", "nope.example", "db"]


async def test_a_containers_own_servers_replace_the_nodes(
        upstream: tuple[FakeUpstream, int]) -> None:
    """--dns: the container's server forwards to the service's nameservers (Docker's
    ExtServers), not the node's; service names are still answered locally."""
    proto, port = upstream
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dead:   # the node's: never answers
        dead.bind((LOOP, 0))
        resolver = Resolver(FakeRecords(), [dead.getsockname()], timeout=0.2, budget=0.3)
        async with DNSServer(resolver, "c-front", host=LOOP, port=0,
                             upstreams=[(LOOP, port)]) as own, \
                DNSServer(resolver, "c-front", host=LOOP, port=0) as node:
            assert addresses(await ask(own, "example.com")) == ["192.0.2.1"]
            assert addresses(await ask(own, "example.com", tcp=True)) == ["192.0.2.1"]
            assert addresses(await ask(own, "web")) == ["10.0.1.100"]
            assert (await ask(node, "example.com")).header.rcode == RCODE.SERVFAIL
        assert proto.seen == ["example.com", "example.com"]
    alone = Resolver(FakeRecords())  # no node resolvers at all: the container's are asked
    async with DNSServer(alone, "c-front", host=LOOP, port=0, upstreams=[(LOOP, port)]) as own:
        assert addresses(await ask(own, "example.com")) == ["192.0.2.1"]


async def test_truncated_upstream_answer_then_tcp(upstream: tuple[FakeUpstream, int]) -> None:
    resolver = Resolver(FakeRecords(), [(LOOP, upstream[1])])
    async with DNSServer(resolver, "c-front", host=LOOP, port=0) as server:
        assert (await ask(server, "big.example.com")).header.tc == 1
        reply = await ask(server, "big.example.com", tcp=True)
        assert reply.header.tc == 0 and len(reply.rr) == 59


async def test_refused_upstream_then_the_next(upstream: tuple[FakeUpstream, int]) -> None:
    resolver = Resolver(FakeRecords(), [(LOOP, free_port()), (LOOP, upstream[1])])
    async with DNSServer(resolver, "c-front", host=LOOP, port=0) as server:
        assert addresses(await ask(server, "example.com")) == ["192.0.2.1"]


async def test_dead_upstream_gets_servfail() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dead:   # bound, never answers
        dead.bind((LOOP, 0))
        resolver = Resolver(FakeRecords(), [dead.getsockname(), dead.getsockname()],
                            timeout=0.2, budget=0.3)
        async with DNSServer(resolver, "c-front", host=LOOP, port=0) as server:
            assert (await ask(server, "example.com")).header.rcode == RCODE.SERVFAIL
            assert (await ask(server, "example.com", tcp=True)).header.rcode == RCODE.SERVFAIL


async def test_forward_limit_answers_servfail() -> None:
    resolver = Resolver(FakeRecords(), [(LOOP, 9)], max_forwards=0)
    query = resolver.handle(DNSRecord.question("example.com").pack(), "c-front", tcp=False)
    assert isinstance(query, Forward)
    reply = DNSRecord.parse(await resolver.forward(query, tcp=False))
    assert reply.header.rcode == RCODE.SERVFAIL


async def test_garbage_gets_formerr_or_nothing() -> None:
    resolver = Resolver(FakeRecords())
    reply = resolver.handle(b"\x12\x34" + b"\xff" * 14, "c-front", tcp=False)
    assert isinstance(reply, bytes)
    assert DNSRecord.parse(reply).header.rcode == RCODE.FORMERR
    assert DNSRecord.parse(reply).header.id == 0x1234
    assert resolver.handle(b"\x00", "c-front", tcp=False) is None
    answer = DNSRecord.question("web").reply().pack()       # a response, not a query
    assert resolver.handle(answer, "c-front", tcp=False) is None


async def test_sockets_passed_in() -> None:
    udp, tcp = bound_pair()           # bound, TCP not listening: the server listens
    port = udp.getsockname()[1]
    async with DNSServer(Resolver(FakeRecords()), "c-front", udp=udp, tcp=tcp) as server:
        assert server.udp_address == (LOOP, port) == server.tcp_address
        assert addresses(await ask(server, "web")) == ["10.0.1.100"]
        assert addresses(await ask(server, "web", tcp=True)) == ["10.0.1.100"]
    assert udp.fileno() == -1 and tcp.fileno() == -1      # the server owned and closed them


async def test_close_ends_idle_tcp_connections(served: tuple[Resolver, DNSServer]) -> None:
    address = served[1].tcp_address
    assert address is not None
    reader, writer = await asyncio.open_connection(*address)
    query = DNSRecord.question("web").pack()
    writer.write(len(query).to_bytes(2, "big") + query)
    size = int.from_bytes(await reader.readexactly(2), "big")
    assert DNSRecord.parse(await reader.readexactly(size)).rr
    await served[1].close()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="setns needs CAP_SYS_ADMIN")
async def test_sockets_in_netns() -> None:
    port = free_port()
    udp, tcp = await asyncio.to_thread(sockets_in_netns, "/proc/self/ns/net", LOOP, port)
    async with DNSServer(Resolver(FakeRecords()), "c-front", udp=udp, tcp=tcp) as server:
        assert addresses(await ask(server, "web")) == ["10.0.1.100"]
        assert addresses(await ask(server, "web", tcp=True)) == ["10.0.1.100"]
    with pytest.raises(OSError):
        sockets_in_netns("/nonexistent/ns", LOOP, port)
