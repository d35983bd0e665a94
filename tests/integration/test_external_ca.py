"""The external CA end to end (issue 14): a real ``cfssl serve`` on loopback holds the key of
the swarm's root; ``swarm init --external-ca ... --ca-cert`` makes it the signer of every node
certificate, joins and role changes are signed by it over mutual TLS, and while it is down a join
fails naming it, nothing is written and the swarm goes on.

cfssl (Debian's golang-cfssl) serves ``/api/v1/cfssl/sign`` over TLS with ``-tls-cert/-tls-key``
and, with ``-mutual-tls-ca``, only to clients whose certificate that CA issued. The first manager
has no certificate yet when it asks for its own at init, so cfssl runs without
``-mutual-tls-ca`` for the init and with it afterwards. Swarm on 127.0.74.x, cfssl on
127.0.74.200:8888.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shoal.dev.local import Daemon, Swarm
from shoal.dev.wait import wait_for
from shoal.pki.identity import NodeIdentity
from tests.integration.conftest import close_and_check

PREFIX = "shoaltest-extca"
BASE_IP = "127.0.74"
CFSSL_IP, CFSSL_PORT = "127.0.74.200", 8888
URL = f"https://{CFSSL_IP}:{CFSSL_PORT}/api/v1/cfssl/sign"
# cfssl's signing profile: node certificates serve and authenticate (swarm TLS is mutual).
CFSSL_CONFIG = {"signing": {"default": {
    "usages": ["signing", "key encipherment", "server auth", "client auth"], "expiry": "2160h"}}}

pytestmark = pytest.mark.skipif(shutil.which("cfssl") is None,
                                reason="needs cfssl (Debian: apt-get install golang-cfssl)")


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _make_pki(directory: Path) -> x509.Certificate:
    """root.pem/root-key.pem (the external CA's root: ECDSA P-256, 10 years), server.pem/
    server-key.pem (cfssl's TLS certificate for CFSSL_IP, from that root) and config.json."""
    now = datetime.now(UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{PREFIX}-root")])
    root = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cfssl")]))
              .issuer_name(name).public_key(server_key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=30))
              .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(CFSSL_IP))]),
                             critical=False)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
              .sign(root_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "root.pem").write_bytes(_pem(root))
    (directory / "root-key.pem").write_bytes(_key_pem(root_key))
    (directory / "server.pem").write_bytes(_pem(server))
    (directory / "server-key.pem").write_bytes(_key_pem(server_key))
    (directory / "config.json").write_text(json.dumps(CFSSL_CONFIG))
    return root


@dataclass
class Cfssl:
    """``cfssl serve`` on CFSSL_IP:CFSSL_PORT with the root's key; its log kept across restarts."""

    directory: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.directory / "cfssl.log"

    def start(self, *, mutual_tls: bool) -> None:
        d = self.directory
        args = ["cfssl", "serve", "-address", CFSSL_IP, "-port", str(CFSSL_PORT),
                "-ca", str(d / "root.pem"), "-ca-key", str(d / "root-key.pem"),
                "-config", str(d / "config.json"),
                "-tls-cert", str(d / "server.pem"), "-tls-key", str(d / "server-key.pem")]
        if mutual_tls:
            args += ["-mutual-tls-ca", str(d / "root.pem")]  # the swarm's node certificates
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
        wait_for("cfssl listening", self._listening, timeout=15)

    def _listening(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"cfssl exited: {self.log.read_text(errors='replace')[-2000:]}")
        with socket.socket() as s:
            return s.connect_ex((CFSSL_IP, CFSSL_PORT)) == 0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def signed(self) -> set[int]:
        """The serial numbers cfssl logged as signed."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return {int(n) for n in re.findall(r"signed certificate with serial number (\d+)", text)}


@pytest.fixture
def extca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Swarm, Cfssl, x509.Certificate]]:
    root_dir = tmp_path_factory.mktemp(PREFIX)
    root = _make_pki(root_dir / "pki")
    cfssl = Cfssl(root_dir / "pki")
    swarm = Swarm(root_dir, base_ip=BASE_IP, prefix=PREFIX)
    try:
        yield swarm, cfssl, root
    finally:
        try:
            cfssl.stop()
        finally:
            close_and_check(swarm)


def _identity(d: Daemon) -> NodeIdentity | None:
    return NodeIdentity.load(d.root / "data" / "swarm" / "certificates")


def _signed_by_cfssl(d: Daemon, root: x509.Certificate, cfssl: Cfssl) -> NodeIdentity:
    ident = _identity(d)
    assert ident is not None, f"{d.hostname} has no certificate"
    assert ident.certificate.issuer == root.subject
    ident.certificate.verify_directly_issued_by(root)
    assert ident.certificate.serial_number in cfssl.signed(), "cfssl did not log this certificate"
    return ident


def _statuses(manager: Daemon) -> list[str]:
    return manager.docker("node", "ls", "--format", "{{.Status}}").stdout.split()


def _join(d: Daemon, manager: Daemon, token: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    return d.docker("swarm", "join", "--token", token, "--advertise-addr", d.ip, f"{manager.ip}:2377",
                    check=check, timeout=90)


def test_an_external_cfssl_signs_every_node_certificate(
        extca: tuple[Swarm, Cfssl, x509.Certificate]) -> None:
    swarm, cfssl, root = extca
    root_pem = _pem(root).decode()

    # init: the swarm's root is cfssl's, and the first manager's certificate comes from cfssl
    cfssl.start(mutual_tls=False)
    manager = swarm.add()
    manager.shoal("swarm", "init", "--advertise-addr", manager.ip, "--dispatcher-heartbeat", "1s",
                  "--external-ca", f"protocol=cfssl,url={URL}", "--ca-cert", str(cfssl.directory / "root.pem"))
    assert _signed_by_cfssl(manager, root, cfssl).role == "manager"
    shown = manager.api("/swarm")
    assert shown["Spec"]["CAConfig"]["ExternalCAs"] == [{"Protocol": "cfssl", "URL": URL, "CACert": root_pem}]
    assert shown["TLSInfo"]["TrustRoot"] == root_pem
    assert f"External CAs:\n     cfssl: {URL}\n" in manager.docker("info").stdout

    # from now on cfssl serves only clients with a certificate of the swarm
    cfssl.stop()
    cfssl.start(mutual_tls=True)
    anonymous = ssl.create_default_context(cafile=str(cfssl.directory / "root.pem"))
    with pytest.raises(httpx.HTTPError):  # no client certificate: refused in the TLS handshake
        httpx.post(URL, json={}, verify=anonymous, timeout=5)
    token = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    worker = swarm.add()
    _join(worker, manager, token)
    assert _signed_by_cfssl(worker, root, cfssl).role == "worker"
    wait_for("2 nodes ready", lambda: _statuses(manager).count("Ready") == 2)

    # cfssl down: a join waits, then fails naming the external CA; nothing is written
    cfssl.stop()
    late = swarm.add()
    res = _join(late, manager, token, check=False)
    assert res.returncode != 0, res.stdout
    assert "the swarm's external CA could not sign" in res.stderr and URL in res.stderr, res.stderr
    assert _identity(late) is None
    assert late.docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip() == "inactive"
    assert _statuses(manager) == ["Ready", "Ready"]  # the swarm goes on: still two nodes, both up

    # a role change needs a certificate too: it waits for cfssl, renewing again and again
    assert "promoted" in manager.docker("node", "promote", worker.hostname).stdout
    before = _identity(worker)
    assert before is not None and before.role == "worker"

    # cfssl back: the renewal and the join go through
    cfssl.start(mutual_tls=True)
    wait_for("the promoted node's manager certificate",
             lambda: (_identity(worker) or before).role == "manager", timeout=60)
    _signed_by_cfssl(worker, root, cfssl)
    wait_for("the promoted node reachable", lambda: "Reachable" in manager.docker(
        "node", "ls", "--filter", f"name={worker.hostname}").stdout, timeout=60)
    _join(late, manager, token)
    assert _signed_by_cfssl(late, root, cfssl).role == "worker"
    wait_for("3 nodes ready", lambda: _statuses(manager).count("Ready") == 3, timeout=30)
