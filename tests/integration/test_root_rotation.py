"""Root CA rotation (`docker swarm ca --rotate`), as the docker CLI drives it: two managers, a
worker and a running service. The CLI's own progress display runs to its end and prints the new
root; then every node reports (node inspect's TLS info) and holds on disk (its roots, and a
certificate chaining to them) the new root, the service's tasks are the ones from before, still
running, the old join token is refused and the new one lets a node join. Then a root made with
openssl, given with `--ca-cert`/`--ca-key`, is installed the same way.

Run from the repository (sim executor, loopback 127.0.84.x, names shoaltest-rot*; about a
minute):
    PYTHONPATH=. .venv/bin/python -m pytest -q -p no:cacheprovider tests/integration/test_root_rotation.py
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store

from shoal.dev.local import Daemon, Swarm
from shoal.dev.wait import wait_for
from tests.integration.quorum import statuses

pytestmark = pytest.mark.integration

PREFIX = "shoaltest-rot"
BASE_IP = "127.0.84"  # the conftest swarm fixture names and addresses its daemons after these
SERVICE = "shoaltest-rot-web"
ROTATION_TIMEOUT = 120  # seconds for `swarm ca --rotate` to converge (it takes a few)

_CA_CONFIG = """\
[req]
distinguished_name = dn
x509_extensions = v3
prompt = no
[dn]
CN = shoaltest-rot-ca
[v3]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
"""


def _pems(text: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(text[text.find("-----BEGIN"):].encode())


def _tasks(manager: Daemon) -> dict[str, str]:
    """The service's tasks desired running: ID -> state."""
    filters = json.dumps({"service": [SERVICE], "desired-state": ["running"]})
    return {t["ID"]: t["Status"]["State"] for t in manager.api(f"/tasks?filters={filters}")}


def _certificates_dir(d: Daemon) -> Path:
    return d.root / "data" / "swarm" / "certificates"


def check_rotated_to(daemons: list[Daemon], manager: Daemon, root: x509.Certificate) -> None:
    """The swarm shows ``root``, every node reports it and keeps it on disk, with a certificate
    chaining to it."""
    info = manager.api("/swarm")
    assert not info["RootRotationInProgress"]
    trust_root = info["TLSInfo"]["TrustRoot"]
    assert _pems(trust_root) == [root]
    for node in manager.api("/nodes"):
        tls = node["Description"]["TLSInfo"]
        assert tls["TrustRoot"] == trust_root, node["Description"]["Hostname"]
        assert (tls["CertIssuerSubject"], tls["CertIssuerPublicKey"]) == (
            info["TLSInfo"]["CertIssuerSubject"], info["TLSInfo"]["CertIssuerPublicKey"])
    verifier = PolicyBuilder().store(Store([root])).build_client_verifier()
    for d in daemons:
        files = _certificates_dir(d)
        assert _pems((files / "swarm-root-ca.crt").read_text()) == [root], d.hostname
        chain = _pems((files / "swarm-node.crt").read_text())
        verifier.verify(chain[0], chain[1:])  # raises if it does not chain to the new root


def rotate(manager: Daemon, *flags: str) -> x509.Certificate:
    """`docker swarm ca --rotate` until its progress display ends; the root it prints."""
    res = manager.docker("swarm", "ca", "--rotate", *flags, timeout=ROTATION_TIMEOUT)
    assert "desired root digest" in res.stdout, res.stdout  # the progress display ran
    printed = _pems(res.stdout[res.stdout.rfind("-----BEGIN CERTIFICATE-----"):])
    assert len(printed) == 1, res.stdout
    return printed[0]


def make_root(directory: Path) -> tuple[Path, Path]:
    """A root CA of our own, made with openssl: ECDSA P-256, two years."""
    config, cert, key = directory / "ca.cnf", directory / "ca.crt", directory / "ca.key"
    config.write_text(_CA_CONFIG)
    subprocess.run(["openssl", "req", "-x509", "-config", str(config), "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "730"], check=True, capture_output=True)
    return cert, key


@pytest.mark.timeout(420)
def test_swarm_ca_rotate(swarm: Swarm, tmp_path: Path) -> None:
    first = swarm.add()
    first.docker("swarm", "init", "--advertise-addr", first.ip, "--dispatcher-heartbeat", "1s")
    tokens = {role: first.docker("swarm", "join-token", "-q", role).stdout.strip()
              for role in ("manager", "worker")}
    for role in ("manager", "worker"):
        d = swarm.add()
        d.docker("swarm", "join", "--token", tokens[role], "--advertise-addr", d.ip,
                 f"{first.ip}:2377", timeout=120)
    nodes = list(swarm.daemons)
    wait_for("2 managers reachable, 3 nodes ready", lambda: statuses(first) == {"Ready": 3, "managers": 2},
             timeout=90)
    first.docker("service", "create", "-d", "--name", SERVICE, "--replicas", "3",
                 "--replicas-max-per-node", "1", "busybox")
    wait_for(f"{SERVICE} running on every node",
             lambda: list(_tasks(first).values()) == ["running"] * 3, timeout=60)
    tasks = _tasks(first)
    old_root = _pems(first.docker("swarm", "ca").stdout)[0]

    new_root = rotate(first)
    assert new_root != old_root
    check_rotated_to(nodes, first, new_root)
    assert _tasks(first) == tasks  # the same tasks, never stopped

    new_tokens = {role: first.docker("swarm", "join-token", "-q", role).stdout.strip()
                  for role in ("manager", "worker")}
    assert all(new_tokens[r] != tokens[r] for r in tokens)
    joining = swarm.add()
    refused = joining.docker("swarm", "join", "--token", tokens["worker"], "--advertise-addr",
                             joining.ip, f"{first.ip}:2377", check=False, timeout=60)
    assert refused.returncode != 0 and "does not match fingerprint" in refused.stderr, refused.stderr
    joining.docker("swarm", "join", "--token", new_tokens["worker"], "--advertise-addr", joining.ip,
                   f"{first.ip}:2377", timeout=60)
    nodes.append(joining)
    wait_for("the new worker ready", lambda: statuses(first)["Ready"] == 4, timeout=60)

    cert, key = make_root(tmp_path)
    ours = x509.load_pem_x509_certificate(cert.read_bytes())
    second = swarm.daemons[1]  # through the other manager this time
    assert rotate(second, "--ca-cert", str(cert), "--ca-key", str(key)) == ours
    check_rotated_to(nodes, first, ours)
    assert {t: s for t, s in _tasks(first).items() if t in tasks} == tasks
    assert first.docker("swarm", "ca").stdout.strip() == cert.read_text().strip()
