"""A renewed etcd certificate needs no restart: etcd 3.4 reads its certificate files again on
each new handshake (etcd PRs 7784 and 9570), the gRPC client and the member's health checks
take the new pair for their next connections, and a watch already running goes on."""

from __future__ import annotations

import asyncio
import shutil
import ssl
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path

import pytest
from cryptography import x509

from shoal.errors import Unavailable
from shoal.store.etcd import EtcdMember
from shoal.store.etcd.grpc_client import GrpcEtcdClient
from shoal.store.etcd.testing import ThrowawayPKI, make_pki, reissue, throwaway_member


@pytest.fixture
async def member(tmp_path: Path) -> AsyncIterator[EtcdMember]:
    async with throwaway_member(tmp_path) as started:
        yield started


async def _served_certificate(url: str, ca_file: Path, cert_file: Path, key_file: Path) -> x509.Certificate:
    """The certificate etcd presents on a new connection."""
    host, port = url.removeprefix("https://").rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=str(ca_file))
    ctx.load_cert_chain(str(cert_file), str(key_file))
    _, writer = await asyncio.open_connection(host, int(port), ssl=ctx)
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der)
    finally:
        writer.close()
        await writer.wait_closed()


def _renewed(member: EtcdMember, directory: Path) -> ThrowawayPKI:
    """A new pair from the member's own CA (throwaway_member keeps the CA key beside it)."""
    s = member.settings
    own = ThrowawayPKI(s.trusted_ca_file, s.cert_file, s.key_file,
                       s.trusted_ca_file.with_name("ca-key.pem"))
    return reissue(own, directory)


def _replace(member: EtcdMember, new_cert: Path, new_key: Path) -> None:
    """What EtcdTLS.save does: the files at the paths etcd was started with are replaced."""
    s = member.settings
    shutil.copy(new_key, s.key_file.with_suffix(".new"))
    shutil.copy(new_cert, s.cert_file.with_suffix(".new"))
    s.key_file.with_suffix(".new").replace(s.key_file)
    s.cert_file.with_suffix(".new").replace(s.cert_file)


async def test_etcd_serves_replaced_files_on_new_connections(member: EtcdMember, tmp_path: Path) -> None:
    s = member.settings
    first = await _served_certificate(s.client_url, s.trusted_ca_file, s.cert_file, s.key_file)
    renewed = _renewed(member, tmp_path / "renewed")
    _replace(member, renewed.cert_file, renewed.key_file)
    second = await _served_certificate(s.client_url, s.trusted_ca_file, s.cert_file, s.key_file)
    assert first.serial_number != second.serial_number
    assert second.serial_number == x509.load_pem_x509_certificate(renewed.cert_file.read_bytes()).serial_number
    await member.reload_certificate()  # the health checks' next connections present the new pair
    assert member.healthy


async def test_the_grpc_client_takes_new_credentials_for_new_connections(
        member: EtcdMember, tmp_path: Path) -> None:
    s = member.settings
    async with GrpcEtcdClient([s.client_url], cert_file=s.cert_file, key_file=s.key_file,
                              ca_file=s.trusted_ca_file, timeout=2.0) as client:
        await client.put(b"/k", b"1")
        watch = client.watch(b"/k", start_revision=1)
        async with aclosing(watch):
            async with asyncio.timeout(5):
                first = await anext(watch)
            assert first[0].kv.value == b"1"
            # A certificate etcd does not trust: the next connection is refused, which shows the
            # client uses it; the watch keeps its connection and goes on.
            other = make_pki(tmp_path / "other")
            await client.use_certificate(cert_pem=other.cert_file.read_bytes(),
                                         key_pem=other.key_file.read_bytes(),
                                         ca_pem=s.trusted_ca_file.read_bytes())
            with pytest.raises(Unavailable):
                await client.put(b"/k", b"2")
            # A renewed certificate from etcd's CA: calls work again, the watch still reads.
            renewed = _renewed(member, tmp_path / "renewed")
            await client.use_certificate(cert_pem=renewed.cert_file.read_bytes(),
                                         key_pem=renewed.key_file.read_bytes(),
                                         ca_pem=s.trusted_ca_file.read_bytes())
            await client.put(b"/k", b"3")
            async with asyncio.timeout(5):
                later = await anext(watch)
            assert later[-1].kv.value == b"3"
        # the watch is over: its retired channel is closed at the next call
        await client.range(b"/k")
        assert client._retired == []
