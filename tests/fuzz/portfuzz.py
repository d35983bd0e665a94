"""Bad input for Shoal's ports other than the Engine API: the swarm port (2377, mutual TLS), the
gossip port (7946, UDP and TCP, AES-GCM sealed) and the embedded DNS server.

Inputs come from hypothesis, drawn up front (``draw``: a fixed seed, no shrinking; the inputs
that failed are printed whole), around hand-written adversarial cases. Each sender records what
it sent and how each input was answered in a ``Report``; what no correct server does is a
failure, recorded and never raised mid-run:

- swarm port: a 5xx, a 2xx to a request that is not valid, no answer within ``ANSWER_WAIT``; a
  session message answered by anything but its answer or a close with 1003/1007/1009 (1011: the
  handler crashed; a frame past the 64 MiB limit may see the connection dropped, 1006);
- gossip: nothing is answered (sealed frames go nowhere without the key); the node is checked
  afterwards by the caller (its loops alive, a real peer still converges);
- DNS: no answer to a query that has an ID (a parsed query gets an answer, an unparsable one
  FORMERR), a valid query not answered correctly afterwards.

Used by the unit tests (the real servers in process), ``tests/integration/test_port_fuzz.py``
(shoald processes) and ``bench/bench_port_fuzz.py`` (a longer run).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import socket
import ssl
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import hypothesis
import msgspec
from dnslib import EDNS0, DNSRecord
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from shoal.model.dispatch import (
    DetachNetwork,
    Heartbeat,
    HeartbeatAck,
    LogBatch,
    LogEntry,
    Register,
    StatusUpdate,
    TaskStatusUpdate,
    TLSReport,
    decode_message,
    encode_message,
)
from shoal.model.objects import NodeDescription, TaskStatus, TLSInfo
from shoal.net.gossip_wire import Gossip, Keyring, MemberMsg, Ping, State, encode, frame_header
from shoal.pki import NodeIdentity

__all__ = ["ANSWER_WAIT", "Report", "draw", "fuzz_ca", "fuzz_dns", "fuzz_gossip", "fuzz_sessions",
           "slow_senders"]

T = TypeVar("T")
ANSWER_WAIT = 10.0  # seconds an answer may take before it counts as a hang
SERVER_NAME = "swarm-manager"
_CLOSE_REFUSED = {1003, 1007, 1009}  # unsupported data, invalid payload, message too big


@dataclass
class Report:
    sent: Counter[str] = field(default_factory=Counter)  # inputs per port
    outcomes: Counter[str] = field(default_factory=Counter)  # "port:how it was answered"
    failures: list[str] = field(default_factory=list)

    def answered(self, port: str, how: str) -> None:
        self.outcomes[f"{port}:{how}"] += 1

    def fail(self, port: str, what: str) -> None:
        self.outcomes[f"{port}:FAILURE"] += 1
        if len(self.failures) < 100:  # the first ones say enough
            self.failures.append(f"{port}: {what}")

    def summary(self) -> str:
        sent = " ".join(f"{k}={v}" for k, v in sorted(self.sent.items()))
        outcomes = " ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items()))
        return f"sent {sent}; answers {outcomes}; {len(self.failures)} failures"


def draw(strategy: st.SearchStrategy[T], n: int, *, seed: int = 0) -> list[T]:
    """``n`` examples of ``strategy``, the same ones for the same seed."""
    out: list[T] = []

    @hypothesis.seed(seed)
    @settings(max_examples=n, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(value: T) -> None:
        out.append(value)

    collect()
    return out[:n]


# -- values -----------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30) | st.sampled_from(["", "0001-01-01T00:00:00Z", "127.0.0.1", "\u0000", "a" * 300]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10)


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def _set_path(doc: Any, path: list[str | int], value: Any) -> Any:
    """A copy of ``doc`` with the value at ``path`` replaced (or added)."""
    if not path:
        return value
    copy: Any = json.loads(json.dumps(doc))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copy


def _paths(doc: Any, prefix: list[str | int] | None = None) -> list[list[str | int]]:
    prefix = prefix or []
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, [*prefix, k])
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, [*prefix, i])
    return out


def mutations(template: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """``template`` (a valid document) with one value replaced by any JSON, a key dropped,
    truncated, or replaced whole by bytes or JSON of any shape."""
    raw = _dumps(template)
    paths = _paths(template)[1:]
    replaced = st.tuples(st.sampled_from(paths), JSON).map(lambda pv: _dumps(_set_path(template, pv[0], pv[1])))
    dropped = st.sampled_from(list(template)).map(lambda k: _dumps({x: v for x, v in template.items() if x != k}))
    truncated = st.integers(0, len(raw) - 1).map(lambda i: raw[:i])
    return st.one_of(replaced, replaced, dropped, truncated, JSON.map(_dumps), st.binary(max_size=64))


# -- the swarm port ---------------------------------------------------------------------------

def _no_cert_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # a stranger: it does not know the swarm's root yet
    return ctx


def join_cases(token: str, n: int, *, seed: int = 0) -> list[bytes]:
    """Join bodies none of which may succeed: the CSR is never a valid one."""
    template = {"Token": token, "CSR": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n",
                "Availability": "active", "Hostname": "fuzz", "AdvertiseAddr": "127.0.0.1"}
    hand = [b"", b"[]", b"null", b'"x"', b"{" * 10_000, b"\xff\xfe", _dumps({**template, "Token": ["x"]}),
            _dumps({**template, "AdvertiseAddr": "not an address"}), _dumps({**template, "Hostname": {"a": 1}}),
            _dumps({**template, "Token": "\ud800"}), b'{"Token": "' + b"A" * (2 * 1024 * 1024) + b'"}']
    return hand + draw(mutations(template), n, seed=seed)


async def _post(http: aiohttp.ClientSession, url: str, body: bytes, ctx: ssl.SSLContext) -> tuple[int, str]:
    async with asyncio.timeout(ANSWER_WAIT):
        async with http.post(url, data=io.BytesIO(body), ssl=ctx, server_hostname=SERVER_NAME,
                             headers={"Content-Type": "application/json"}, allow_redirects=False) as r:
            return r.status, (await r.text())[:200]


async def fuzz_ca(addr: str, token: str, worker: NodeIdentity, report: Report, *, n: int,
                  seed: int = 0) -> None:
    """``/ca/join`` without a certificate, ``/ca/renew`` and ``/ca/raft`` with a worker's: every
    answer a 4xx with a JSON message (413 for a body over aiohttp's 1 MiB, aiohttp's own)."""
    bodies = join_cases(token, n, seed=seed)
    renewals = [b"", b"[]", b"1", b'{"CSR": 5}', b'{"CSR": "junk"}'] + draw(
        mutations({"CSR": "junk"}), n // 4, seed=seed)
    # one context of each kind, made in threads: loading the CA roots costs a second of CPU
    stranger = await asyncio.to_thread(_no_cert_context)
    known = await asyncio.to_thread(worker.client_ssl_context)
    calls = ([("/ca/join", b, stranger) for b in bodies]
             + [("/ca/renew", b, known) for b in renewals]
             + [("/ca/raft", b, known) for b in renewals[:5]])
    async with aiohttp.ClientSession() as http:
        for path, body, ctx in calls:
            report.sent["swarm"] += 1
            try:
                status, text = await _post(http, f"https://{addr}{path}", body, ctx)
            except TimeoutError:
                report.fail("swarm", f"{path} {body[:80]!r}: no answer within {ANSWER_WAIT:g} s")
                continue
            except aiohttp.ClientError as exc:
                report.fail("swarm", f"{path} {body[:80]!r}: {exc!r}")
                continue
            report.answered("swarm", f"{path}:{status}")
            if not 400 <= status < 500 or (status != 413 and '"message"' not in text):
                report.fail("swarm", f"{path} {body[:80]!r}: {status} {text}")


def session_cases(n: int, *, seed: int = 0) -> list[str | bytes]:
    """Session frames: the agent's messages with one value changed, truncated, junk; binary."""
    status = TaskStatus(timestamp="2026-01-01T00:00:00.5Z", state="running", message="m")
    templates = [Register(description=NodeDescription(hostname="fuzz"), addr="127.0.0.1"), Heartbeat(),
                 StatusUpdate(updates=[TaskStatusUpdate(task_id="t", status=status)]),
                 LogBatch(subscription_id="s", entries=[LogEntry(task_id="t", stream=1, time=1, data=b"x")]),
                 TLSReport(tls_info=TLSInfo(trust_root="r")), DetachNetwork(task_id="t")]
    docs = [json.loads(encode_message(t)) for t in templates]
    frames: list[str | bytes] = ["", "garbage", "[]", "{}", '{"Type": "nope"}', '{"Type": "register"}',
                                 b"\x00binary", ('{"Type": "log_batch", "SubscriptionID": "s", "Entries": '
                                                  '[["t", 1, 99999999999999999999999, ""]]}')]
    for i, doc in enumerate(docs):
        frames += [b.decode(errors="replace") for b in draw(mutations(doc), max(1, n // len(docs)), seed=seed + i)]
    return frames


async def _exchange(ws: aiohttp.ClientWebSocketResponse, frame: str | bytes) -> str:
    """Send ``frame`` then a heartbeat: "ack" when the session went on, else "close-<code>"."""
    if isinstance(frame, bytes):
        await ws.send_bytes(frame)
    else:
        await ws.send_str(frame)
    await ws.send_str(encode_message(Heartbeat()))
    async with asyncio.timeout(ANSWER_WAIT):
        while True:
            msg = await ws.receive()
            if msg.type == aiohttp.WSMsgType.TEXT:
                if isinstance(decode_message(msg.data), HeartbeatAck):
                    return "ack"
                continue  # a SessionInfo, Assignments... after a Register
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                return f"close-{ws.close_code}"
            return f"other-{msg.type.name}"


async def fuzz_sessions(addr: str, worker: NodeIdentity, report: Report, *, n: int, seed: int = 0,
                        oversized: bool = False) -> None:
    """One session per frame, with the worker's certificate; ``oversized``: one frame past the
    dispatcher's 64 MiB too (slow: it is sent whole)."""
    frames = session_cases(n, seed=seed)
    if oversized:
        frames.append("x" * (64 * 1024 * 1024 + 1))
    known = await asyncio.to_thread(worker.client_ssl_context)
    async with aiohttp.ClientSession() as http:
        for frame in frames:
            report.sent["swarm"] += 1
            try:
                async with asyncio.timeout(ANSWER_WAIT):
                    ws = await http.ws_connect(f"wss://{addr}/session", ssl=known,
                                               server_hostname=SERVER_NAME, max_msg_size=0)
                try:
                    how = await _exchange(ws, frame)
                finally:
                    await ws.close()
            except TimeoutError:
                report.fail("swarm", f"session {frame[:80]!r}: no answer within {ANSWER_WAIT:g} s")
                continue
            except (aiohttp.ClientError, ConnectionError) as exc:
                report.fail("swarm", f"session {frame[:80]!r}: {exc!r}")
                continue
            report.answered("swarm", f"session:{how}")
            # past max_msg_size, aiohttp drops the connection without a close frame (1006)
            refused = _CLOSE_REFUSED | ({1006} if len(frame) > 64 * 1024 * 1024 else set())
            if how != "ack" and not any(how == f"close-{c}" for c in refused):
                report.fail("swarm", f"session {frame[:80]!r}: {how}")


async def slow_senders(addr: str, report: Report, *, count: int, hold: float) -> int:
    """``count`` strangers that open TLS and send half a join request, then nothing, for
    ``hold`` seconds; the number the manager had cut off by then."""
    ctx = await asyncio.to_thread(_no_cert_context)
    conns = []
    host, port = addr.rsplit(":", 1)
    for _ in range(count):
        report.sent["swarm"] += 1
        reader, writer = await asyncio.open_connection(host, int(port), ssl=ctx, server_hostname=SERVER_NAME)
        writer.write(b"POST /ca/join HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"Tok")
        await writer.drain()
        conns.append((reader, writer))
    await asyncio.sleep(hold)
    cut = 0
    for reader, writer in conns:
        try:
            async with asyncio.timeout(0.5):
                data = await reader.read(4096)
            cut += 1
            report.answered("swarm", "slow:" + (data.split(b" ", 2)[1].decode(errors="replace") if data else "closed"))
        except (TimeoutError, ConnectionError):
            report.answered("swarm", "slow:still-open")
        await _close(writer)
    return cut


# -- gossip -----------------------------------------------------------------------------------

def gossip_cases(key: bytes, n: int, *, seed: int = 0) -> list[bytes]:
    """Datagrams: random bytes, sealed random plaintexts, garbled and truncated sealed frames,
    sealed messages holding what no node sends (ports, clocks, names)."""
    ring = Keyring([key])
    valid = ring.seal(encode(Gossip("fuzz-src", members=[MemberMsg("fuzz-m", "127.0.0.1", 7946, 1, State.ALIVE)])))
    bad = [Gossip("s", members=[MemberMsg("m", "127.0.0.1", 70000, 1, State.ALIVE)]),
           Gossip("s", members=[MemberMsg("m", "no.such.name", 1, 1, State.ALIVE)]),
           Gossip("s", members=[MemberMsg("m", "127.0.0.1", 1, 2**64 - 1, State.SUSPECT)]),
           Ping(1, "s", "t", members=[MemberMsg("m" * 5000, "127.0.0.1", 1, 1, State.ALIVE)])]
    hand = [b"", b"\x01", valid, valid[:-1], valid[:20], bytes([2]) + valid[1:]] + [ring.seal(encode(m)) for m in bad]
    garbled = st.tuples(st.integers(0, len(valid) - 1), st.integers(1, 255)).map(
        lambda ib: valid[:ib[0]] + bytes([valid[ib[0]] ^ ib[1]]) + valid[ib[0] + 1:])
    sealed_junk = st.binary(max_size=300).map(ring.seal)
    sealed_arrays = st.tuples(st.integers(0, 8), st.lists(JSON, max_size=6)).map(
        lambda tv: ring.seal(_msgpack([tv[0], *tv[1]])))
    return hand + draw(st.one_of(st.binary(max_size=1500), garbled, sealed_junk, sealed_arrays), n, seed=seed)


def _msgpack(value: list[Any]) -> bytes:
    """A message's shape (an array whose first item is the type tag) with any values."""
    try:
        return msgspec.msgpack.encode(value)
    except (OverflowError, TypeError):  # an int past 64 bits
        return b"\x90"


async def fuzz_gossip(addr: tuple[str, int], key: bytes, report: Report, *, n: int, seed: int = 0,
                      connections: int = 40) -> None:
    """Datagrams at the UDP port, then TCP: length prefixes past the caps, truncated frames, a
    replayed frame, and ``connections`` connections at once (past the 16 served)."""
    cases = gossip_cases(key, n, seed=seed)
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.setblocking(False)
        for data in cases:
            report.sent["gossip"] += 1
            await loop.sock_sendto(udp, data, addr)
            report.answered("gossip", "udp")
            await asyncio.sleep(0)
    ring = Keyring([key])
    sealed = ring.seal(encode(Gossip("fuzz-src")))
    streams = [frame_header(0xFFFFFFFF), frame_header(64 * 1024 * 1024) + b"x" * 1000,
               frame_header(4 * 1024 * 1024 + 1), frame_header(100) + b"short", b"\x00\x00",
               frame_header(len(sealed)) + sealed, frame_header(len(sealed)) + sealed[:-3] + b"abc",
               frame_header(0)] + [frame_header(len(c)) + c for c in cases[:n // 4]]
    for data in streams:
        report.sent["gossip"] += 1
        report.answered("gossip", "tcp:" + await _tcp_once(addr, data))
    held = []
    for _ in range(connections):
        report.sent["gossip"] += 1
        try:
            held.append(await asyncio.open_connection(*addr))
        except OSError:
            report.answered("gossip", "tcp:refused")
    for _, writer in held:
        await _close(writer)
    report.answered("gossip", f"tcp:held-{len(held)}")


async def _tcp_once(addr: tuple[str, int], data: bytes) -> str:
    try:
        reader, writer = await asyncio.open_connection(*addr)
    except OSError:
        return "refused"
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(ANSWER_WAIT):
            return "closed" if await reader.read(1) == b"" else "answered"
    except TimeoutError:
        return "open"
    except ConnectionError:
        return "reset"
    finally:
        await _close(writer)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()


# -- DNS --------------------------------------------------------------------------------------

def dns_cases(names: list[str], n: int, *, seed: int = 0) -> list[bytes]:
    """Queries: mutated valid ones (flipped bytes, cut, extended), compression loops, counts
    past the packet, EDNS with odd sizes and versions, random bytes."""
    base = [DNSRecord.question(name, qtype).pack() for name in names for qtype in ("A", "AAAA", "PTR", "ANY")]
    edns = DNSRecord.question(names[0])
    edns.add_ar(EDNS0(udp_len=0xFFFF, version=7, flags="do"))
    base.append(edns.pack())
    small = DNSRecord.question(names[0])
    small.add_ar(EDNS0(udp_len=1))
    base.append(small.pack())
    header = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    hand = [header + b"\xc0\x0c\x00\x01\x00\x01",                       # qname points to itself
            header + b"\x01a\xc0\x0e\x00\x01\x00\x01",                  # two labels pointing at each other
            struct.pack("!HHHHHH", 1, 0x0100, 0xFFFF, 0, 0, 0) + b"\x01a\x00\x00\x01\x00\x01",
            struct.pack("!HHHHHH", 2, 0x0100, 1, 0, 0, 0xFFFF) + b"\x01a\x00\x00\x01\x00\x01",
            struct.pack("!HHHHHH", 3, 0x0100, 1, 0, 0, 1) + b"\x01a\x00\x00\x01\x00\x01" + b"\x00\x00\x29",
            header + b"\x3f" + b"a" * 63 + b"\x00\x00\x01\x00\x01", header[:11], b""]

    def mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
        b = bytearray(data)
        for kind, pos, val in edits:
            if not b:
                break
            i = pos % len(b)
            if kind == 0:
                b[i] = val
            elif kind == 1:
                del b[i:]
            else:
                b[i:i] = bytes([val, 0xC0])
        return bytes(b)

    mutated = st.tuples(st.sampled_from(base), st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2**16),
                                                                      st.integers(0, 255)), min_size=1, max_size=5))
    return hand + draw(st.one_of(mutated.map(lambda bm: mutate(*bm)), st.binary(max_size=600)), n, seed=seed)


async def _udp_ask(addr: tuple[str, int], data: bytes, wait: float) -> bytes | None:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        await loop.sock_sendto(s, data, addr)
        if not wait:
            return None
        try:
            async with asyncio.timeout(wait):
                return await loop.sock_recv(s, 65535)
        except TimeoutError:
            return None


def _expects_answer(data: bytes) -> bool:
    """A query the server must answer: it has a full header and QR is clear. (A response, or
    something shorter than a header, may be dropped.)"""
    return len(data) >= 12 and not data[2] & 0x80


async def fuzz_dns(udp: tuple[str, int], tcp: tuple[str, int], names: list[str], report: Report, *,
                   n: int, seed: int = 0) -> None:
    """Every case over UDP, then over one TCP connection (and a few with bad length prefixes);
    every query answered with its ID."""
    cases = dns_cases(names, n, seed=seed)
    for data in cases:
        report.sent["dns"] += 1
        answer = await _udp_ask(udp, data, 2.0 if _expects_answer(data) else 0.0)
        _judge(report, "udp", data, answer)
    reader, writer = await asyncio.open_connection(*tcp)
    try:
        for i, data in enumerate(cases):
            report.sent["dns"] += 1
            # each case followed by a valid query: its answer marks the end of the case's
            sentinel = DNSRecord.question(names[0])
            sentinel.header.id = 0xBEEF ^ (i & 0xFF) ^ (0x100 if data[:2] == (0xBEEF ^ (i & 0xFF)).to_bytes(2, "big") else 0)
            mark = bytes(sentinel.pack())
            writer.write(len(data).to_bytes(2, "big") + data + len(mark).to_bytes(2, "big") + mark)
            await writer.drain()
            answers = await _tcp_until(reader, mark[:2])
            if answers is None:
                report.fail("dns", f"tcp {data[:60]!r}: the next valid query got no answer")
                reader, writer = await _reopen(tcp, writer)
                continue
            _judge(report, "tcp", data, answers[0] if answers else None)
    finally:
        await _close(writer)
    for prefix in (b"\xff\xff" + os.urandom(100), b"\x00", b"\x00\x00", b"\x00\x05abc"):
        report.sent["dns"] += 1
        report.answered("dns", "tcp-prefix:" + await _tcp_once(tcp, prefix))


async def _tcp_until(reader: asyncio.StreamReader, mark: bytes) -> list[bytes] | None:
    """The answers read before the one with the ID ``mark``; None if that never came."""
    answers = []
    try:
        async with asyncio.timeout(ANSWER_WAIT):
            while True:
                size = int.from_bytes(await reader.readexactly(2), "big")
                answer = await reader.readexactly(size)
                if answer[:2] == mark:
                    return answers
                answers.append(answer)
    except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
        return None


async def _reopen(tcp: tuple[str, int], old: asyncio.StreamWriter) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    await _close(old)
    return await asyncio.open_connection(*tcp)


def _judge(report: Report, transport: str, data: bytes, answer: bytes | None) -> None:
    if answer is None:
        if _expects_answer(data):
            report.fail("dns", f"{transport} {data[:60]!r}: no answer")
        else:
            report.answered("dns", f"{transport}:dropped")
        return
    if len(answer) < 12 or answer[:2] != data[:2]:
        report.fail("dns", f"{transport} {data[:60]!r}: answer {answer[:20]!r} without the query's ID")
        return
    report.answered("dns", f"{transport}:rcode-{answer[3] & 0xF}")
