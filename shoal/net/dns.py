"""Embedded DNS: the server a container reaches at 127.0.0.11:53, over UDP and TCP.

What it answers, for the networks the asking container is attached to and no others (the
behaviour of libnetwork's resolver, ../shared/reference/swarmkit.md section 5.6):

    SERVICE             the service's VIP, or its task addresses in dnsrr mode (Records decides)
    tasks.SERVICE       the addresses of the service's tasks
    TASK NAME           that task's addresses
    NAME.NETWORK        any of the above, looked up in that one network
    PTR of an address   the task or service name holding it

Names are case-insensitive, with or without the trailing dot; a configured search domain is
stripped. A known name asked for AAAA (or any type without records) is an empty NOERROR; several
addresses come shuffled, TTL 600 s as docker's. Every other name is forwarded unchanged to the
node's resolvers (or the container's own, its service's ``--dns``, as Docker's ExtServers),
one after the other, over the transport the asker used (a truncated UDP answer
goes back as is, so the asker retries over TCP and that is forwarded over TCP). If none answers
within the budget the asker gets SERVFAIL; with no resolvers at all, NXDOMAIN: never silence.

Shape: one `Resolver` per node holds the `Records` (the daemon's view of services and tasks) and
the upstream list; one `DNSServer` per container holds that container's two sockets, which the
daemon creates inside the container's network namespace (`sockets_in_netns`) and passes in. The
socket a query arrives on says who asked, so nothing maps a source address to a container.
Forwarded queries leave from the daemon's own namespace.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self, cast

from dnslib import AAAA, EDNS0, OPCODE, PTR, QTYPE, RCODE, RR, A, DNSError, DNSHeader, DNSRecord

from shoal import aio, metrics
from shoal.net import netns
from shoal.net.errors import NetError

__all__ = ["ChainedRecords", "DNSServer", "Forward", "Records", "Resolver", "read_resolv_conf", "sockets_in_netns"]

log = logging.getLogger(__name__)

Upstream = tuple[str, int]
TTL = 600               # docker's answer TTL
UDP_SIZE = 512          # a UDP answer without EDNS0 (RFC 1035); larger ones are truncated, TC set
EDNS_SIZE = 4096        # the most we send over UDP to an asker that advertises more
MAX_TCP_CONNECTIONS = 64  # per container; more are closed at once (each may hold ~130 KiB)


class Records(Protocol):
    """What the resolver asks of the daemon's state, on every query and on the event loop:
    dictionary lookups, never I/O. Names come lower-cased without the trailing dot, networks
    as IDs, addresses as text ("10.0.1.5", "fd00::5"). An empty answer means "not here"."""

    def networks(self, container_id: str) -> Mapping[str, str]:
        """The networks the container is attached to, ID -> name; empty if unknown."""
        ...

    def lookup_service(self, name: str, networks: Collection[str]) -> Sequence[str]:
        """A service name or alias on those networks: its VIPs, or in dnsrr mode the
        addresses of its running (healthy) tasks."""
        ...

    def lookup_tasks(self, service: str, networks: Collection[str]) -> Sequence[str]:
        """``tasks.SERVICE``: the addresses of the service's running tasks on those networks."""
        ...

    def lookup_task_name(self, name: str, networks: Collection[str]) -> Sequence[str]:
        """A task's (container's) name or alias: its addresses on those networks."""
        ...

    def lookup_address(self, address: str, networks: Collection[str]) -> str | None:
        """PTR: the task or service name holding that address on those networks."""
        ...


class ChainedRecords:
    """Several `Records` as one (a standalone container on user bridge networks and swarm
    overlays): each part asked in turn, the first answer wins; ``parts`` are called per query,
    so a part that replaces its records object (the NetworkAgent's directory) is followed."""

    def __init__(self, *parts: Callable[[], Records]) -> None:
        self._parts = parts

    def networks(self, container_id: str) -> Mapping[str, str]:
        out: dict[str, str] = {}
        for part in self._parts:
            out.update(part().networks(container_id))
        return out

    def _first(self, ask: Callable[[Records], Sequence[str]]) -> Sequence[str]:
        for part in self._parts:
            found = ask(part())
            if found:
                return found
        return ()

    def lookup_service(self, name: str, networks: Collection[str]) -> Sequence[str]:
        return self._first(lambda r: r.lookup_service(name, networks))

    def lookup_tasks(self, service: str, networks: Collection[str]) -> Sequence[str]:
        return self._first(lambda r: r.lookup_tasks(service, networks))

    def lookup_task_name(self, name: str, networks: Collection[str]) -> Sequence[str]:
        return self._first(lambda r: r.lookup_task_name(name, networks))

    def lookup_address(self, address: str, networks: Collection[str]) -> str | None:
        for part in self._parts:
            found = part().lookup_address(address, networks)
            if found:
                return found
        return None


@dataclass(frozen=True, slots=True)
class Forward:
    """A query the records do not answer: ``data`` goes upstream as it came; ``servfail`` is
    the answer when no upstream gives one."""

    data: bytes
    servfail: bytes


class Resolver:
    """Answers queries from `Records`, forwards the rest; one per node, shared by the servers.

    ``timeout`` bounds one upstream's answer and ``budget`` the whole forward: docker waits 4 s
    per server, up to 3 servers, which outlasts the 5 s a glibc or musl client waits, so a dead
    upstream looked like a hang; 2 s each within 4 s answers SERVFAIL before the client gives up.
    ``max_forwards`` (docker's 1024) caps queries in flight upstream; past it, SERVFAIL.
    ``upstreams`` may be replaced at any time (the node's resolv.conf changed).
    """

    def __init__(self, records: Records, upstreams: Sequence[Upstream] = (), *,
                 search: Sequence[str] = (), timeout: float = 2.0, budget: float = 4.0,
                 ttl: int = TTL, max_forwards: int = 1024) -> None:
        self.records = records
        self.upstreams: list[Upstream] = list(upstreams)
        self._search = tuple("." + d.strip(".").lower() for d in search if d.strip("."))
        self._timeout = timeout
        self._budget = budget
        self._ttl = ttl
        self._max_forwards = max_forwards
        self._forwarding = 0

    def handle(self, data: bytes, container_id: str, *, tcp: bool,
               forwards: bool = False) -> bytes | Forward | None:
        """The answer to one query from ``container_id``, or a `Forward` to send upstream, or
        None when the packet deserves no answer (not DNS, or a response). ``forwards``: the
        container has upstreams of its own."""
        try:
            request = DNSRecord.parse(data)
        except (DNSError, ValueError, IndexError, UnicodeError):   # what dnslib raises on junk
            return _bare(data, RCODE.FORMERR)
        if request.header.qr:
            return None
        if request.header.opcode != OPCODE.QUERY:
            return _error(request, RCODE.NOTIMP)
        if len(request.questions) != 1:
            return _error(request, RCODE.FORMERR)
        networks = self.records.networks(container_id)
        reply = self._local(request, networks) if networks else None
        if reply is None:
            if self.upstreams or forwards:
                return Forward(data, _error(request, RCODE.SERVFAIL))
            reply = request.reply()
            reply.header.rcode = RCODE.NXDOMAIN
        return _pack(reply, request, tcp=tcp)

    async def forward(self, query: Forward, *, tcp: bool,
                      upstreams: Sequence[Upstream] | None = None) -> bytes:
        """The first upstream answer to ``query`` (same transport as the asker's), or SERVFAIL
        once every upstream failed or the budget ran out. ``upstreams``: the asking
        container's own (its service's ``--dns``), instead of the node's."""
        if self._forwarding >= self._max_forwards:
            log.warning("more than %d queries forwarded at once: SERVFAIL", self._max_forwards)
            return query.servfail
        self._forwarding += 1
        try:
            async with aio.timeout(self._budget):
                for upstream in list(self.upstreams if upstreams is None else upstreams):
                    try:
                        async with aio.timeout(self._timeout):
                            return await (_ask_tcp if tcp else _ask_udp)(upstream, query.data)
                    except (TimeoutError, OSError, EOFError) as e:
                        log.debug("upstream %s:%d: %r", upstream[0], upstream[1], e)
        except TimeoutError:
            log.debug("no upstream answered within %.1f s", self._budget)
        finally:
            self._forwarding -= 1
        return query.servfail

    async def resolve(self, data: bytes, container_id: str, *, tcp: bool = False,
                      upstreams: Sequence[Upstream] | None = None) -> bytes | None:
        """`handle` then, if needed, `forward`: the whole answer to one query."""
        with metrics.timed(metrics.DNS_SECONDS):
            out = self.handle(data, container_id, tcp=tcp, forwards=bool(upstreams))
            if isinstance(out, Forward):
                metrics.DNS_QUERIES.labels("forwarded").inc()
                return await self.forward(out, tcp=tcp, upstreams=upstreams)
        metrics.DNS_QUERIES.labels("local" if out is not None else "dropped").inc()
        return out

    def _local(self, request: Any, networks: Mapping[str, str]) -> Any:
        q = request.q
        name = str(q.qname).rstrip(".").lower()
        for domain in self._search:
            if name.endswith(domain):
                name = name[:-len(domain)]
                break
        if q.qtype == QTYPE.PTR:
            address = _reversed_address(name)
            target = address and self.records.lookup_address(address, networks.keys())
            if not target:
                return None
            reply = request.reply()
            reply.add_answer(RR(q.qname, QTYPE.PTR, rdata=PTR(target + "."), ttl=self._ttl))
            return reply
        addresses = self._addresses(name, networks)
        if not addresses:
            return None
        reply = request.reply()
        shuffled = random.sample(addresses, len(addresses))
        if q.qtype in (QTYPE.A, QTYPE.ANY):
            for a in shuffled:
                if ":" not in a:
                    reply.add_answer(RR(q.qname, QTYPE.A, rdata=A(a), ttl=self._ttl))
        if q.qtype in (QTYPE.AAAA, QTYPE.ANY):
            for a in shuffled:
                if ":" in a:
                    reply.add_answer(RR(q.qname, QTYPE.AAAA, rdata=AAAA(a), ttl=self._ttl))
        return reply

    def _addresses(self, name: str, networks: Mapping[str, str]) -> Sequence[str]:
        """Docker's order: the whole name on every shared network, then NAME.NETWORK."""
        found = self._lookup(name, networks.keys())
        if found:
            return found
        for network_id, network_name in networks.items():
            suffix = "." + network_name.lower()
            if name.endswith(suffix) and len(name) > len(suffix):
                found = self._lookup(name[:-len(suffix)], (network_id,))
                if found:
                    return found
        return ()

    def _lookup(self, name: str, networks: Collection[str]) -> Sequence[str]:
        if name.startswith("tasks."):
            found = self.records.lookup_tasks(name[6:], networks)
            if found:
                return found
        return (self.records.lookup_service(name, networks)
                or self.records.lookup_task_name(name, networks))


def _pack(reply: Any, request: Any, *, tcp: bool) -> bytes:
    """Pack ``reply``; what does not fit the asker's limit is cut, with TC set."""
    limit = 65535 if tcp else UDP_SIZE
    for rr in request.ar:
        if rr.rtype == QTYPE.OPT:
            limit = 65535 if tcp else max(UDP_SIZE, min(int(rr.edns_len), EDNS_SIZE))
            reply.add_ar(EDNS0(udp_len=EDNS_SIZE))
            break
    packed = bytes(reply.pack())   # dnslib packs a bytearray
    while len(packed) > limit and reply.rr:
        reply.rr = reply.rr[:len(reply.rr) * limit // len(packed)]
        reply.header.tc = 1
        packed = bytes(reply.pack())
    return packed


def _error(request: Any, rcode: int) -> bytes:
    reply = request.reply()
    reply.header.rcode = rcode
    return bytes(reply.pack())


def _bare(data: bytes, rcode: int) -> bytes | None:
    """An error answer with the query's ID and nothing else, for a query too broken to parse."""
    if len(data) < 12:
        return None
    header = DNSHeader(id=int.from_bytes(data[:2], "big"), qr=1, rcode=rcode)
    return bytes(DNSRecord(header).pack())


def _reversed_address(name: str) -> str | None:
    """1.0.0.10.in-addr.arpa -> 10.0.0.1; the 32 nibbles of an ip6.arpa name -> IPv6."""
    if name.endswith(".in-addr.arpa"):
        labels = name[:-len(".in-addr.arpa")].split(".")
        text = ".".join(reversed(labels)) if len(labels) == 4 else ""
    elif name.endswith(".ip6.arpa"):
        nibbles = "".join(reversed(name[:-len(".ip6.arpa")].split(".")))
        text = ":".join(nibbles[i:i + 4] for i in range(0, 32, 4)) if len(nibbles) == 32 else ""
    else:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


async def _ask_udp(upstream: Upstream, data: bytes) -> bytes:
    """One query over a connected UDP socket (a refused port fails at once, and only the
    upstream's packets are read); answers with another ID are ignored."""
    loop = asyncio.get_running_loop()
    with socket.socket(_family(upstream[0]), socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, upstream)
        await loop.sock_sendall(sock, data)
        while True:
            reply = await loop.sock_recv(sock, 65535)
            if len(reply) >= 12 and reply[:2] == data[:2]:
                return reply


async def _ask_tcp(upstream: Upstream, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(*upstream)
    try:
        writer.write(len(data).to_bytes(2, "big") + data)
        size = int.from_bytes(await reader.readexactly(2), "big")
        return await reader.readexactly(size)
    finally:
        writer.close()


def read_resolv_conf(path: str = "/etc/resolv.conf") -> tuple[list[Upstream], list[str]]:
    """The node's resolvers (port 53) and search domains, for forwarding. Loopback resolvers
    (systemd-resolved's 127.0.0.53) are kept: forwarded queries leave from the daemon's own
    namespace, where they answer."""
    upstreams: list[Upstream] = []
    search: list[str] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return [], []
    for line in lines:
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and words[0] == "nameserver":
            with_zone = words[1].split("%", 1)[0]
            try:
                ipaddress.ip_address(with_zone)
            except ValueError:
                continue
            upstreams.append((with_zone, 53))
        elif words[:1] == ["search"]:
            search = words[1:]
    return upstreams, search


def sockets_in_netns(ns_path: str, host: str = "127.0.0.11",
                     port: int = 53) -> tuple[socket.socket, socket.socket]:
    """A UDP and a listening TCP socket bound to (host, port) inside the network namespace at
    ``ns_path`` (/run/netns/NAME, /proc/PID/ns/net), for `DNSServer`; OSError when it cannot.
    A socket stays in the namespace it was made in, whoever uses it later (0.3 ms,
    ../shared/reference/linux.md section 5). Needs CAP_SYS_ADMIN, and ``lo`` up in that
    namespace for 127.0.0.11."""

    def make() -> tuple[socket.socket, socket.socket]:
        made: list[socket.socket] = []
        try:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                sock = socket.socket(_family(host), kind)
                made.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((host, port))
            made[1].listen(128)
        except OSError:
            for sock in made:
                sock.close()
            raise
        return made[0], made[1]

    try:
        return netns.run_in(ns_path, make)
    except NetError as exc:
        raise OSError(str(exc)) from exc


class DNSServer:
    """One container's DNS server: UDP and TCP (2-byte length framing) on the same address.

    Given ``udp`` and/or ``tcp`` (sockets already bound, e.g. by `sockets_in_netns`), it
    serves those and owns them from then on; given neither, it binds both to (host, port),
    TCP on the port UDP got (port 0: a free one). `start` then `close`, or ``async with``.
    """

    def __init__(self, resolver: Resolver, container_id: str, *, host: str = "127.0.0.11",
                 port: int = 53, udp: socket.socket | None = None,
                 tcp: socket.socket | None = None, idle: float = 10.0,
                 upstreams: Sequence[Upstream] | None = None) -> None:
        self.resolver = resolver
        self.container_id = container_id
        self.upstreams = list(upstreams) if upstreams else None  # --dns, else the node's
        self._bind = (host, port) if udp is None and tcp is None else None
        self._udp_sock, self._tcp_sock = udp, tcp
        self._idle = idle   # a TCP connection with no query for this long is closed
        self._udp: asyncio.DatagramTransport | None = None
        self._udp_lost: asyncio.Future[None] | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: set[_TCPConnection] = set()
        self._forwards: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def udp_address(self) -> tuple[str, int] | None:
        return _address(self._udp_sock)

    @property
    def tcp_address(self) -> tuple[str, int] | None:
        return _address(self._tcp_sock)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            if self._bind is not None:
                self._udp_sock, self._tcp_sock = _bind_pair(*self._bind)
            if self._udp_sock is not None:
                self._udp_lost = lost = loop.create_future()
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _UDPProtocol(self, lost), sock=self._udp_sock)
                self._udp = transport
            if self._tcp_sock is not None:
                self._tcp = await loop.create_server(
                    lambda: _TCPConnection(self), sock=self._tcp_sock)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop serving: sockets and connections closed, forwards in flight cancelled."""
        self._closed = True
        if self._udp is not None:
            self._udp.close()
        elif self._udp_sock is not None:
            self._udp_sock.close()
        if self._tcp is not None:
            self._tcp.close()
        elif self._tcp_sock is not None:
            self._tcp_sock.close()
        for connection in list(self._connections):
            connection.close()
        await aio.cancel_and_wait(*self._forwards)
        if self._udp is not None and self._udp_lost is not None:
            await self._udp_lost        # the transport closes its socket on the next loop turn
        if self._tcp is not None:
            await self._tcp.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def query(self, data: bytes, *, tcp: bool, send: Callable[[bytes], None]) -> None:
        """Answer one query: at once from the records, or from a task that forwards it."""
        out = self.resolver.handle(data, self.container_id, tcp=tcp,
                                   forwards=bool(self.upstreams))
        if isinstance(out, Forward):
            task = asyncio.get_running_loop().create_task(
                self._forward(out, tcp, send), name="dns-forward")
            self._forwards.add(task)
            task.add_done_callback(self._forwards.discard)
        elif out is not None:
            send(out)

    async def _forward(self, query: Forward, tcp: bool, send: Callable[[bytes], None]) -> None:
        reply = await self.resolver.forward(query, tcp=tcp, upstreams=self.upstreams)
        if not self._closed:
            send(reply)


def _bind_pair(host: str, port: int) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on (host, port); port 0: a port free for both (a few tries, as
    the port UDP picks may be taken over TCP)."""
    for attempt in range(20 if port == 0 else 1):
        udp = socket.socket(_family(host), socket.SOCK_DGRAM)
        tcp = socket.socket(_family(host), socket.SOCK_STREAM)
        try:
            udp.bind((host, port))
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((host, udp.getsockname()[1]))
            return udp, tcp
        except OSError:
            udp.close()
            tcp.close()
            if attempt == (19 if port == 0 else 0):
                raise
    raise AssertionError("unreachable")


def _address(sock: socket.socket | None) -> tuple[str, int] | None:
    if sock is None or sock.fileno() < 0:
        return None
    host, port = sock.getsockname()[:2]
    return str(host), int(port)


class _UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer, lost: asyncio.Future[None]) -> None:
        self._server = server
        self._lost = lost
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)  # not a subclass in 3.11

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        transport = self._transport
        if transport is None:
            return

        def send(reply: bytes) -> None:
            if not transport.is_closing():
                transport.sendto(reply, addr)
        self._server.query(data, tcp=False, send=send)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._lost.done():
            self._lost.set_result(None)

    def error_received(self, exc: Exception) -> None:
        log.debug("dns udp: %r", exc)   # an ICMP error for an earlier answer: nothing to do


class _TCPConnection(asyncio.Protocol):
    """One asker's TCP connection: queries framed by a 2-byte length, answered in any order
    (each carries its ID), closed after ``idle`` seconds without a query. An asker that sends
    queries but reads no answers is not read any further once its answers fill the transport's
    buffer (asyncio's high-water mark), so what it can make the daemon hold stays bounded, and
    it is cut off ``idle`` seconds later."""

    def __init__(self, server: DNSServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._timer: asyncio.TimerHandle | None = None
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if len(self._server._connections) >= MAX_TCP_CONNECTIONS:
            log.warning("dns: more than %d TCP connections, one closed", MAX_TCP_CONNECTIONS)
            transport.abort()
            return
        self._server._connections.add(self)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._server._connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._arm()
        self._answer()

    def pause_writing(self) -> None:
        self._paused = True
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._paused = False
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()
            self._answer()

    def _answer(self) -> None:
        while len(self._buffer) >= 2 and not self._paused:
            size = int.from_bytes(self._buffer[:2], "big")
            if len(self._buffer) < 2 + size:
                break
            message = bytes(self._buffer[2:2 + size])
            del self._buffer[:2 + size]
            self._server.query(message, tcp=True, send=self._send)

    def close(self) -> None:
        if self._transport is not None:  # answers it never read would hold it open: aborted
            self._transport.abort()

    def _send(self, reply: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(len(reply).to_bytes(2, "big") + reply)

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self._server._idle, self.close)
