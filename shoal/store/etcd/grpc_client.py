"""An asyncio etcd v3 client over native gRPC (grpc.aio), with mutual TLS.

The same public API, results and errors as ``shoal.store.etcd.client.EtcdClient`` (the JSON
gateway client), for less of etcd's CPU per request: the gateway decodes JSON and then makes a
loopback gRPC call of its own, which this client spares it. Only the constructor differs: gRPC's
TLS cannot take an ``ssl.SSLContext``, so it takes the PEM files (or ``from_pem`` the PEM text)::

    GrpcEtcdClient(endpoints, cert_file=..., key_file=..., ca_file=..., timeout=5.0)

Authentication: etcd maps the client certificate's CN to an etcd user (``--client-cert-auth``);
once the managers enable it (``shoal.manager.etcdusers``) a certificate whose user is gone is
refused (PermissionDenied). The ``user_*``/``auth_enable`` calls manage those users; a request
refused because the users changed while it was in flight is sent again, after a short backoff
(at most ``_STALE_AUTH_RETRIES`` times). Endpoints stay ``https://IP:PORT`` URLs; the gRPC target is ``IP:PORT``, and gRPC checks the
member's certificate against that IP (IP SANs, as the JSON client does). One channel (one HTTP/2
connection of its own) per endpoint, opened at first use. A call that cannot *connect* moves on
to the next endpoint, within the same time bound; a call that was sent and then lost its
connection is not replayed elsewhere (a txn might have been applied), but the next call starts
at the next endpoint. Every call is bounded by ``timeout`` (connecting included) and raises
``shoal.errors.Unavailable`` when etcd cannot be reached or does not answer; etcd's own errors
are mapped once, in ``_errors.grpc_error``. Stubs: ``_pb`` (scripts/gen-etcd-proto).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

import grpc

from shoal import aio
from shoal.errors import InvalidArgument, NotFound, ShoalError, Unavailable
from shoal.store.backend import Compacted
from shoal.store.etcd._common import ClosingClient, https_endpoints
from shoal.store.etcd._errors import StaleAuthRevision, grpc_error
from shoal.store.etcd._pb import auth_pb2, kv_pb2, rpc_pb2, rpc_pb2_grpc
from shoal.store.etcd.messages import (
    DeleteOp,
    DeleteRangeResponse,
    KeyValue,
    Lease,
    Member,
    PutOp,
    PutResponse,
    RangeResponse,
    ResponseHeader,
    ResponseOp,
    Status,
    TxnCompare,
    TxnOp,
    TxnResponse,
    WatchEvent,
)

__all__ = ["GrpcEtcdClient"]

T = TypeVar("T")

_READY = grpc.ChannelConnectivity.READY
_SETTLED = (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE,
            grpc.ChannelConnectivity.SHUTDOWN)
# Codes gRPC itself gives a call whose connection failed or was reset ("Socket closed", "Stream
# removed": RST_STREAM when etcd stops); etcd's own errors say "etcdserver: ...".
_TRANSPORT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL)
_CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    # A watch message can carry many revisions of 1.5 MiB transactions (gRPC's default: 4 MiB).
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
    # A connection of this client's own, as with the JSON client: not one shared process-wide
    # with every other channel to the same member (gRPC's global subchannel pool).
    ("grpc.use_local_subchannel_pool", 1),
    # A member that restarts is back within a second or two; gRPC's default backoff (1 s, up
    # to 120 s) would keep failing calls to it fast for minutes.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.enable_http_proxy", 0),  # etcd is never behind an https_proxy
)
# A request refused because etcd's users changed in flight is sent again after these delays: a
# burst of user changes (authentication turned on, a manager joining) lasts a few raft rounds.
_STALE_AUTH_RETRIES = 10
_STALE_AUTH_DELAY = (0.005, 0.1)  # seconds: the first delay, the cap (doubling, jittered)
_COMPARE_TARGETS = {
    "VERSION": rpc_pb2.Compare.VERSION, "CREATE": rpc_pb2.Compare.CREATE,
    "MOD": rpc_pb2.Compare.MOD, "VALUE": rpc_pb2.Compare.VALUE, "LEASE": rpc_pb2.Compare.LEASE,
}
_COMPARE_RESULTS = {
    "EQUAL": rpc_pb2.Compare.EQUAL, "GREATER": rpc_pb2.Compare.GREATER,
    "LESS": rpc_pb2.Compare.LESS, "NOT_EQUAL": rpc_pb2.Compare.NOT_EQUAL,
}


class _Channel:
    """One endpoint: its channel and the etcd service stubs on it."""

    def __init__(self, url: str, credentials: Any) -> None:
        self.url = url
        self.active = 0  # calls in flight and streams open on it (a retired channel waits for 0)
        self.channel: Any = grpc.aio.secure_channel(url.removeprefix("https://"), credentials,
                                                    options=_CHANNEL_OPTIONS)
        self.kv = rpc_pb2_grpc.KVStub(self.channel)
        self.watch = rpc_pb2_grpc.WatchStub(self.channel)
        self.lease = rpc_pb2_grpc.LeaseStub(self.channel)
        self.cluster = rpc_pb2_grpc.ClusterStub(self.channel)
        self.maintenance = rpc_pb2_grpc.MaintenanceStub(self.channel)
        self.auth = rpc_pb2_grpc.AuthStub(self.channel)


@dataclass(slots=True)
class _Stream:
    """An open streaming call and its first answer; ``done()`` when it is no longer read."""

    call: Any
    first: Any
    url: str
    channel: _Channel

    def done(self) -> None:
        self.call.cancel()
        self.channel.active -= 1


class GrpcEtcdClient(ClosingClient):
    """etcd v3 over gRPC. Use as ``async with GrpcEtcdClient(...)`` or call ``close()``."""

    def __init__(
        self, endpoints: Sequence[str], *, cert_file: Path | str, key_file: Path | str,
        ca_file: Path | str, timeout: float = 5.0,
    ) -> None:
        """``cert_file``/``key_file``: our client certificate and key; ``ca_file``: the only CA
        trusted for the members' certificates. All PEM, read now."""
        self._setup(endpoints, Path(cert_file).read_bytes(), Path(key_file).read_bytes(),
                    Path(ca_file).read_bytes(), timeout)

    @classmethod
    def from_pem(
        cls, endpoints: Sequence[str], *, cert_pem: str | bytes, key_pem: str | bytes,
        ca_pem: str | bytes, timeout: float = 5.0,
    ) -> Self:
        """The same client from PEM text (e.g. ``shoal.manager.ca.etcdtls.EtcdTLS``'s)."""
        client = cls.__new__(cls)
        client._setup(endpoints, _pem(cert_pem), _pem(key_pem), _pem(ca_pem), timeout)
        return client

    def _setup(self, endpoints: Sequence[str], cert: bytes, key: bytes, ca: bytes,
               timeout: float) -> None:
        self.endpoints = https_endpoints(endpoints)
        self.timeout = timeout  # seconds per call, connection attempts included
        self._credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key,
                                                         certificate_chain=cert)
        self._channels: list[_Channel | None] = [None] * len(self.endpoints)
        self._retired: list[_Channel] = []  # made with older credentials, closed once idle
        self._current = 0
        self._closed = False

    async def use_certificate(self, *, cert_pem: str | bytes, key_pem: str | bytes,
                              ca_pem: str | bytes) -> None:
        """A renewed client certificate: calls from now on go over new connections that present
        it. Calls and watches already running keep their connection (TLS checks a certificate
        only at the handshake); their channel is closed once they are all over."""
        self._credentials = grpc.ssl_channel_credentials(
            root_certificates=_pem(ca_pem), private_key=_pem(key_pem), certificate_chain=_pem(cert_pem))
        self._retired += [c for c in self._channels if c is not None]
        self._channels = [None] * len(self.endpoints)
        await self._close_idle_retired()

    async def _close_idle_retired(self) -> None:
        idle = [c for c in self._retired if c.active == 0]
        self._retired = [c for c in self._retired if c.active > 0]
        for channel in idle:
            await channel.channel.close()

    async def close(self) -> None:
        """Close every channel; calls and watches still running end with Unavailable."""
        self._closed = True
        channels = [c for c in self._channels if c is not None] + self._retired
        self._channels, self._retired = [None] * len(self.endpoints), []
        for channel in channels:
            await channel.channel.close()

    # --- key/value ----------------------------------------------------------------------------

    async def range(
        self, key: bytes, range_end: bytes = b"", *, revision: int = 0, limit: int = 0,
        serializable: bool = False, keys_only: bool = False, count_only: bool = False,
    ) -> RangeResponse:
        request = rpc_pb2.RangeRequest(key=key, range_end=range_end, revision=revision,
                                       limit=limit, serializable=serializable,
                                       keys_only=keys_only, count_only=count_only)
        return _range(await self._unary(lambda c: c.kv.Range, request, "kv/range"))

    async def put(
        self, key: bytes, value: bytes, *, lease: int = 0, prev_kv: bool = False
    ) -> PutResponse:
        request = rpc_pb2.PutRequest(key=key, value=value, lease=lease, prev_kv=prev_kv)
        return _put(await self._unary(lambda c: c.kv.Put, request, "kv/put"))

    async def delete_range(
        self, key: bytes, range_end: bytes = b"", *, prev_kv: bool = False
    ) -> DeleteRangeResponse:
        request = rpc_pb2.DeleteRangeRequest(key=key, range_end=range_end, prev_kv=prev_kv)
        return _deleted(await self._unary(lambda c: c.kv.DeleteRange, request, "kv/deleterange"))

    async def txn(
        self, compare: Sequence[TxnCompare], success: Sequence[TxnOp],
        failure: Sequence[TxnOp] = (), *, timeout: float | None = None,
    ) -> TxnResponse:
        request = rpc_pb2.TxnRequest(compare=[_compare(c) for c in compare],
                                     success=[_request_op(o) for o in success],
                                     failure=[_request_op(o) for o in failure])
        answer: rpc_pb2.TxnResponse = await self._unary(lambda c: c.kv.Txn, request, "kv/txn",
                                                        timeout)
        return TxnResponse(_header(answer.header), answer.succeeded,
                           tuple(_response_op(r) for r in answer.responses))

    async def compact(self, revision: int, *, physical: bool = False) -> ResponseHeader:
        request = rpc_pb2.CompactionRequest(revision=revision, physical=physical)
        answer: rpc_pb2.CompactionResponse = await self._unary(lambda c: c.kv.Compact, request,
                                                               "kv/compaction")
        return _header(answer.header)

    async def watch(
        self, key: bytes, range_end: bytes = b"", *, start_revision: int = 0,
        prev_kv: bool = False, progress_notify: bool = False, idle_timeout: float | None = None,
    ) -> AsyncGenerator[tuple[WatchEvent, ...], None]:
        """Each watch response's events, in revision order; progress messages are skipped.

        Raises ``Compacted`` if ``start_revision`` is compacted, ``Unavailable`` when the stream
        breaks or, with ``idle_timeout``, when nothing (not even a progress notification, see
        ``progress_notify``) arrives for that long. Close it with ``contextlib.aclosing``.
        """
        create = rpc_pb2.WatchCreateRequest(key=key, range_end=range_end,
                                            start_revision=start_revision,
                                            progress_notify=progress_notify, prev_kv=prev_kv)
        request = rpc_pb2.WatchRequest(create_request=create)
        stream = await self._stream(lambda c: c.watch.Watch, request, "watch")
        call, response = stream.call, stream.first
        try:
            while True:
                if response.compact_revision:
                    raise Compacted(f"etcd watch: revision {start_revision} is compacted "
                                    f"(oldest kept: {response.compact_revision})")
                if response.canceled:
                    raise Unavailable(f"etcd watch: canceled by the server: "
                                      f"{response.cancel_reason or '?'}")
                if response.events:
                    yield tuple(_event(e) for e in response.events)
                response = await self._read(call, idle_timeout, "watch", stream.url)
        finally:
            stream.done()

    # --- leases -------------------------------------------------------------------------------

    async def lease_grant(self, ttl: int, *, lease_id: int = 0) -> Lease:
        request = rpc_pb2.LeaseGrantRequest(TTL=ttl, ID=lease_id)
        answer: rpc_pb2.LeaseGrantResponse = await self._unary(lambda c: c.lease.LeaseGrant,
                                                               request, "lease/grant")
        if answer.error:
            raise ShoalError(f"etcd lease grant: {answer.error}")
        return Lease(answer.ID, answer.TTL)

    async def lease_keepalive(self, lease_id: int) -> Lease:
        """Renew once; raises NotFound if the lease has expired or was revoked.

        One LeaseKeepAlive stream per call: one request, its answer, then the stream is closed.
        """
        request = rpc_pb2.LeaseKeepAliveRequest(ID=lease_id)
        stream = await self._stream(lambda c: c.lease.LeaseKeepAlive, request, "lease/keepalive")
        stream.done()
        answer: rpc_pb2.LeaseKeepAliveResponse = stream.first
        if answer.TTL <= 0:
            raise NotFound(f"etcd lease keepalive: lease {lease_id:x} has expired")
        return Lease(answer.ID, answer.TTL)

    async def lease_revoke(self, lease_id: int) -> None:
        await self._unary(lambda c: c.lease.LeaseRevoke, rpc_pb2.LeaseRevokeRequest(ID=lease_id),
                          "lease/revoke")

    # --- cluster and maintenance --------------------------------------------------------------

    async def member_list(self) -> list[Member]:
        answer: rpc_pb2.MemberListResponse = await self._unary(
            lambda c: c.cluster.MemberList, rpc_pb2.MemberListRequest(), "cluster/member/list")
        return [_member(m) for m in answer.members]

    async def member_add(
        self, peer_urls: Sequence[str], *, is_learner: bool = False
    ) -> tuple[Member, list[Member]]:
        """Add a member (a learner first, see raft.md 8.2); returns it and the new member list."""
        request = rpc_pb2.MemberAddRequest(peerURLs=list(peer_urls), isLearner=is_learner)
        answer: rpc_pb2.MemberAddResponse = await self._unary(lambda c: c.cluster.MemberAdd,
                                                              request, "cluster/member/add")
        if not answer.HasField("member"):
            raise ShoalError("etcd member add: the answer names no member")
        return _member(answer.member), [_member(m) for m in answer.members]

    async def member_remove(self, member_id: int) -> list[Member]:
        answer: rpc_pb2.MemberRemoveResponse = await self._unary(
            lambda c: c.cluster.MemberRemove, rpc_pb2.MemberRemoveRequest(ID=member_id),
            "cluster/member/remove")
        return [_member(m) for m in answer.members]

    async def member_promote(self, member_id: int) -> list[Member]:
        answer: rpc_pb2.MemberPromoteResponse = await self._unary(
            lambda c: c.cluster.MemberPromote, rpc_pb2.MemberPromoteRequest(ID=member_id),
            "cluster/member/promote")
        return [_member(m) for m in answer.members]

    async def status(self, *, timeout: float | None = None) -> Status:
        """The answering member's status (the first endpoint that connects)."""
        s: rpc_pb2.StatusResponse = await self._unary(
            lambda c: c.maintenance.Status, rpc_pb2.StatusRequest(), "maintenance/status",
            timeout)
        return Status(_header(s.header), s.version, s.dbSize, s.dbSizeInUse, s.leader,
                      s.raftIndex, s.raftTerm, s.raftAppliedIndex, s.isLearner, tuple(s.errors))

    # --- authentication (each call needs the root role once authentication is on) -------------

    async def user_add(self, name: str) -> None:
        """A user without a password: only a client certificate with CN=``name`` is it.
        FailedPrecondition if it exists."""
        request = rpc_pb2.AuthUserAddRequest(name=name,
                                             options=auth_pb2.UserAddOptions(no_password=True))
        await self._unary(lambda c: c.auth.UserAdd, request, "auth/user/add")

    async def user_grant_role(self, name: str, role: str) -> None:
        request = rpc_pb2.AuthUserGrantRoleRequest(user=name, role=role)
        await self._unary(lambda c: c.auth.UserGrantRole, request, "auth/user/grant")

    async def user_delete(self, name: str) -> None:
        """FailedPrecondition if there is no such user."""
        await self._unary(lambda c: c.auth.UserDelete, rpc_pb2.AuthUserDeleteRequest(name=name),
                          "auth/user/delete")

    async def user_list(self) -> list[str]:
        answer: rpc_pb2.AuthUserListResponse = await self._unary(
            lambda c: c.auth.UserList, rpc_pb2.AuthUserListRequest(), "auth/user/list")
        return list(answer.users)

    async def auth_enable(self) -> None:
        """Turn authentication on (a no-op if it is); needs a user ``root`` with the root role."""
        await self._unary(lambda c: c.auth.AuthEnable, rpc_pb2.AuthEnableRequest(), "auth/enable")

    # --- transport ----------------------------------------------------------------------------

    async def _unary(self, rpc: Callable[[_Channel], Any], request: Any, where: str,
                     timeout: float | None = None) -> Any:
        """One request, one answer, at the first endpoint that connects."""

        async def call(channel: _Channel, left: float) -> Any:
            return await rpc(channel)(request, timeout=left)

        return await self._fresh(call, where, self.timeout if timeout is None else timeout)

    async def _stream(self, rpc: Callable[[_Channel], Any], request: Any, where: str) -> _Stream:
        """Open a streaming call, send ``request`` and wait for the first answer (within the
        timeout, like any call); the stream itself has no deadline."""

        async def call(channel: _Channel, left: float) -> _Stream:
            stream = rpc(channel)()
            try:
                async with aio.timeout(left):
                    await stream.write(request)
                    first = await stream.read()
            except BaseException:
                stream.cancel()
                raise
            if first is grpc.aio.EOF:  # ended without a status: not seen, but not an answer
                stream.cancel()
                raise Unavailable(f"etcd {where} at {channel.url}: the server ended the stream")
            channel.active += 1  # until the caller's ``done()``
            return _Stream(stream, first, channel.url, channel)

        return await self._fresh(call, where, self.timeout)

    async def _fresh(self, call: Callable[[_Channel, float], Awaitable[T]], where: str,
                     budget: float) -> T:
        """``_attempt``, again while etcd refuses it unapplied for users changed meanwhile."""
        initial, cap = _STALE_AUTH_DELAY
        backoff = aio.Backoff(initial=initial, cap=cap, jitter=0.5)
        for _ in range(_STALE_AUTH_RETRIES):
            try:
                return await self._attempt(call, where, budget)
            except StaleAuthRevision:
                await backoff.sleep()
        return await self._attempt(call, where, budget)

    async def _attempt(self, call: Callable[[_Channel, float], Awaitable[T]], where: str,
                       budget: float) -> T:
        """Run ``call`` at the current endpoint, moving on while connecting fails; a connection
        attempt that hangs gets an equal share of what is left of ``budget``."""
        if self._closed:
            raise Unavailable("etcd client is closed")
        if self._retired:
            await self._close_idle_retired()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        count = len(self.endpoints)
        failures: list[str] = []
        for attempt in range(count):
            if self._closed:  # closed meanwhile: open no new channel
                raise Unavailable(f"etcd {where}: the client was closed")
            index = self._current
            channel = self._channel(index)
            left = deadline - loop.time()
            if left <= 0:
                break
            channel.active += 1  # before any await: a renewal may retire it meanwhile
            try:
                if not await _connected(channel.channel, left / (count - attempt)):
                    failures.append(f"{channel.url}: no connection within "
                                    f"{left / (count - attempt):.3g} s")
                    self._advance(index)
                    continue
                return await call(channel, max(deadline - loop.time(), 0.001))
            except grpc.aio.AioRpcError as e:
                if _not_sent(e):
                    failures.append(f"{channel.url}: {e.details()}")
                    self._advance(index)
                    continue
                raise self._error(e, where, index, budget) from None
            except TimeoutError:
                self._advance(index)
                raise Unavailable(f"etcd {where} at {channel.url}: no answer within "
                                  f"{budget:g} s") from None
            except asyncio.CancelledError:
                if self._closed_under(asyncio.current_task()):
                    raise Unavailable(f"etcd {where}: the client was closed") from None
                raise
            finally:
                channel.active -= 1
        if loop.time() >= deadline:
            raise Unavailable(f"etcd {where}: no answer within {budget:g} s "
                              f"({'; '.join(failures) or 'no time left to connect'})")
        raise Unavailable(f"etcd {where}: cannot connect to {'; '.join(failures)}")

    async def _read(self, call: Any, timeout: float | None, where: str, url: str) -> Any:
        """The next message of an open stream; Unavailable on silence, a break or its end."""
        try:
            async with aio.timeout(timeout):
                message = await call.read()
        except TimeoutError:
            raise Unavailable(f"etcd {where}: nothing received for {timeout:g} s") from None
        except grpc.aio.AioRpcError as e:
            raise self._error(e, where, self.endpoints.index(url), None) from None
        except asyncio.CancelledError:
            if self._closed_under(asyncio.current_task()):
                raise Unavailable(f"etcd {where}: the client was closed") from None
            raise
        if message is grpc.aio.EOF:
            raise Unavailable(f"etcd {where}: the server ended the stream")
        return message

    def _channel(self, index: int) -> _Channel:
        channel = self._channels[index]
        if channel is None:
            channel = _Channel(self.endpoints[index], self._credentials)
            self._channels[index] = channel
        return channel

    def _advance(self, index: int) -> None:
        """Prefer the endpoint after ``index`` from now on (unless another call already did)."""
        if self._current == index:
            self._current = (index + 1) % len(self.endpoints)

    def _error(self, e: Any, where: str, index: int, budget: float | None) -> ShoalError:
        code, details, url = e.code(), e.details() or "", self.endpoints[index]
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            self._advance(index)
            return Unavailable(f"etcd {where} at {url}: no answer within {budget:g} s"
                               if budget is not None else f"etcd {where} at {url}: {details}")
        if code in _TRANSPORT and not details.startswith("etcdserver:"):
            self._advance(index)  # the connection broke (or etcd stopped): not etcd's answer
            return Unavailable(f"etcd {where} at {url}: connection failed: {details}")
        if code == grpc.StatusCode.CANCELLED and self._closed:
            return Unavailable(f"etcd {where}: the client was closed")
        return grpc_error(code.value[0], details, where)

    def _closed_under(self, task: asyncio.Task[Any] | None) -> bool:
        """Whether a CancelledError is grpc.aio's for a call that ``close()`` ended (that is
        Unavailable) rather than a cancellation of the calling task (which stays one)."""
        return self._closed and (task is None or task.cancelling() == 0)


async def _connected(channel: Any, limit: float) -> bool:
    """Wait up to ``limit`` for the channel to connect or to fail (then the call fails fast
    with gRPC's reason); False if it is still trying."""
    state = channel.get_state(try_to_connect=True)
    if state is _READY:
        return True
    try:
        async with aio.timeout(limit):
            while state not in _SETTLED:
                await channel.wait_for_state_change(state)
                state = channel.get_state(try_to_connect=True)
    except TimeoutError:
        return False
    return True


def _not_sent(e: Any) -> bool:
    """The call never reached a server: no connection could be made (safe to try elsewhere)."""
    return bool(e.code() == grpc.StatusCode.UNAVAILABLE
                and (e.details() or "").startswith("failed to connect to all addresses"))


def _pem(text: str | bytes) -> bytes:
    return text.encode("ascii") if isinstance(text, str) else text


# --- protobuf -> shoal's result dataclasses ------------------------------------------------------


def _header(h: rpc_pb2.ResponseHeader) -> ResponseHeader:
    return ResponseHeader(h.cluster_id, h.member_id, h.revision, h.raft_term)


def _kv(kv: kv_pb2.KeyValue) -> KeyValue:
    return KeyValue(kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease)


def _range(r: rpc_pb2.RangeResponse) -> RangeResponse:
    return RangeResponse(_header(r.header), tuple(_kv(kv) for kv in r.kvs), r.more, r.count)


def _put(r: rpc_pb2.PutResponse) -> PutResponse:
    return PutResponse(_header(r.header), _kv(r.prev_kv) if r.HasField("prev_kv") else None)


def _deleted(r: rpc_pb2.DeleteRangeResponse) -> DeleteRangeResponse:
    return DeleteRangeResponse(_header(r.header), r.deleted, tuple(_kv(kv) for kv in r.prev_kvs))


def _response_op(r: rpc_pb2.ResponseOp) -> ResponseOp:
    which = r.WhichOneof("response")
    if which == "response_range":
        return ResponseOp(response_range=_range(r.response_range))
    if which == "response_put":
        return ResponseOp(response_put=_put(r.response_put))
    if which == "response_delete_range":
        return ResponseOp(response_delete_range=_deleted(r.response_delete_range))
    return ResponseOp()  # a nested txn: never sent by this client


def _event(e: kv_pb2.Event) -> WatchEvent:
    return WatchEvent(_kv(e.kv), "DELETE" if e.type == kv_pb2.Event.DELETE else "PUT",
                      _kv(e.prev_kv) if e.HasField("prev_kv") else None)


def _member(m: rpc_pb2.Member) -> Member:
    return Member(m.ID, m.name, tuple(m.peerURLs), tuple(m.clientURLs), m.isLearner)


# --- shoal's request types -> protobuf ---------------------------------------------------------


def _compare(c: TxnCompare) -> rpc_pb2.Compare:
    message = rpc_pb2.Compare(key=c.key, target=_COMPARE_TARGETS[c.target],
                              result=_COMPARE_RESULTS[c.result])
    if c.target == "VALUE":
        message.value = c.value if isinstance(c.value, bytes) else str(c.value).encode()
    elif isinstance(c.value, bytes):
        raise InvalidArgument(f"etcd txn: a {c.target} compare takes an int, got {c.value!r}")
    elif c.target == "MOD":
        message.mod_revision = c.value
    elif c.target == "CREATE":
        message.create_revision = c.value
    elif c.target == "VERSION":
        message.version = c.value
    else:
        message.lease = c.value
    return message


def _request_op(op: TxnOp) -> rpc_pb2.RequestOp:
    if isinstance(op, PutOp):
        return rpc_pb2.RequestOp(
            request_put=rpc_pb2.PutRequest(key=op.key, value=op.value, lease=op.lease))
    if isinstance(op, DeleteOp):
        return rpc_pb2.RequestOp(request_delete_range=rpc_pb2.DeleteRangeRequest(
            key=op.key, range_end=op.range_end))
    return rpc_pb2.RequestOp(
        request_range=rpc_pb2.RangeRequest(key=op.key, range_end=op.range_end))
