"""The joining client: fetch and check the root CA, trade a token and a CSR for a certificate.

Protocol (the manager's CA endpoints on the swarm port, HTTPS):

- ``GET /ca`` -> 200 text/plain root CA PEM; fetched without verification, then checked
  against the digest in the join token.
- ``POST /ca/join`` (server verified against that CA as ``swarm-manager``) with JSON
  ``{"Token", "CSR", "Availability", "Hostname", "AdvertiseAddr"}`` -> ``{"NodeID", "Certificate", "RootCA"}``.
- ``POST /ca/renew`` over mutual TLS with ``{"CSR"}`` -> ``{"Certificate"}`` (and optionally
  ``"RootCA"``).

Errors come back as ``{"message": ...}``: 403 -> PermissionDenied, 400 -> InvalidArgument,
anything else (and any connection failure) -> Unavailable.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from shoal import aio
from shoal.errors import InvalidArgument, PermissionDenied, ShoalError, Unavailable
from shoal.pki._tls import bootstrap_ssl_context, ca_verifying_ssl_context
from shoal.pki.identity import NodeIdentity, generate_key_and_csr
from shoal.pki.subjects import SERVER_NAME
from shoal.pki.tokens import digest_matches, parse_token

__all__ = ["AVAILABILITIES", "SWARM_PORT", "RaftGrant", "join", "raft_certificate", "renew"]

log = logging.getLogger(__name__)

SWARM_PORT = 2377  # Docker's swarm management port, used when an address has none
AVAILABILITIES = ("active", "pause", "drain", "")
_CONNECT_TIMEOUT = 5.0  # per address, so one dead manager leaves time to try the others


async def join(
    addrs: Sequence[str],
    token: str,
    *,
    hostname: str,
    availability: str = "active",
    advertise_addr: str = "",
    timeout: float = 20.0,
) -> NodeIdentity:
    """Join through the first manager in ``addrs`` that answers; return the new identity.

    A refused token or a root CA that does not match the token fails at once; a manager that
    cannot be reached is skipped; while the managers answer that the swarm has no leader (an
    election), they are asked again. The whole call is bounded by ``timeout`` seconds.
    """
    parse_token(token)  # a malformed token fails before any network traffic
    if availability not in AVAILABILITIES:
        raise InvalidArgument(f"invalid availability {availability!r}")
    if not addrs:
        raise InvalidArgument("no manager address to join")
    key_pem, csr_pem = generate_key_and_csr()
    # AdvertiseAddr: where managers reach this node (its manager status address, and the IP a
    # manager's certificate carries for etcd); the connection's source address is not it.
    body = {"Token": token, "CSR": csr_pem, "Availability": availability, "Hostname": hostname,
            "AdvertiseAddr": advertise_addr}
    errors: list[str] = []
    backoff = aio.Backoff(initial=0.25, cap=2.0)
    try:
        async with aio.timeout(timeout):
            while True:
                errors.clear()
                electing = False
                for addr in addrs:
                    try:
                        return await _join_one(addr, token, body, key_pem, timeout)
                    except Unavailable as exc:
                        log.warning("join via %s failed: %s", addr, exc.message)
                        errors.append(exc.message)
                        electing = electing or isinstance(exc, _Electing)
                if not electing:
                    break
                await backoff.sleep()  # bounded by the join's timeout
    except TimeoutError as exc:
        detail = f" ({'; '.join(errors)})" if errors else ""
        raise Unavailable(f"timed out after {timeout:g}s joining via {', '.join(addrs)}"
                          f"{detail}") from exc
    raise Unavailable("could not join the swarm: " + "; ".join(errors))


async def renew(addr: str, identity: NodeIdentity, *, timeout: float = 20.0) -> NodeIdentity:
    """A new key and certificate for ``identity`` (same node ID), authenticated by its cert."""
    key_pem, csr_pem = generate_key_and_csr()
    try:
        async with aio.timeout(timeout):
            reply = await _call(
                addr,
                "POST",
                "/ca/renew",
                ssl_ctx=identity.client_ssl_context(),
                body={"CSR": csr_pem},
                timeout=timeout,
            )
    except TimeoutError as exc:
        raise Unavailable(f"{addr}: timed out after {timeout:g}s renewing certificate") from exc
    has_root = isinstance(reply, dict) and "RootCA" in reply
    ca_pem = _field(reply, "RootCA", addr) if has_root else identity.ca_pem
    new = _identity(addr, _field(reply, "Certificate", addr), key_pem, ca_pem)
    if new.node_id != identity.node_id or new.cluster_id != identity.cluster_id:
        raise Unavailable(f"{addr}: renewal returned a certificate for another node or cluster")
    return new


@dataclass(frozen=True, slots=True)
class RaftGrant:
    """A manager's etcd certificate (from the raft CA), the members to join through, the
    store DEK that opens the swarm's keys in the store ("" from a swarm made without one), and
    the unlock key that wraps it on disk ("" unless autolock is on)."""

    cert_pem: str
    key_pem: str
    ca_pem: str
    endpoints: list[str]
    store_dek: str = ""
    unlock_key: str = ""


async def raft_certificate(addrs: list[str], identity: NodeIdentity, *, timeout: float = 20.0) -> RaftGrant:
    """``POST /ca/raft`` with a manager certificate, trying each manager in turn."""
    key_pem, csr_pem = generate_key_and_csr()
    errors: list[str] = []
    for addr in addrs:
        try:
            reply = await _call(addr, "POST", "/ca/raft", ssl_ctx=identity.client_ssl_context(),
                                body={"CSR": csr_pem}, timeout=timeout)
            endpoints = reply.get("Endpoints") if isinstance(reply, dict) else None
            if not isinstance(endpoints, list) or not endpoints:
                raise Unavailable(f"{addr}: no etcd member to join through")
            return RaftGrant(_field(reply, "Certificate", addr), key_pem, _field(reply, "RaftCA", addr),
                             [str(e) for e in endpoints], str(reply.get("StoreDEK") or ""),
                             str(reply.get("UnlockKey") or ""))
        except Unavailable as exc:
            errors.append(exc.message)
    raise Unavailable("could not get an etcd certificate: " + "; ".join(errors))


async def _join_one(
    addr: str, token: str, body: dict[str, str], key_pem: str, timeout: float
) -> NodeIdentity:
    ca_pem = await _call(addr, "GET", "/ca", ssl_ctx=bootstrap_ssl_context(), timeout=timeout)
    if not isinstance(ca_pem, str):
        raise Unavailable(f"{addr}: GET /ca did not return a PEM certificate")
    if not digest_matches(token, ca_pem):
        expected = parse_token(token).digest.hex()
        raise PermissionDenied(
            "error while validating Root CA Certificate: remote CA does not match fingerprint"
            f" in join token. Expected: {expected}"
        )
    reply = await _call(
        addr,
        "POST",
        "/ca/join",
        ssl_ctx=ca_verifying_ssl_context(ca_pem),
        body=body,
        timeout=timeout,
    )
    root_pem = _field(reply, "RootCA", addr)
    if not digest_matches(token, root_pem):
        raise PermissionDenied(f"{addr}: join returned a root CA that does not match the token")
    identity = _identity(addr, _field(reply, "Certificate", addr), key_pem, root_pem)
    if identity.node_id != _field(reply, "NodeID", addr):
        raise Unavailable(f"{addr}: certificate is not for the returned node ID")
    return identity


def _identity(addr: str, cert_pem: str, key_pem: str, ca_pem: str) -> NodeIdentity:
    try:
        return NodeIdentity(cert_pem=cert_pem, key_pem=key_pem, ca_pem=ca_pem)
    except InvalidArgument as exc:
        raise Unavailable(
            f"{addr}: manager returned an unusable certificate: {exc.message}"
        ) from exc


def _field(reply: Any, name: str, addr: str) -> str:
    value = reply.get(name) if isinstance(reply, dict) else None
    if not isinstance(value, str) or not value:
        raise Unavailable(f"{addr}: malformed reply: no {name}")
    return value


def _url(addr: str, path: str) -> str:
    """``https://host:port/path``; the port defaults to 2377, bare IPv6 gets brackets."""
    host = addr.strip()
    if host.startswith("["):
        return f"https://{host}{path}" if "]:" in host else f"https://{host}:{SWARM_PORT}{path}"
    if host.count(":") > 1:  # bare IPv6 address
        return f"https://[{host}]:{SWARM_PORT}{path}"
    if ":" not in host:
        host = f"{host}:{SWARM_PORT}"
    return f"https://{host}{path}"


async def _call(
    addr: str,
    method: str,
    path: str,
    *,
    ssl_ctx: ssl.SSLContext,
    timeout: float,
    body: dict[str, str] | None = None,
) -> Any:
    """One request; the decoded JSON reply (text for text/plain); errors mapped as above."""
    client_timeout = aiohttp.ClientTimeout(
        total=timeout, sock_connect=min(_CONNECT_TIMEOUT, timeout)
    )
    # A fresh connection per call: one verified with another context is never reused.
    connector = aiohttp.TCPConnector(force_close=True)
    try:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session,
            session.request(
                method, _url(addr, path), json=body, ssl=ssl_ctx, server_hostname=SERVER_NAME
            ) as resp,
        ):
            text = await resp.text()
            if resp.status != 200:
                raise _error(resp.status, text, addr)
            if resp.content_type == "application/json":
                return json.loads(text)
            return text
    except ShoalError:
        raise
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        raise Unavailable(f"{addr}: {method} {path} failed: {exc or type(exc).__name__}") from exc


def _error(status: int, text: str, addr: str) -> ShoalError:
    try:
        payload = json.loads(text)
        message = str(payload["message"]) if isinstance(payload, dict) else text
    except (ValueError, KeyError):
        message = text.strip() or f"HTTP {status}"
    if status == 403:
        return PermissionDenied(message)
    if status == 400:
        return InvalidArgument(message)
    if status == 503:
        return _Electing(f"{addr}: {message}")
    return Unavailable(f"{addr}: {message}")


class _Electing(Unavailable):
    """A manager answered, but the swarm has no leader for now (an election, a new member
    being promoted): worth asking again within the join's time."""
