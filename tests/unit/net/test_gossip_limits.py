"""What a stranger on the gossip TCP port can make a node hold (issue 16): a length prefix is
bounded before it is believed, push-pulls served at once are capped, a silent or slow peer is
cut off after ``tcp_timeout``. In-process nodes on 127.0.0.1."""

from __future__ import annotations

import asyncio

from shoal.dev.wait import wait_for_async
from shoal.net.gossip import GossipConfig, GossipNode
from shoal.net.gossip_wire import MAX_FRAME, MAX_REQUEST_FRAME, frame_header

KEY = bytes(range(16))


async def _closed_by_peer(reader: asyncio.StreamReader) -> bool:
    """Whether the node closed the connection (EOF) within 5 s."""
    try:
        return await asyncio.wait_for(reader.read(1), 5) == b""
    except ConnectionResetError:
        return True


async def test_an_oversized_length_prefix_is_refused_unread() -> None:
    node = GossipNode(GossipConfig.fast("n1"), [KEY])
    await node.start()
    try:
        assert MAX_REQUEST_FRAME < MAX_FRAME <= 20 * 1024 * 1024
        for size in (0xFFFFFFFF, 64 * 1024 * 1024, MAX_REQUEST_FRAME + 1):
            reader, writer = await asyncio.open_connection(*node.addr)
            writer.write(frame_header(size))
            await writer.drain()
            assert await _closed_by_peer(reader)
            writer.close()
        assert node.stats.malformed == 3
    finally:
        await node.close()


async def test_push_pulls_served_at_once_are_capped_and_silent_peers_cut_off() -> None:
    node = GossipNode(GossipConfig.fast("n1", max_push_pulls=2, tcp_timeout=0.5), [KEY])
    other = GossipNode(GossipConfig.fast("n2"), [KEY])
    await node.start()
    await other.start()
    conns = []
    try:
        for _ in range(2):  # silent peers: each holds a slot until its timeout
            conns.append(await asyncio.open_connection(*node.addr))
        await wait_for_async("both served", lambda: node._serving == 2)
        reader, writer = await asyncio.open_connection(*node.addr)
        conns.append((reader, writer))
        assert await _closed_by_peer(reader)  # the third: closed at once
        assert node.stats.refused == 1
        for r, _ in conns[:2]:  # the silent ones: cut off by tcp_timeout
            assert await _closed_by_peer(r)
        await wait_for_async("the slots freed", lambda: node._serving == 0)
        await other.join([node.addr])  # a real push-pull is served again
        await wait_for_async("the two see each other",
                             lambda: node.live() == other.live() == {"n1", "n2"})
    finally:
        for _, w in conns:
            w.close()
        await other.close()
        await node.close()
