"""A tiny cfssl signer on 127.0.0.1 over TLS (certificates made with ``cryptography`` through
RootCA): it answers ``POST /api/v1/cfssl/sign`` as ``cfssl serve`` does, records each request
and the client certificate it came with, and can be told to answer otherwise."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from shoal.manager.ca import RootCA
from shoal.pki import NodeIdentity, PeerIdentity, generate_key_and_csr, peer_identity

PATH = "/api/v1/cfssl/sign"


def server_identity(ca: RootCA) -> NodeIdentity:
    """A TLS server certificate for 127.0.0.1 from ``ca``."""
    key, csr = generate_key_and_csr()
    cert = ca.sign(csr, node_id="cfssl", role="worker", cluster_id="cfssl", san_ips=["127.0.0.1"])
    return NodeIdentity(cert_pem=cert, key_pem=key, ca_pem=ca.cert_pem)


@dataclass
class FakeCfssl:
    signer: RootCA  # the key cfssl signs with (-ca/-ca-key)
    replies: list[tuple[int, bytes]] = field(default_factory=list)  # answered first, in order
    requests: list[dict[str, Any]] = field(default_factory=list)
    clients: list[PeerIdentity | None] = field(default_factory=list)
    url: str = ""

    async def sign(self, request: web.Request) -> web.Response:
        self.requests.append(await request.json())
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        self.clients.append(peer_identity(ssl_object))
        if self.replies:
            status, body = self.replies.pop(0)
            return web.Response(status=status, body=body, content_type="application/json")
        req = self.requests[-1]
        names = req["subject"]["names"][0]
        ips = [h for h in req["hosts"] if _is_ip(h)]
        role = "manager" if names["OU"] == "swarm-manager" else "worker"
        cert = self.signer.sign(req["certificate_request"], node_id=req["subject"]["CN"], role=role,
                                cluster_id=names["O"], san_ips=ips)
        return web.json_response({"success": True, "result": {"certificate": cert},
                                  "errors": [], "messages": []})


def refusal(message: str, code: int = 5300) -> tuple[int, bytes]:
    """cfssl's answer to a request it will not sign (HTTP 200, success false)."""
    return 200, json.dumps({"success": False, "result": None, "messages": [],
                            "errors": [{"code": code, "message": message}]}).encode()


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@contextlib.asynccontextmanager
async def serve_cfssl(signer: RootCA, *, tls: NodeIdentity,
                      require_client_cert: bool = False) -> AsyncIterator[FakeCfssl]:
    """A FakeCfssl on a free port, serving with ``tls``; with ``require_client_cert``, only to
    clients whose certificate ``tls``'s CA issued (cfssl's ``-mutual-tls-ca``)."""
    fake = FakeCfssl(signer)
    app = web.Application()
    app.router.add_post(PATH, fake.sign)
    ctx = tls.server_ssl_context()
    if require_client_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        host, port = runner.addresses[0][:2]
        fake.url = f"https://{host}:{port}{PATH}"
        yield fake
    finally:
        await runner.cleanup()
