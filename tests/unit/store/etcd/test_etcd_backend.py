"""EtcdBackend against a real, throwaway etcd member (mutual TLS on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path

import pytest

from shoal.errors import InvalidArgument, Unavailable
from shoal.store.backend import MAX_TXN_BYTES, MAX_TXN_OPS, Compacted, Compare, Event, EventType, Op
from shoal.store.etcd import EtcdBackend, EtcdMember
from shoal.store.etcd.testing import client_context, throwaway_member


@pytest.fixture
async def member(tmp_path: Path) -> AsyncIterator[EtcdMember]:
    async with throwaway_member(tmp_path) as started:
        yield started


@pytest.fixture
async def backend(member: EtcdMember) -> AsyncIterator[EtcdBackend]:
    backend = EtcdBackend([member.settings.client_url],
                          ssl_context=client_context(member.settings), timeout=2.0)
    try:
        await backend.start()
        yield backend
    finally:
        await backend.close()


async def _anext(stream: AsyncIterator[list[Event]]) -> list[Event]:
    return await anext(stream)


async def _next(stream: AsyncIterator[list[Event]], what: str) -> list[Event]:
    try:
        async with asyncio.timeout(5):
            return await anext(stream)
    except TimeoutError:
        raise AssertionError(f"the watch did not deliver {what} within 5 s") from None


def _summary(events: list[Event]) -> list[tuple[str, str, bytes, int]]:
    return [(e.type.value, e.kv.key, e.kv.value, e.revision) for e in events]


async def test_list_txn_watch_round_trip(backend: EtcdBackend) -> None:
    start, kvs = await backend.list("/t/")
    assert kvs == []

    created = await backend.txn([Compare("/t/a", 0), Compare("/t/b", 0)],
                                [Op("/t/a", b"1"), Op("/t/b", b"2")])
    assert created.succeeded and created.revision == start + 1
    await backend.txn([], [Op("/other/x", b"not under /t/")])
    again = await backend.txn([Compare("/t/a", 0)], [Op("/t/a", b"x")])  # exists already
    assert not again.succeeded and again.revision == created.revision + 1

    revision, kvs = await backend.list("/t/")
    assert revision == created.revision + 1
    assert [(kv.key, kv.value, kv.mod_revision, kv.create_revision) for kv in kvs] == [
        ("/t/a", b"1", created.revision, created.revision),
        ("/t/b", b"2", created.revision, created.revision),
    ]

    cas = await backend.txn([Compare("/t/a", created.revision)], [Op("/t/a", b"3")])
    assert cas.succeeded and cas.revision == revision + 1
    stale = await backend.txn([Compare("/t/a", created.revision)], [Op("/t/a", b"4")])
    assert not stale.succeeded and stale.revision == cas.revision
    deleted = await backend.txn([Compare("/t/b", created.revision)], [Op("/t/b", None)])
    assert deleted.succeeded and deleted.revision == cas.revision + 1

    revision, kvs = await backend.list("/t/")
    assert revision == deleted.revision
    assert [(kv.key, kv.value, kv.mod_revision) for kv in kvs] == [("/t/a", b"3", cas.revision)]

    async with aclosing(backend.watch("/t/", start + 1)) as stream:
        assert _summary(await _next(stream, "the create")) == [
            ("put", "/t/a", b"1", created.revision), ("put", "/t/b", b"2", created.revision)]
        assert _summary(await _next(stream, "the CAS")) == [("put", "/t/a", b"3", cas.revision)]
        (delete,) = await _next(stream, "the delete")
        assert delete.type is EventType.DELETE
        assert (delete.kv.key, delete.kv.value, delete.kv.mod_revision, delete.revision) == (
            "/t/b", b"", deleted.revision, deleted.revision)
        live = await backend.txn([], [Op("/t/c", b"live")])  # arrives while watching
        assert _summary(await _next(stream, "a live put")) == [
            ("put", "/t/c", b"live", live.revision)]


async def test_list_pages_at_one_revision(member: EtcdMember) -> None:
    backend = EtcdBackend([member.settings.client_url],
                          ssl_context=client_context(member.settings), page_size=3)
    try:
        ops = [Op(f"/p/{i:02}", str(i).encode()) for i in range(10)]
        written = await backend.txn([], ops)
        await backend.txn([], [Op("/q/outside", b"")])
        revision, kvs = await backend.list("/p/")
        assert revision == written.revision + 1
        assert [kv.key for kv in kvs] == [op.key for op in ops]
        _, everything = await backend.list("")
        assert len(everything) == 11
    finally:
        await backend.close()


async def test_watch_from_a_compacted_revision_raises_compacted(backend: EtcdBackend) -> None:
    first = await backend.txn([], [Op("/c/k", b"1")])
    second = await backend.txn([], [Op("/c/k", b"2")])
    await backend.client.compact(second.revision)
    with pytest.raises(Compacted):
        async with aclosing(backend.watch("/c/", first.revision)) as stream:
            await _next(stream, "the compaction error")
    revision, kvs = await backend.list("/c/")  # re-listing works
    assert revision == second.revision and [kv.value for kv in kvs] == [b"2"]
    async with aclosing(backend.watch("/c/", second.revision)) as stream:
        assert _summary(await _next(stream, "the kept revision")) == [
            ("put", "/c/k", b"2", second.revision)]


async def test_txn_of_max_ops_is_one_revision(backend: EtcdBackend) -> None:
    keys = [f"/big/{i:03}" for i in range(MAX_TXN_OPS)]
    before, _ = await backend.list("/big/")
    value = b"v" * (MAX_TXN_BYTES // MAX_TXN_OPS - 64)  # as big as the contract allows
    result = await backend.txn([Compare(k, 0) for k in keys], [Op(k, value) for k in keys])
    assert result.succeeded and result.revision == before + 1
    revision, kvs = await backend.list("/big/")
    assert revision == result.revision and len(kvs) == MAX_TXN_OPS
    assert {kv.mod_revision for kv in kvs} == {result.revision} and kvs[0].value == value
    async with aclosing(backend.watch("/big/", result.revision)) as stream:
        events = await _next(stream, "the big transaction")
    assert len(events) == MAX_TXN_OPS and {e.revision for e in events} == {result.revision}
    assert sum(len(e.kv.value) for e in events) > 1_100_000  # one watch message of ~1.5 MB
    with pytest.raises(InvalidArgument):
        await backend.txn([], [Op(f"/big/x{i}", b"") for i in range(MAX_TXN_OPS + 1)])
    with pytest.raises(InvalidArgument):  # etcd refuses two puts of one key in a txn
        await backend.txn([], [Op("/big/dup", b"1"), Op("/big/dup", b"2")])


async def test_unavailable_not_a_hang_when_etcd_stops(
    member: EtcdMember, backend: EtcdBackend
) -> None:
    written = await backend.txn([], [Op("/u/k", b"1")])
    stream = backend.watch("/u/", written.revision)
    await _next(stream, "the first put")  # the watch is connected
    watching = asyncio.create_task(_anext(stream), name="watch /u/")
    await member.stop()
    async with aclosing(stream):
        with pytest.raises(Unavailable):
            async with asyncio.timeout(5):
                await watching
    for call in (backend.list("/u/"), backend.txn([], [Op("/u/k", b"2")]), backend.start()):
        with pytest.raises(Unavailable, match="etcd"):
            async with asyncio.timeout(backend.client.timeout + 10):  # bounded: never a hang
                await call


async def test_a_quiet_watch_lives_on_progress_notifications_and_a_frozen_etcd_is_noticed(
    tmp_path: Path,
) -> None:
    async with throwaway_member(tmp_path, progress_notify_interval_s=0.2) as member:
        backend = EtcdBackend([member.settings.client_url], watch_idle_timeout=0.8,
                              ssl_context=client_context(member.settings))
        written = await backend.txn([], [Op("/q/k", b"1")])
        stream = backend.watch("/q/", written.revision)
        try:
            await _next(stream, "the put")
            watching = asyncio.create_task(_anext(stream), name="quiet watch")
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
            await stream.aclose()
            await backend.close()
