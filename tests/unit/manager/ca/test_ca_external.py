"""The cfssl client: the request swarmkit sends, the replies it reads, the errors it maps,
against a tiny cfssl signer over TLS on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable

import pytest
from aiohttp import web
from cryptography import x509
from fake_cfssl import refusal, serve_cfssl, server_identity

from shoal.errors import FailedPrecondition, Unavailable
from shoal.manager.ca import RootCA
from shoal.manager.ca.external import MAX_REPLY, cfssl_sign, sign_request
from shoal.pki import NodeIdentity, generate_key_and_csr
from shoal.pki._tls import ca_verifying_ssl_context

MakeIdentity = Callable[..., NodeIdentity]


def test_the_request_is_swarmkits_prepare_csr() -> None:
    _, csr = generate_key_and_csr()
    worker = sign_request(csr, node_id="n1", role="worker", cluster_id="c1")
    assert worker == {
        "hosts": ["swarm-worker", "n1"],
        "certificate_request": csr,
        "subject": {"CN": "n1", "names": [{"OU": "swarm-worker", "O": "c1"}]},
        "profile": "",
    }
    manager = sign_request(csr, node_id="n2", role="manager", cluster_id="c1",
                           san_ips=["127.0.0.1", "10.0.0.2"])
    assert manager["hosts"] == ["swarm-manager", "n2", "swarm-ca", "127.0.0.1", "10.0.0.2"]
    assert manager["subject"]["names"] == [{"OU": "swarm-manager", "O": "c1"}]


async def test_signs_over_mutual_tls_with_the_managers_certificate(
        root: RootCA, make_identity: MakeIdentity) -> None:
    manager = make_identity("manager")
    request = sign_request(generate_key_and_csr()[1], node_id="n1", role="worker", cluster_id="c1")
    async with serve_cfssl(root, tls=server_identity(root), require_client_cert=True) as cfssl:
        cert = await cfssl_sign(cfssl.url, request, ssl_ctx=manager.external_ssl_context(root.cert_pem))
        with pytest.raises(Unavailable, match="unable to perform certificate signing request"):
            await cfssl_sign(cfssl.url, request, ssl_ctx=ca_verifying_ssl_context(root.cert_pem))
    leaf = x509.load_pem_x509_certificate(cert.encode())
    assert leaf.issuer == root.certificate.subject
    assert cfssl.requests[0] == request
    assert cfssl.clients[0] is not None and cfssl.clients[0].node_id == manager.node_id


async def test_the_server_must_verify_against_the_given_ca(root: RootCA) -> None:
    other = RootCA.create()
    request = sign_request(generate_key_and_csr()[1], node_id="n1", role="worker", cluster_id="c1")
    async with serve_cfssl(root, tls=server_identity(other)) as cfssl:
        with pytest.raises(Unavailable, match="certificate verify failed"):
            await cfssl_sign(cfssl.url, request, ssl_ctx=ca_verifying_ssl_context(root.cert_pem))
    assert not cfssl.requests


@pytest.mark.parametrize(("reply", "error", "message"), [
    (refusal("Unknown profile"), FailedPrecondition, r"response errors: \[5300 Unknown profile\]"),
    ((200, b'{"success": false, "result": null, "errors": []}'), FailedPrecondition,
     "certificate signing request failed"),
    ((200, b'{"success": true, "result": {"certificate": 7}}'), FailedPrecondition,
     "no certificate in the signer's result"),
    ((400, json.dumps({"success": False, "errors": [{"code": 1002, "message": "bad CSR"}]}).encode()),
     Unavailable, r"unexpected status code in CSR response: 400 - \[1002 bad CSR\]"),
    ((502, b"gateway down"), Unavailable, "unexpected status code in CSR response: 502 - gateway down"),
    ((200, b"<html>"), Unavailable, "unable to parse JSON response"),
    ((200, b" " * (MAX_REPLY + 1)), Unavailable, "reply larger than 256 KiB"),
])
async def test_replies_map_to_temporary_or_permanent_errors(
        root: RootCA, reply: tuple[int, bytes], error: type[Exception], message: str) -> None:
    request = sign_request(generate_key_and_csr()[1], node_id="n1", role="worker", cluster_id="c1")
    async with serve_cfssl(root, tls=server_identity(root)) as cfssl:
        cfssl.replies.append(reply)
        with pytest.raises(error, match=message) as caught:
            await cfssl_sign(cfssl.url, request, ssl_ctx=ca_verifying_ssl_context(root.cert_pem))
    assert cfssl.url in str(caught.value)


async def test_an_unreachable_or_silent_signer_is_temporary(root: RootCA) -> None:
    ctx = ca_verifying_ssl_context(root.cert_pem)
    request = sign_request(generate_key_and_csr()[1], node_id="n1", role="worker", cluster_id="c1")
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(Unavailable, match="unable to perform certificate signing request"):
        await cfssl_sign(f"https://127.0.0.1:{port}/api/v1/cfssl/sign", request, ssl_ctx=ctx)

    never = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await never.wait()
        return web.Response()

    app = web.Application()
    app.router.add_post("/sign", hang)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_identity(root).server_ssl_context())
        await site.start()
        host, port = runner.addresses[0][:2]
        with pytest.raises(Unavailable, match="no answer within 0.2s"):
            await cfssl_sign(f"https://{host}:{port}/sign", request, ssl_ctx=ctx, timeout=0.2)
    finally:
        never.set()
        await runner.cleanup()


async def test_plain_http_is_never_used(root: RootCA) -> None:
    request = sign_request(generate_key_and_csr()[1], node_id="n1", role="worker", cluster_id="c1")
    with pytest.raises(FailedPrecondition, match="invalid HTTP scheme"):
        await cfssl_sign("http://127.0.0.1:1/sign", request, ssl_ctx=ca_verifying_ssl_context(root.cert_pem))
