"""GrpcEtcdClient on a real etcd: the behaviours test_etcd_client/test_etcd_backend check of the
JSON client (results, error mapping, TLS refusals, failover, time bounds, watch), over gRPC."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import grpc
import pytest

from shoal.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
    Unimplemented,
)
from shoal.store.backend import MAX_TXN_OPS, Compacted, Compare, Op
from shoal.store.etcd import EtcdBackend, EtcdMember
from shoal.store.etcd._pb import rpc_pb2, rpc_pb2_grpc
from shoal.store.etcd.grpc_client import GrpcEtcdClient
from shoal.store.etcd.messages import DeleteOp, PutOp, RangeOp, TxnCompare, WatchEvent, prefix_end
from shoal.store.etcd.settings import EtcdMemberSettings
from shoal.store.etcd.testing import client_context, free_port, make_pki, throwaway_member


def _client(settings: EtcdMemberSettings, *endpoints: str, timeout: float = 2.0) -> GrpcEtcdClient:
    return GrpcEtcdClient(list(endpoints) or [settings.client_url], cert_file=settings.cert_file,
                          key_file=settings.key_file, ca_file=settings.trusted_ca_file,
                          timeout=timeout)


@pytest.fixture
async def member(tmp_path: Path) -> AsyncIterator[EtcdMember]:
    async with throwaway_member(tmp_path) as started:
        yield started


@pytest.fixture
async def client(member: EtcdMember) -> AsyncIterator[GrpcEtcdClient]:
    async with _client(member.settings) as client:
        yield client


async def _next(stream: AsyncIterator[tuple[WatchEvent, ...]], what: str
                ) -> tuple[WatchEvent, ...]:
    try:
        async with asyncio.timeout(5):
            return await anext(stream)
    except TimeoutError:
        raise AssertionError(f"the watch did not deliver {what} within 5 s") from None


async def _anext(stream: AsyncIterator[tuple[WatchEvent, ...]]) -> tuple[WatchEvent, ...]:
    return await anext(stream)


# --- TLS, endpoints, time bounds ------------------------------------------------------------


async def test_connections_without_our_client_certificate_are_refused(
    member: EtcdMember, tmp_path: Path
) -> None:
    s = member.settings
    other = make_pki(tmp_path / "other-ca")  # a valid certificate from another CA
    foreign = GrpcEtcdClient([s.client_url], cert_file=other.cert_file, key_file=other.key_file,
                             ca_file=s.trusted_ca_file, timeout=2.0)
    distrusting = GrpcEtcdClient([s.client_url], cert_file=s.cert_file, key_file=s.key_file,
                                 ca_file=other.ca_file, timeout=2.0)  # the member's is not ours
    for refused in (foreign, distrusting):
        async with refused:
            with pytest.raises(Unavailable, match="cannot connect"):
                await refused.range(b"/")
    target = s.client_url.removeprefix("https://")
    no_cert = grpc.ssl_channel_credentials(root_certificates=s.trusted_ca_file.read_bytes())
    for channel in (grpc.aio.secure_channel(target, no_cert), grpc.aio.insecure_channel(target)):
        async with channel:
            with pytest.raises(grpc.aio.AioRpcError) as refusal:
                await rpc_pb2_grpc.KVStub(channel).Range(rpc_pb2.RangeRequest(key=b"/"),
                                                         timeout=2.0)
            assert refusal.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("server_ips", [("127.0.0.1",), ("10.9.9.9",)])
async def test_the_server_certificate_must_name_the_ip_dialled(
    tmp_path: Path, server_ips: tuple[str, ...]
) -> None:
    pki = make_pki(tmp_path / "pki", ips=server_ips)  # 10.9.9.9: a SAN only, never dialled
    server = grpc.aio.server()  # TLS, no services: a call that gets through is UNIMPLEMENTED
    credentials = grpc.ssl_server_credentials(
        [(pki.key_file.read_bytes(), pki.cert_file.read_bytes())],
        root_certificates=pki.ca_file.read_bytes(), require_client_auth=True)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        async with GrpcEtcdClient([f"https://127.0.0.1:{port}"], cert_file=pki.cert_file,
                                  key_file=pki.key_file, ca_file=pki.ca_file,
                                  timeout=2.0) as client:
            if server_ips == ("127.0.0.1",):
                with pytest.raises(Unimplemented):
                    await client.status()
            else:
                with pytest.raises(Unavailable, match="cannot connect"):
                    await client.status()
    finally:
        await server.stop(None)


async def test_from_pem_and_endpoint_checks(member: EtcdMember) -> None:
    s = member.settings
    async with GrpcEtcdClient.from_pem([s.client_url], cert_pem=s.cert_file.read_text(),
                                       key_pem=s.key_file.read_bytes(),
                                       ca_pem=s.trusted_ca_file.read_text()) as client:
        assert (await client.status()).version.startswith(("3.4.", "3.5."))  # Debian 12, 13
    for bad in ([], [s.client_url.replace("https://", "http://")]):
        with pytest.raises(InvalidArgument, match="https://"):
            _client(s, *bad) if bad else GrpcEtcdClient(
                bad, cert_file=s.cert_file, key_file=s.key_file, ca_file=s.trusted_ca_file)


async def test_moves_on_to_the_next_endpoint_when_one_cannot_connect(
    member: EtcdMember,
) -> None:
    dead = f"https://127.0.0.1:{free_port()}"
    async with _client(member.settings, dead, member.settings.client_url) as client:
        status = await client.status()
        assert status.leader == status.header.member_id != 0
        (only,) = await client.member_list()
        assert only.name == member.settings.name
        assert only.client_urls == (member.settings.client_url,)
        assert not only.is_learner
        assert client.endpoints[client._current] == member.settings.client_url  # stays there
        await client.put(b"/f/k", b"v")
    async with _client(member.settings, dead) as client:
        with pytest.raises(Unavailable, match="cannot connect"):
            await client.status()


async def test_a_silent_server_is_unavailable_within_the_timeout(member: EtcdMember) -> None:
    async def accept_and_say_nothing(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.read()  # until the client gives up
        w.close()

    server = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with _client(member.settings, f"https://127.0.0.1:{port}", timeout=0.3) as client:
            loop = asyncio.get_running_loop()
            for call in (client.range(b"/"), client.status(), client.lease_keepalive(1),
                         _anext(client.watch(b"/"))):
                started = loop.time()
                with pytest.raises(Unavailable, match="no answer within 0.3 s"):
                    async with asyncio.timeout(10):  # the client's own timeout ends it
                        await call
                assert loop.time() - started < 1.0
        # a silent first endpoint gets its share of the time, then the next one answers
        silent = f"https://127.0.0.1:{port}"
        async with _client(member.settings, silent, member.settings.client_url,
                           timeout=1.0) as client:
            assert (await client.range(b"/")).header.revision > 0
    finally:
        server.close()
        await server.wait_closed()


async def test_a_call_to_a_stopped_member_or_a_closed_client_is_unavailable(
    member: EtcdMember,
) -> None:
    client = _client(member.settings)
    written = await client.put(b"/u/k", b"1")
    stream = client.watch(b"/u/", prefix_end(b"/u/"), start_revision=written.header.revision)
    try:
        await _next(stream, "the first put")
        watching = asyncio.create_task(_anext(stream), name="watch /u/")
        await member.stop()
        with pytest.raises(Unavailable):
            async with asyncio.timeout(5):
                await watching
        for call in (client.range(b"/u/"), client.put(b"/u/k", b"2"), client.status()):
            with pytest.raises(Unavailable, match="etcd"):
                async with asyncio.timeout(client.timeout + 10):  # bounded: never a hang
                    await call
    finally:
        await stream.aclose()
        await client.close()
    with pytest.raises(Unavailable, match="closed"):
        await client.status()


async def test_closing_the_client_ends_an_open_watch(client: GrpcEtcdClient) -> None:
    stream = client.watch(b"/w/")
    async with aclosing(stream):
        watching = asyncio.create_task(_anext(stream), name="watch /w/")
        await asyncio.sleep(0.2)
        await client.close()
        with pytest.raises(Unavailable, match="closed"):
            async with asyncio.timeout(5):
                await watching


# --- key/value --------------------------------------------------------------------------------


async def test_etcd_errors_are_mapped(client: GrpcEtcdClient) -> None:
    first = await client.put(b"/e/k", b"1")
    second = await client.put(b"/e/k", b"2")
    header = await client.compact(second.header.revision)
    assert header.revision == second.header.revision
    with pytest.raises(Compacted):
        await client.range(b"/e/k", revision=first.header.revision)
    with pytest.raises(InvalidArgument, match="future revision"):
        await client.range(b"/e/k", revision=second.header.revision + 100)
    with pytest.raises(InvalidArgument, match="duplicate key"):
        await client.txn([], [PutOp(b"/e/a", b""), PutOp(b"/e/a", b"")])
    with pytest.raises(InvalidArgument, match="too many operations"):
        await client.txn([], [PutOp(f"/e/{i}".encode(), b"") for i in range(200)])
    with pytest.raises(NotFound):
        await client.lease_keepalive(0x1234)
    with pytest.raises(NotFound):
        await client.lease_revoke(0x1234)
    with pytest.raises(NotFound):
        await client.put(b"/e/leased", b"", lease=0x1234)


async def test_range_put_delete(client: GrpcEtcdClient) -> None:
    await client.put(b"/r/a", b"1")
    put = await client.put(b"/r/b", b"2")
    assert put.prev_kv is None and put.header.revision > 1 and put.header.member_id
    replaced = await client.put(b"/r/b", b"2'", prev_kv=True)
    assert replaced.prev_kv is not None and replaced.prev_kv.value == b"2"
    assert replaced.prev_kv.mod_revision == put.header.revision
    await client.put(b"/s", b"not in /r/")

    page = await client.range(b"/r/", prefix_end(b"/r/"), limit=1)
    assert page.more and page.count == 2 and [kv.key for kv in page.kvs] == [b"/r/a"]
    (b,) = (await client.range(b"/r/b")).kvs
    assert (b.key, b.value, b.create_revision, b.mod_revision, b.version, b.lease) == (
        b"/r/b", b"2'", put.header.revision, replaced.header.revision, 2, 0)
    keys = await client.range(b"/r/", prefix_end(b"/r/"), keys_only=True, serializable=True)
    assert [(kv.key, kv.value) for kv in keys.kvs] == [(b"/r/a", b""), (b"/r/b", b"")]
    counted = await client.range(b"\x00", b"\x00", count_only=True)
    assert counted.count == 3 and counted.kvs == ()
    old = await client.range(b"/r/b", revision=put.header.revision)
    assert [kv.value for kv in old.kvs] == [b"2"]
    assert (await client.range(b"/nothing")).kvs == ()

    deleted = await client.delete_range(b"/r/", prefix_end(b"/r/"), prev_kv=True)
    assert deleted.deleted == 2 and sorted(kv.value for kv in deleted.prev_kvs) == [b"1", b"2'"]
    assert (await client.delete_range(b"/r/a")).deleted == 0


async def test_txn_compares_and_failure_ops(client: GrpcEtcdClient) -> None:
    put = await client.put(b"/t/b", b"2")
    won = await client.txn([TxnCompare(b"/t/b", "MOD", put.header.revision)],
                           [PutOp(b"/t/b", b"3")])
    lost = await client.txn([TxnCompare(b"/t/b", "MOD", put.header.revision)],
                            [PutOp(b"/t/b", b"4")], [RangeOp(b"/t/b")])
    assert won.succeeded and not lost.succeeded
    assert won.responses[0].response_put is not None
    assert won.header.revision == put.header.revision + 1 == lost.header.revision
    (read,) = lost.responses
    assert read.response_range is not None and read.response_put is None
    assert [kv.value for kv in read.response_range.kvs] == [b"3"]

    # every target and result; CREATE 0 = "does not exist"
    checks = [
        ([TxnCompare(b"/t/new", "CREATE", 0)], True),
        ([TxnCompare(b"/t/b", "CREATE", 0)], False),
        ([TxnCompare(b"/t/b", "VALUE", b"3")], True),
        ([TxnCompare(b"/t/b", "VALUE", b"3", "NOT_EQUAL")], False),
        ([TxnCompare(b"/t/b", "VERSION", 2)], True),
        ([TxnCompare(b"/t/b", "VERSION", 1, "GREATER")], True),
        ([TxnCompare(b"/t/b", "MOD", won.header.revision, "LESS")], False),
        ([TxnCompare(b"/t/b", "LEASE", 0)], True),
        ([TxnCompare(b"/t/b", "VALUE", b"3"), TxnCompare(b"/t/b", "VERSION", 5)], False),
    ]
    for compares, expected in checks:
        answer = await client.txn(compares, [RangeOp(b"/t/b")], [])
        assert answer.succeeded is expected, compares

    both = await client.txn([], [DeleteOp(b"/t/b"), PutOp(b"/t/c", b"c"), RangeOp(b"/t/", b"/t0")])
    assert both.succeeded
    gone, made, listed = both.responses
    assert gone.response_delete_range is not None and gone.response_delete_range.deleted == 1
    assert made.response_put is not None
    assert listed.response_range is not None
    assert [kv.key for kv in listed.response_range.kvs] == [b"/t/c"]
    empty = await client.txn([], [])
    assert empty.succeeded and empty.responses == ()


async def test_transactions_of_max_ops_and_answers_over_4_mib(client: GrpcEtcdClient) -> None:
    value = b"v" * 12_000  # 120 puts of ~1.4 MB in all, under etcd's 1.5 MiB request limit
    revisions = []
    for batch in range(4):
        keys = [f"/big/{batch}/{i:03}".encode() for i in range(MAX_TXN_OPS)]
        answer = await client.txn([TxnCompare(k, "CREATE", 0) for k in keys],
                                  [PutOp(k, value) for k in keys])
        assert answer.succeeded and len(answer.responses) == MAX_TXN_OPS
        revisions.append(answer.header.revision)
    # one watch message with all four revisions, and one range answer: ~5.8 MB each, over
    # gRPC's default 4 MiB receive limit
    async with aclosing(client.watch(b"/big/", prefix_end(b"/big/"),
                                     start_revision=revisions[0])) as stream:
        events = await _next(stream, "the big transactions")
    assert len(events) == 4 * MAX_TXN_OPS
    assert [e.kv.mod_revision for e in events[::MAX_TXN_OPS]] == revisions
    page = await client.range(b"/big/", prefix_end(b"/big/"))
    assert page.count == len(page.kvs) == 4 * MAX_TXN_OPS and page.kvs[0].value == value


# --- watch ------------------------------------------------------------------------------------


async def test_watch_from_a_revision(client: GrpcEtcdClient) -> None:
    start = (await client.put(b"/w/a", b"1")).header.revision
    await client.put(b"/other", b"outside")
    cas = await client.txn([], [PutOp(b"/w/a", b"2"), PutOp(b"/w/b", b"3")])
    gone = await client.delete_range(b"/w/a")
    async with aclosing(client.watch(b"/w/", prefix_end(b"/w/"), start_revision=start,
                                     prev_kv=True)) as stream:
        history: list[WatchEvent] = []
        while len(history) < 4:  # catching up, etcd sends several revisions per message
            history.extend(await _next(stream, "the history"))
        first, *pair, delete = history
        assert (first.type, first.kv.key, first.kv.value, first.kv.mod_revision) == (
            "PUT", b"/w/a", b"1", start)
        assert first.prev_kv is None  # a create has none
        assert [(e.type, e.kv.key, e.kv.value) for e in pair] == [
            ("PUT", b"/w/a", b"2"), ("PUT", b"/w/b", b"3")]
        assert {e.kv.mod_revision for e in pair} == {cas.header.revision}
        assert pair[0].prev_kv is not None and pair[0].prev_kv.value == b"1"
        assert (delete.type, delete.kv.key, delete.kv.value, delete.kv.mod_revision) == (
            "DELETE", b"/w/a", b"", gone.header.revision)
        assert delete.prev_kv is not None and delete.prev_kv.value == b"2"
        live = await client.put(b"/w/c", b"live")  # arrives while watching
        (put,) = await _next(stream, "a live put")
        assert (put.kv.key, put.kv.mod_revision, put.kv.create_revision, put.kv.version) == (
            b"/w/c", live.header.revision, live.header.revision, 1)


async def test_watch_from_a_compacted_revision_raises_compacted(client: GrpcEtcdClient) -> None:
    first = await client.put(b"/c/k", b"1")
    second = await client.put(b"/c/k", b"2")
    await client.compact(second.header.revision)
    with pytest.raises(Compacted, match=f"oldest kept: {second.header.revision}"):
        async with aclosing(client.watch(b"/c/", prefix_end(b"/c/"),
                                         start_revision=first.header.revision)) as stream:
            await _next(stream, "the compaction error")
    async with aclosing(client.watch(b"/c/", prefix_end(b"/c/"),
                                     start_revision=second.header.revision)) as stream:
        (kept,) = await _next(stream, "the kept revision")
        assert kept.kv.value == b"2"


async def test_the_backend_runs_on_the_grpc_client(member: EtcdMember) -> None:
    backend = EtcdBackend([member.settings.client_url],
                          ssl_context=client_context(member.settings), timeout=2.0)
    await backend.client.close()
    switched: Any = _client(member.settings)
    backend.client = switched  # the one line a caller changes
    try:
        await backend.start()
        created = await backend.txn([Compare("/b/a", 0)], [Op("/b/a", b"1")])
        assert created.succeeded
        revision, kvs = await backend.list("/b/")
        assert revision == created.revision and [kv.value for kv in kvs] == [b"1"]
        async with aclosing(backend.watch("/b/", created.revision)) as stream:
            (event,) = await asyncio.wait_for(anext(stream), 5)
        assert (event.kv.key, event.revision) == ("/b/a", created.revision)
    finally:
        await backend.close()


async def test_a_quiet_watch_lives_on_progress_notifications_and_a_frozen_etcd_is_noticed(
    tmp_path: Path,
) -> None:
    async with throwaway_member(tmp_path, progress_notify_interval_s=0.2) as member:
        client = _client(member.settings)
        written = await client.put(b"/q/k", b"1")
        stream = client.watch(b"/q/", prefix_end(b"/q/"), start_revision=written.header.revision,
                              progress_notify=True, idle_timeout=0.8)
        silent = client.watch(b"/q/", prefix_end(b"/q/"), idle_timeout=0.5)  # no progress
        try:
            await _next(stream, "the put")
            watching = asyncio.create_task(_anext(stream), name="quiet watch")
            with pytest.raises(Unavailable, match="nothing received for 0.5 s"):
                async with asyncio.timeout(5):
                    await anext(silent)
            done, _ = await asyncio.wait([watching], timeout=1.6)  # twice the idle timeout
            assert not done, "a quiet but healthy watch was ended"
            assert member.pid is not None
            os.kill(member.pid, signal.SIGSTOP)  # alive, connected, silent
            try:
                with pytest.raises(Unavailable, match="nothing received"):
                    async with asyncio.timeout(10):  # the idle timeout (0.8 s) ends it first
                        await watching
            finally:
                os.kill(member.pid, signal.SIGCONT)
        finally:
            await silent.aclose()
            await stream.aclose()
            await client.close()


# --- leases -----------------------------------------------------------------------------------


async def test_leases(client: GrpcEtcdClient) -> None:
    lease = await client.lease_grant(30)
    assert lease.id and lease.ttl == 30
    await client.put(b"/l/leased", b"", lease=lease.id)
    (kv,) = (await client.range(b"/l/leased")).kvs
    assert kv.lease == lease.id
    renewed = await client.lease_keepalive(lease.id)
    assert renewed == lease
    chosen = await client.lease_grant(30, lease_id=0x5eed)
    assert chosen.id == 0x5eed
    with pytest.raises(FailedPrecondition, match="lease already exists"):
        await client.lease_grant(30, lease_id=0x5eed)
    await client.lease_revoke(lease.id)
    assert (await client.range(b"/l/leased")).kvs == ()  # revoking deleted the leased key
    with pytest.raises(NotFound):
        await client.lease_keepalive(lease.id)

    short = await client.lease_grant(1)
    await client.put(b"/l/short", b"", lease=short.id)
    await asyncio.sleep(2.5)  # TTL 1 s; etcd checks expiry every 0.5 s
    assert (await client.range(b"/l/short")).kvs == ()
    with pytest.raises(NotFound, match="expired"):
        await client.lease_keepalive(short.id)
    await client.lease_revoke(chosen.id)


# --- cluster and maintenance ------------------------------------------------------------------


async def test_members_and_status(client: GrpcEtcdClient, member: EtcdMember) -> None:
    status = await client.status()
    assert status.version.startswith(("3.4.", "3.5.")) and status.leader == status.header.member_id
    assert status.raft_term >= 1 and status.raft_index >= status.raft_applied_index > 0
    assert status.db_size >= status.db_size_in_use > 0
    assert not status.is_learner and status.errors == ()
    assert (await client.status(timeout=0.5)).header.cluster_id == status.header.cluster_id

    (me,) = await client.member_list()
    assert me.id == status.header.member_id and me.peer_urls == (member.settings.peer_url,)
    peer = f"https://127.0.0.1:{free_port()}"  # never started: stays an unstarted learner
    added, members = await client.member_add([peer], is_learner=True)
    assert added.is_learner and added.name == "" and added.peer_urls == (peer,)
    assert added.client_urls == ()
    assert {m.id for m in members} == {me.id, added.id}
    assert {m.id for m in await client.member_list()} == {me.id, added.id}
    with pytest.raises(FailedPrecondition, match="in sync with leader"):
        await client.member_promote(added.id)
    with pytest.raises(FailedPrecondition, match="already exist"):
        await client.member_add([peer], is_learner=True)
    remaining = await client.member_remove(added.id)
    assert [m.id for m in remaining] == [me.id]
    with pytest.raises(NotFound):
        await client.member_remove(added.id)
