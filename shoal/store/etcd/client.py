"""A thin asyncio etcd v3 client over etcd's JSON gateway (POST /v3/...), with mutual TLS.

Callers: ``backend.py`` (range, txn, watch), ``member.py`` (status as health check), and the
manager's leadership and membership code (leases, member add/remove/promote). One aiohttp session
per client, built on the caller's ``ssl.SSLContext`` (client certificate + CA). Several endpoints
may be given: a call that cannot *connect* moves on to the next one; a call that connected and then
failed is not replayed elsewhere (a txn might have been applied). Every call is bounded by
``timeout`` and raises ``shoal.errors.Unavailable`` when etcd cannot be reached or does not answer;
etcd's own errors are mapped once, in ``_messages.grpc_error``.
"""

from __future__ import annotations

import io
import ssl
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from shoal.errors import NotFound, ShoalError, Unavailable
from shoal.store.etcd._common import ClosingClient, https_endpoints
from shoal.store.etcd._errors import error_from_body, error_from_stream
from shoal.store.etcd._stream import BROKEN, Deadline, LineReader, watch_result
from shoal.store.etcd.messages import (
    DeleteOp,
    DeleteRangeResponse,
    HeaderOnly,
    Lease,
    Member,
    PutOp,
    PutResponse,
    RangeResponse,
    ResponseHeader,
    Status,
    TxnCompare,
    TxnOp,
    TxnResponse,
    WatchEvent,
    _KeepAlive,
    _Lease,
    _Members,
    _Status,
    b64,
    decode,
)

__all__ = ["EtcdClient", "client_ssl_context"]

_HEADERS = {"Content-Type": "application/json"}
_LARGE_BODY = 1 << 20  # aiohttp wants larger bodies as a stream, written in chunks
_CONNECT_FAILED = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


def client_ssl_context(*, cert_file: Path, key_file: Path, ca_file: Path) -> ssl.SSLContext:
    """A client context for etcd's mutual TLS: our certificate, and trust only ``ca_file``."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    context.load_cert_chain(str(cert_file), str(key_file))
    return context


class EtcdClient(ClosingClient):
    """etcd v3 over the JSON gateway. Use as ``async with EtcdClient(...)`` or call ``close()``."""

    def __init__(
        self, endpoints: Sequence[str], *, ssl_context: ssl.SSLContext, timeout: float = 5.0
    ) -> None:
        self.endpoints = https_endpoints(endpoints)
        self.timeout = timeout  # seconds per call, connection attempts included
        self._ssl = ssl_context
        self._current = 0
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    # --- key/value ----------------------------------------------------------------------------

    async def range(
        self, key: bytes, range_end: bytes = b"", *, revision: int = 0, limit: int = 0,
        serializable: bool = False, keys_only: bool = False, count_only: bool = False,
    ) -> RangeResponse:
        body: dict[str, Any] = {"key": b64(key)}
        if range_end:
            body["range_end"] = b64(range_end)
        for name, value in (("revision", revision), ("limit", limit)):
            if value:
                body[name] = str(value)
        for name, flag in (("serializable", serializable), ("keys_only", keys_only),
                           ("count_only", count_only)):
            if flag:
                body[name] = True
        return decode(await self._post("/v3/kv/range", body), RangeResponse)

    async def put(
        self, key: bytes, value: bytes, *, lease: int = 0, prev_kv: bool = False
    ) -> PutResponse:
        body: dict[str, Any] = PutOp(key, value, lease).encode()["request_put"]
        if prev_kv:
            body["prev_kv"] = True
        return decode(await self._post("/v3/kv/put", body), PutResponse)

    async def delete_range(
        self, key: bytes, range_end: bytes = b"", *, prev_kv: bool = False
    ) -> DeleteRangeResponse:
        body: dict[str, Any] = DeleteOp(key, range_end).encode()["request_delete_range"]
        if prev_kv:
            body["prev_kv"] = True
        return decode(await self._post("/v3/kv/deleterange", body), DeleteRangeResponse)

    async def txn(
        self, compare: Sequence[TxnCompare], success: Sequence[TxnOp],
        failure: Sequence[TxnOp] = (), *, timeout: float | None = None,
    ) -> TxnResponse:
        body = {"compare": [c.encode() for c in compare], "success": [o.encode() for o in success],
                "failure": [o.encode() for o in failure]}
        return decode(await self._post("/v3/kv/txn", body, timeout), TxnResponse)

    async def compact(self, revision: int, *, physical: bool = False) -> ResponseHeader:
        body = {"revision": str(revision), "physical": physical}
        return decode(await self._post("/v3/kv/compaction", body), HeaderOnly).header

    async def watch(
        self, key: bytes, range_end: bytes = b"", *, start_revision: int = 0,
        prev_kv: bool = False, progress_notify: bool = False, idle_timeout: float | None = None,
    ) -> AsyncGenerator[tuple[WatchEvent, ...], None]:
        """Each watch response's events, in revision order; progress messages are skipped.

        Raises ``Compacted`` if ``start_revision`` is compacted, ``Unavailable`` when the stream
        breaks or, with ``idle_timeout``, when nothing (not even a progress notification, see
        ``progress_notify``) arrives for that long. Close it with ``contextlib.aclosing``.
        """
        create: dict[str, Any] = {"key": b64(key), "start_revision": str(start_revision),
                                  "prev_kv": prev_kv, "progress_notify": progress_notify}
        if range_end:
            create["range_end"] = b64(range_end)
        payload = msgspec.json.encode({"create_request": create})
        async with self._bounded("/v3/watch"):
            response = await self._open("/v3/watch", payload)
        try:
            if response.status != 200:
                async with self._bounded("/v3/watch"):
                    raise error_from_body(response.status, await response.read(), "watch")
            lines = LineReader(response)
            timeout: float | None = self.timeout  # for the "created" answer
            while True:
                result = watch_result(await lines.next(timeout), start_revision)
                timeout = idle_timeout
                if result.events:
                    yield result.events
        finally:
            response.close()

    # --- leases -------------------------------------------------------------------------------

    async def lease_grant(self, ttl: int, *, lease_id: int = 0) -> Lease:
        lease = decode(await self._post("/v3/lease/grant", {"TTL": str(ttl), "ID": str(lease_id)}),
                       _Lease)
        if lease.error:
            raise ShoalError(f"etcd lease grant: {lease.error}")
        return Lease(lease.id, lease.ttl)

    async def lease_keepalive(self, lease_id: int) -> Lease:
        """Renew once; raises NotFound if the lease has expired or was revoked."""
        answer = decode(await self._post("/v3/lease/keepalive", {"ID": str(lease_id)}), _KeepAlive)
        if answer.error is not None:
            raise error_from_stream(answer.error, "lease keepalive")
        if answer.result is None or answer.result.ttl <= 0:
            raise NotFound(f"etcd lease keepalive: lease {lease_id:x} has expired")
        return Lease(answer.result.id, answer.result.ttl)

    async def lease_revoke(self, lease_id: int) -> None:
        await self._post("/v3/lease/revoke", {"ID": str(lease_id)})

    # --- cluster and maintenance --------------------------------------------------------------

    async def member_list(self) -> list[Member]:
        answer = decode(await self._post("/v3/cluster/member/list", {}), _Members)
        return [m.public() for m in answer.members]

    async def member_add(
        self, peer_urls: Sequence[str], *, is_learner: bool = False
    ) -> tuple[Member, list[Member]]:
        """Add a member (a learner first, see raft.md 8.2); returns it and the new member list."""
        body = {"peerURLs": list(peer_urls), "isLearner": is_learner}
        answer = decode(await self._post("/v3/cluster/member/add", body), _Members)
        if answer.member is None:
            raise ShoalError("etcd member add: the answer names no member")
        return answer.member.public(), [m.public() for m in answer.members]

    async def member_remove(self, member_id: int) -> list[Member]:
        answer = decode(await self._post("/v3/cluster/member/remove", {"ID": str(member_id)}),
                        _Members)
        return [m.public() for m in answer.members]

    async def member_promote(self, member_id: int) -> list[Member]:
        answer = decode(await self._post("/v3/cluster/member/promote", {"ID": str(member_id)}),
                        _Members)
        return [m.public() for m in answer.members]

    async def status(self, *, timeout: float | None = None) -> Status:
        """The answering member's status (the first endpoint that connects)."""
        return decode(await self._post("/v3/maintenance/status", {}, timeout), _Status).public()

    # --- transport ----------------------------------------------------------------------------

    async def _post(self, path: str, body: dict[str, Any], timeout: float | None = None) -> bytes:
        payload = msgspec.json.encode(body)
        async with self._bounded(path, timeout):
            response = await self._open(path, payload, timeout)
            try:
                data = await response.read()
            except BROKEN as e:
                raise self._lost(path, e) from e
            finally:
                response.release()
        if response.status != 200:
            raise error_from_body(response.status, data, path.removeprefix("/v3/"))
        return data

    def _bounded(self, path: str, timeout: float | None = None) -> Deadline:
        return Deadline(path, self.timeout if timeout is None else timeout, self._rotate)

    async def _open(
        self, path: str, payload: bytes, timeout: float | None = None
    ) -> aiohttp.ClientResponse:
        """POST to the current endpoint, moving on to the next while connections fail."""
        if self._closed:
            raise Unavailable("etcd client is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._ssl, limit=0)
            # No session-wide deadline (aiohttp's default of 5 min would end every watch).
            self._session = aiohttp.ClientSession(connector=connector,
                                                  timeout=aiohttp.ClientTimeout(total=None))
        count = len(self.endpoints)
        per_try = aiohttp.ClientTimeout(sock_connect=(timeout or self.timeout) / count)
        failures: list[str] = []
        for _ in range(count):
            url = self.endpoints[self._current]
            try:
                body = io.BytesIO(payload) if len(payload) > _LARGE_BODY else payload
                return await self._session.post(url + path, data=body, headers=_HEADERS,
                                                timeout=per_try)
            except _CONNECT_FAILED as e:
                reason = getattr(e, "os_error", None) or e or type(e).__name__
                failures.append(f"{url}: {reason}")
                self._rotate()
            except BROKEN as e:
                raise self._lost(path, e) from e
        raise Unavailable(f"etcd {path}: cannot connect to {'; '.join(failures)}")

    def _rotate(self) -> str:
        """Prefer the next endpoint from now on; returns the one that failed."""
        url = self.endpoints[self._current]
        self._current = (self._current + 1) % len(self.endpoints)
        return url

    def _lost(self, path: str, error: BaseException) -> Unavailable:
        url = self._rotate()
        return Unavailable(f"etcd {path} at {url}: connection failed: "
                           f"{error or type(error).__name__}")
