"""EtcdClient: TLS refusals, endpoint failover, time bounds and error mapping, on a real etcd."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from shoal.errors import InvalidArgument, NotFound, Unavailable
from shoal.store.backend import Compacted
from shoal.store.etcd import EtcdClient, EtcdMember
from shoal.store.etcd.client import client_ssl_context
from shoal.store.etcd.messages import PutOp, TxnCompare, prefix_end
from shoal.store.etcd.testing import client_context, free_port, make_pki, throwaway_member


@pytest.fixture
async def member(tmp_path: Path) -> AsyncIterator[EtcdMember]:
    async with throwaway_member(tmp_path) as started:
        yield started


@pytest.fixture
async def client(member: EtcdMember) -> AsyncIterator[EtcdClient]:
    async with EtcdClient([member.settings.client_url],
                          ssl_context=client_context(member.settings), timeout=2.0) as client:
        yield client


async def test_connections_without_our_client_certificate_are_refused(
    member: EtcdMember, tmp_path: Path
) -> None:
    url = member.settings.client_url
    no_cert = ssl.create_default_context(cafile=str(member.settings.trusted_ca_file))
    other = make_pki(tmp_path / "other-ca")  # a valid certificate from another CA
    foreign = client_ssl_context(cert_file=other.cert_file, key_file=other.key_file,
                                 ca_file=member.settings.trusted_ca_file)
    for context in (no_cert, foreign):
        async with EtcdClient([url], ssl_context=context, timeout=2.0) as refused:
            with pytest.raises(Unavailable, match="etcd"):
                await refused.range(b"/")
    async with aiohttp.ClientSession() as session:  # plaintext HTTP on the TLS port
        try:
            async with session.post(url.replace("https://", "http://") + "/v3/kv/range",
                                    json={"key": "Lw=="}) as response:
                status, body = response.status, await response.read()
        except aiohttp.ClientError:  # etcd 3.4 hangs up
            status, body = 0, b""
    assert status != 200 and b"header" not in body


async def test_moves_on_to_the_next_endpoint_when_one_cannot_connect(
    member: EtcdMember,
) -> None:
    dead = f"https://127.0.0.1:{free_port()}"
    endpoints = [dead, member.settings.client_url]
    async with EtcdClient(endpoints, ssl_context=client_context(member.settings)) as client:
        status = await client.status()
        assert status.leader == status.header.member_id != 0
        (only,) = await client.member_list()
        assert only.name == member.settings.name
        assert only.client_urls == (member.settings.client_url,)
        assert not only.is_learner
    async with EtcdClient([dead], ssl_context=client_context(member.settings)) as client:
        with pytest.raises(Unavailable, match="cannot connect"):
            await client.status()


async def test_a_silent_server_is_unavailable_within_the_timeout(member: EtcdMember) -> None:
    async def accept_and_say_nothing(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.read()  # until the client gives up
        w.close()

    server = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with EtcdClient([f"https://127.0.0.1:{port}"], timeout=0.3,
                              ssl_context=client_context(member.settings)) as client:
            with pytest.raises(Unavailable, match="no answer within 0.3 s"):
                async with asyncio.timeout(10):  # the client's own timeout ends it, not this one
                    await client.range(b"/")
    finally:
        server.close()
        await server.wait_closed()


async def test_etcd_errors_are_mapped(client: EtcdClient) -> None:
    first = await client.put(b"/e/k", b"1")
    second = await client.put(b"/e/k", b"2")
    await client.compact(second.header.revision)
    with pytest.raises(Compacted):
        await client.range(b"/e/k", revision=first.header.revision)
    with pytest.raises(InvalidArgument, match="duplicate key"):
        await client.txn([], [PutOp(b"/e/a", b""), PutOp(b"/e/a", b"")])
    with pytest.raises(NotFound):
        await client.lease_keepalive(0x1234)
    with pytest.raises(NotFound):
        await client.lease_revoke(0x1234)


async def test_range_txn_and_leases(client: EtcdClient) -> None:
    await client.put(b"/r/a", b"1")
    put = await client.put(b"/r/b", b"2")
    await client.put(b"/s", b"not in /r/")
    page = await client.range(b"/r/", prefix_end(b"/r/"), limit=1)
    assert page.more and page.count == 2 and [kv.key for kv in page.kvs] == [b"/r/a"]
    won = await client.txn([TxnCompare(b"/r/b", "MOD", put.header.revision)],
                           [PutOp(b"/r/b", b"3")])
    lost = await client.txn([TxnCompare(b"/r/b", "MOD", put.header.revision)],
                            [PutOp(b"/r/b", b"4")])
    assert won.succeeded and not lost.succeeded
    assert won.responses[0].response_put is not None

    lease = await client.lease_grant(30)
    assert lease.id and lease.ttl == 30
    await client.put(b"/r/leased", b"", lease=lease.id)
    assert (await client.lease_keepalive(lease.id)).ttl == 30
    await client.lease_revoke(lease.id)
    assert (await client.range(b"/r/leased")).kvs == ()  # revoking deleted the leased key
    deleted = await client.delete_range(b"/r/", prefix_end(b"/r/"))
    assert deleted.deleted == 2


def test_prefix_end() -> None:
    assert prefix_end(b"/a/") == b"/a0"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") == b"\x00"
    assert prefix_end(b"") == b"\x00"


def test_the_package_exports_what_it_lists() -> None:
    import shoal.store.etcd as package

    assert sorted(package.__all__) == ["EtcdAPI", "EtcdBackend", "EtcdClient", "EtcdMember",
                                       "EtcdMemberSettings", "GrpcEtcdClient"]
    assert all(hasattr(package, name) for name in package.__all__)
