"""The cfssl signing protocol, as swarmkit's ca/external.go speaks it: one CSR, one POST.

    POST <the ExternalCA's URL, verbatim: https://ca.example:8888/api/v1/cfssl/sign>
         {"certificate_request": "<CSR PEM>", "hosts": ["swarm-worker", "<node ID>"],
          "subject": {"CN": "<node ID>", "names": [{"OU": "swarm-worker", "O": "<cluster ID>"}]},
          "profile": ""}
    200  {"success": true, "result": {"certificate": "<PEM>"}, "errors": [], "messages": []}

Only over https (TLS >= 1.2), each call bounded by 5 s, a reply read up to 256 KiB. A connection
failure, a timeout, a status other than 200 or a reply that is not cfssl's JSON is temporary
(``Unavailable``: sign again later); a 200 with ``success: false`` is the signer's refusal
(``FailedPrecondition``), as swarmkit then marks the certificate FAILED. The certificate's
lifetime is the cfssl profile's, not ``--cert-expiry`` (as Docker).

Called by ``shoal.manager.ca.signing``, which picks the URLs and the TLS context.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from shoal.errors import FailedPrecondition, Unavailable
from shoal.pki.subjects import CA_CN, Role, ou_for_role

__all__ = ["CFSSL", "MAX_REPLY", "REQUEST_TIMEOUT", "cfssl_sign", "sign_request"]

CFSSL = "cfssl"  # the only protocol Docker knows (swarm.ExternalCAProtocolCFSSL)
REQUEST_TIMEOUT = 5.0  # seconds per URL: swarmkit's ExternalRequestTimeout
MAX_REPLY = 256 << 10  # swarmkit's CertificateMaxSize: a chain in cfssl's JSON fits easily


def sign_request(
    csr_pem: str, *, node_id: str, role: Role, cluster_id: str, san_ips: Sequence[str] = ()
) -> dict[str, Any]:
    """cfssl's SignRequest for a node certificate with the subject and SANs the local root
    would give it (swarmkit PrepareCSR; IPs become IP SANs in cfssl)."""
    ou = ou_for_role(role)
    hosts = [ou, node_id, *([CA_CN] if role == "manager" else []), *san_ips]
    return {
        "hosts": list(dict.fromkeys(hosts)),
        "certificate_request": csr_pem,
        "subject": {"CN": node_id, "names": [{"OU": ou, "O": cluster_id}]},
        "profile": "",
    }


async def cfssl_sign(
    url: str, request: Mapping[str, Any], *, ssl_ctx: ssl.SSLContext,
    timeout: float = REQUEST_TIMEOUT,
) -> str:
    """The certificate (PEM) the cfssl signer at ``url`` issues for ``request``."""
    if not url.lower().startswith("https://"):  # never a CSR (or a refusal) in clear
        raise FailedPrecondition(f"{url}: invalid HTTP scheme: an external CA is reached over https")
    connector = aiohttp.TCPConnector(force_close=True)  # nothing kept between signings
    try:
        async with (
            aiohttp.ClientSession(connector=connector,
                                  timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.post(url, json=dict(request), ssl=ssl_ctx) as resp,
        ):
            status, body = resp.status, await _read(resp, url)
    except TimeoutError as exc:
        raise Unavailable(f"{url}: no answer within {timeout:g}s") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise Unavailable(f"{url}: unable to perform certificate signing request: {_reason(exc)}") from exc
    return _certificate(url, status, body)


def _reason(exc: Exception) -> str:
    """The cause, without aiohttp's repr of the SSL context."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return str(exc.certificate_error)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return str(exc.os_error)
    return str(exc) or type(exc).__name__


async def _read(resp: aiohttp.ClientResponse, url: str) -> bytes:
    data = bytearray()
    async for chunk in resp.content.iter_chunked(16 << 10):
        data += chunk
        if len(data) > MAX_REPLY:
            raise Unavailable(f"{url}: reply larger than {MAX_REPLY >> 10} KiB")
    return bytes(data)


def _certificate(url: str, status: int, body: bytes) -> str:
    """The certificate in cfssl's reply; the errors above otherwise."""
    try:
        reply = json.loads(body)
    except ValueError:
        reply = None
    if status != 200:
        detail = _errors(reply) if isinstance(reply, dict) else body.decode(errors="replace")[:200]
        raise Unavailable(f"{url}: unexpected status code in CSR response: {status} - {detail}")
    if not isinstance(reply, dict):
        raise Unavailable(f"{url}: unable to parse JSON response")
    result = reply.get("result")
    if reply.get("success") is not True or result is None:
        errors = _errors(reply)
        raise FailedPrecondition(
            f"{url}: response errors: {errors}" if errors else f"{url}: certificate signing request failed")
    cert = result.get("certificate") if isinstance(result, dict) else None
    if not isinstance(cert, str) or not cert:
        raise FailedPrecondition(f"{url}: no certificate in the signer's result")
    return cert


def _errors(reply: dict[str, Any]) -> str:
    """cfssl's ``errors`` ([{"code", "message"}]) as one line, "" when there are none."""
    items = reply.get("errors")
    if not isinstance(items, list) or not items:
        return ""
    parts = [f"{e.get('code', '')} {e.get('message', '')}".strip() if isinstance(e, dict) else str(e)
             for e in items]
    return "[" + "; ".join(parts) + "]"
