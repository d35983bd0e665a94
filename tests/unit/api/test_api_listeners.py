"""A TCP listener that does not verify its clients is announced as dockerd does: two warnings in
the log at start, and a notice in ``docker info``'s Warnings; one that does says nothing."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import aiohttp
import pytest

from shoal.api import build_app
from shoal.api.server import APITLS, BIND_WARNINGS, serve
from shoal.manager.ca import RootCA
from shoal.pki import NodeIdentity, generate_key_and_csr
from shoal.store.etcd.testing import free_port
from tests.unit.api.test_api_server import FakeEngine


def _tls(tmp_path: Path, *, verify: bool) -> APITLS:
    root = RootCA.create()
    key_pem, csr_pem = generate_key_and_csr()
    cert = root.sign(csr_pem, node_id="apinode0000000000000000001", role="manager",
                     cluster_id="cluster0000000000000000001", san_ips=["127.0.0.1"])
    ident = NodeIdentity(cert_pem=cert, key_pem=key_pem, ca_pem=root.cert_pem)
    ident.save(tmp_path)
    return APITLS(cert=tmp_path / "swarm-node.crt", key=tmp_path / "swarm-node.key",
                  ca=tmp_path / "swarm-root-ca.crt", verify=verify)


async def _info_warnings(url: str, ctx: ssl.SSLContext | None) -> object:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/info", ssl=ctx or False) as r:
        return (await r.json())["Warnings"]


@pytest.mark.parametrize("verify", [False, True], ids=["tls", "tlsverify"])
async def test_tls_without_tlsverify_warns_loudly(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                  verify: bool) -> None:
    tls = _tls(tmp_path, verify=verify)
    host = f"tcp://127.0.0.1:{free_port()}"
    with caplog.at_level(logging.WARNING, logger="shoal.api.server"):
        runner = await serve(build_app(FakeEngine(None)), [host], tls=tls)
    try:
        ctx = ssl.create_default_context(cafile=str(tmp_path / "swarm-root-ca.crt"))
        ctx.check_hostname = False
        if verify:
            ctx.load_cert_chain(tmp_path / "swarm-node.crt", tmp_path / "swarm-node.key")
        warnings = await _info_warnings(f"https://{host[len('tcp://'):]}", ctx)
    finally:
        await runner.cleanup()
    logged = [r.getMessage() for r in caplog.records]
    if verify:
        assert warnings == [] and not logged
        return
    assert logged == [f'{line} host="{host}"' for line in BIND_WARNINGS]
    assert "Binding to IP address without --tlsverify is insecure" in logged[0]
    assert isinstance(warnings, list) and len(warnings) == 1
    assert warnings[0].startswith(f"[DEPRECATION NOTICE]: API is accessible on https://"
                                  f"{host[len('tcp://'):]} without TLS client verification.")
    assert "equivalent to root access on the host" in warnings[0]


async def test_plain_http_on_loopback_warns_too(caplog: pytest.LogCaptureFixture) -> None:
    host = f"tcp://127.0.0.1:{free_port()}"
    with caplog.at_level(logging.WARNING, logger="shoal.api.server"):
        runner = await serve(build_app(FakeEngine(None)), [host])
    try:
        warnings = await _info_warnings(f"http://{host[len('tcp://'):]}", None)
    finally:
        await runner.cleanup()
    assert len(caplog.records) == 2
    assert isinstance(warnings, list)
    assert warnings[0].startswith(f"[DEPRECATION NOTICE]: API is accessible on http://"
                                  f"{host[len('tcp://'):]} without encryption.")
