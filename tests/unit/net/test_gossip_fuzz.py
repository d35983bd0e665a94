"""Bad input on the gossip port (issue 16): a real ``GossipNode`` on 127.0.0.1, fed random
datagrams, garbled, truncated and replayed sealed frames, sealed messages holding what no node
sends, huge TCP length prefixes and more connections than it serves (``tests/fuzz/portfuzz.py``,
hypothesis). Afterwards its loops still run, nothing reached the loop's exception handler, and
a real peer's new entry still reaches it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from shoal.dev.wait import wait_for_async
from shoal.net.gossip import GossipConfig, GossipNode
from shoal.net.gossip_wire import Gossip, Keyring, MemberMsg, State, encode
from tests.fuzz.portfuzz import Report, fuzz_gossip

# the fuzzer draws its cases (hypothesis, seconds of CPU cold) on the loop the servers share;
# in a thread it would see the servers' use of `random` and refuse
pytestmark = pytest.mark.blocks_loop

KEY = bytes(range(32))
LOOPS = {"probe", "gossip", "push-pull", "reap"}


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[str]]:
    """What reaches the event loop's exception handler (a callback or task that raised)."""
    loop = asyncio.get_running_loop()
    errors: list[str] = []

    def handler(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        errors.append(f"{context.get('message')}: {context.get('exception')!r}")

    loop.set_exception_handler(handler)
    try:
        yield errors
    finally:
        loop.set_exception_handler(None)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[GossipNode, GossipNode]]:
    target = GossipNode(GossipConfig.fast("n1"), [KEY])
    peer = GossipNode(GossipConfig.fast("n2"), [KEY])
    await target.start()
    await peer.start()
    try:
        await peer.join([target.addr])
        await wait_for_async("the two see each other", lambda: target.live() == peer.live() == {"n1", "n2"})
        yield target, peer
    finally:
        await peer.close()
        await target.close()


def _loops(node: GossipNode) -> set[str]:
    return {t.get_name().split("-", 1)[1].rsplit("-", 1)[0] for t in node._tasks if not t.done()} & LOOPS


async def _still_gossips(target: GossipNode, peer: GossipNode, key: str) -> None:
    peer.set("t", key, b"v")
    await wait_for_async(f"{key} gossiped to the fuzzed node", lambda: target.get("t", key) == b"v")


async def test_the_gossip_port_survives_bad_input(pair: tuple[GossipNode, GossipNode],
                                                  loop_errors: list[str]) -> None:
    target, peer = pair
    report = Report()
    await fuzz_gossip(target.addr, KEY, report, n=300, connections=40)
    print(report.summary(), target.stats)
    assert report.sent["gossip"] > 300
    assert _loops(target) == LOOPS
    assert target.stats.malformed > 0 and target.stats.dropped > 0 and target.stats.refused > 0
    await _still_gossips(target, peer, "after-fuzz")
    assert not loop_errors
    assert not report.failures


@pytest.mark.parametrize("member", [
    MemberMsg("m", "127.0.0.1", 70000, 1, State.ALIVE),      # closed the UDP transport for good
    MemberMsg("m", "no.such.name.invalid", 1, 1, State.ALIVE),  # a name resolved on the loop
    MemberMsg("n1", "127.0.0.1", 1, 2**64 - 1, State.SUSPECT),  # its refutation overflows msgpack
    MemberMsg("m" * 101, "127.0.0.1", 1, 1, State.ALIVE),
])
async def test_a_sealed_member_no_node_sends_is_refused(pair: tuple[GossipNode, GossipNode], member: MemberMsg,
                                                        loop_errors: list[str]) -> None:
    target, peer = pair
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(Keyring([KEY]).seal(encode(Gossip("n2", members=[member]))), target.addr)
    await wait_for_async("the message counted malformed", lambda: target.stats.malformed == 1)
    assert member.id not in {m.id for m in target.members() if m.host == member.host and m.port == member.port}
    await _still_gossips(target, peer, "after")
    assert _loops(target) == LOOPS
    assert not loop_errors
