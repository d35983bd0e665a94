"""Root rotation's cross-signing and states: a certificate from the new root's key, followed by
the new root cross-signed by the old one, verifies against the old root, the new root and both
(cryptography's X.509 verifier, and openssl); what ``swarm update`` stores for each CAConfig, with
Docker's refusals; and the end state."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from shoal.errors import InvalidArgument
from shoal.manager.bootstrap import NewSwarm, new_swarm
from shoal.manager.ca import RootCA
from shoal.manager.ca.rotation import (
    desired_issuer,
    desired_root_ca,
    finished_root_ca,
    set_root_ca,
    trust_bundle,
)
from shoal.manager.deks import ClusterKeys, is_sealed
from shoal.model.objects import Cluster, RootCAState
from shoal.model.requests import InitRequest
from shoal.model.specs import CAConfig
from shoal.pki import NodeIdentity, generate_key_and_csr
from shoal.pki.subjects import issuer_fields
from shoal.pki.tokens import digest_matches

CLUSTER = "c1"


def _leaf(signer: RootCA, role: str = "manager") -> tuple[str, str]:
    key, csr = generate_key_and_csr()
    return signer.sign(csr, node_id="node1", role=role, cluster_id=CLUSTER,  # type: ignore[arg-type]
                       san_ips=["127.0.0.1"]), key


def _certs(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode())


def _rotating_signer(old: RootCA, new: RootCA) -> RootCA:
    return new.with_chain([old.cross_sign(new.certificate)])


def test_the_cross_signed_root_is_the_new_root_issued_by_the_old() -> None:
    old, new = RootCA.create(), RootCA.create()
    cross = old.cross_sign(new.certificate)
    assert cross.subject == new.certificate.subject and cross.issuer == old.certificate.subject
    assert cross.public_key() == new.certificate.public_key()
    assert cross.not_valid_before_utc == new.certificate.not_valid_before_utc
    assert cross.not_valid_after_utc == new.certificate.not_valid_after_utc
    cross.verify_directly_issued_by(old.certificate)
    aki = cross.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = old.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert cross.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert issuer_fields(cross) == issuer_fields(new.certificate)


def test_a_non_ca_certificate_is_not_cross_signed() -> None:
    old = RootCA.create()
    leaf = _certs(_leaf(old)[0])[0]
    with pytest.raises(InvalidArgument, match="certificate not a CA"):
        old.cross_sign(leaf)


@pytest.mark.parametrize("role", ["manager", "worker"])
@pytest.mark.parametrize("trusted", ["old", "new", "both"])
def test_a_certificate_from_the_new_key_chains_to_either_root(role: str, trusted: str) -> None:
    old, new = RootCA.create(), RootCA.create()
    chain = _certs(_leaf(_rotating_signer(old, new), role)[0])
    assert len(chain) == 2  # the leaf, then the cross-signed root
    roots = {"old": [old.certificate], "new": [new.certificate],
             "both": [old.certificate, new.certificate]}[trusted]
    client = PolicyBuilder().store(Store(roots)).build_client_verifier()
    verified = client.verify(chain[0], chain[1:])
    assert verified.chain[-1] in roots
    if role == "manager":  # managers serve the swarm port, as swarm-manager
        server = PolicyBuilder().store(Store(roots)).build_server_verifier(x509.DNSName("swarm-manager"))
        server.verify(chain[0], chain[1:])


def test_a_certificate_from_the_new_key_does_not_chain_to_an_unrelated_root() -> None:
    old, new, other = RootCA.create(), RootCA.create(), RootCA.create()
    chain = _certs(_leaf(_rotating_signer(old, new))[0])
    with pytest.raises(x509.verification.VerificationError):
        PolicyBuilder().store(Store([other.certificate])).build_client_verifier().verify(chain[0], chain[1:])


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_openssl_agrees(tmp_path: Path) -> None:
    old, new = RootCA.create(), RootCA.create()
    pem, _ = _leaf(_rotating_signer(old, new))
    leaf, cross = _certs(pem)
    files = {"old": old.cert_pem, "new": new.cert_pem,
             "leaf": leaf.public_bytes(serialization.Encoding.PEM).decode(),
             "cross": cross.public_bytes(serialization.Encoding.PEM).decode()}
    for name, text in files.items():
        (tmp_path / f"{name}.pem").write_text(text)

    def verify(ca: str, *untrusted: str) -> bool:
        argv = ["openssl", "verify", "-CAfile", str(tmp_path / f"{ca}.pem")]
        for u in untrusted:
            argv += ["-untrusted", str(tmp_path / f"{u}.pem")]
        res = subprocess.run([*argv, str(tmp_path / "leaf.pem")], check=False, capture_output=True)
        return res.returncode == 0

    assert verify("old", "cross") and verify("new", "cross") and verify("new")
    assert not verify("old")  # the cross-signed root is what links the two


@pytest.mark.parametrize("trusted", ["old", "both", "new"])
def test_a_node_identity_through_a_rotation(trusted: str) -> None:
    old, new = RootCA.create(), RootCA.create()
    cert, key = _leaf(_rotating_signer(old, new), "worker")
    roots = {"old": old.cert_pem, "both": old.cert_pem + new.cert_pem, "new": new.cert_pem}[trusted]
    identity = NodeIdentity(cert_pem=cert, key_pem=key, ca_pem=roots)
    info = identity.tls_info()
    assert info.trust_root == roots
    assert (info.cert_issuer_subject, info.cert_issuer_public_key) == issuer_fields(new.certificate)


def test_a_node_from_the_old_root_cannot_trust_the_new_alone() -> None:
    old, new = RootCA.create(), RootCA.create()
    cert, key = _leaf(old, "worker")
    identity = NodeIdentity(cert_pem=cert, key_pem=key, ca_pem=old.cert_pem)
    assert identity.with_trust(old.cert_pem + new.cert_pem).tls_info().cert_issuer_public_key == \
        issuer_fields(old.certificate)[1]
    with pytest.raises(InvalidArgument, match="not signed by the root CA"):
        identity.with_trust(new.cert_pem)


# -- what swarm update stores ------------------------------------------------------------------

@pytest.fixture
async def swarm() -> NewSwarm:
    return await new_swarm(InitRequest(), hostname="m1", advertise_ip="127.0.0.1",
                           manager_addr="127.0.0.1:2377")


def _root_ca(cluster: Cluster) -> RootCAState:
    assert cluster.root_ca is not None
    return cluster.root_ca


def _with(cluster: Cluster, root_ca: RootCAState) -> Cluster:
    updated = Cluster(id=cluster.id, spec=cluster.spec, join_tokens=cluster.join_tokens)
    set_root_ca(updated, root_ca)
    return updated


def _own_root(*, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
              days: int = 730, ca: bool = True, not_before: datetime | None = None) -> tuple[str, str]:
    """A root made outside shoal (as `openssl req -x509` would): PEM certificate and key."""
    key = key or ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "my-root")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def test_an_unchanged_ca_config_changes_nothing(swarm: NewSwarm) -> None:
    keys = ClusterKeys(swarm.dek)
    assert desired_root_ca(swarm.cluster, CAConfig(), keys) is swarm.cluster.root_ca


def test_force_rotate_starts_a_rotation_to_a_new_root(swarm: NewSwarm) -> None:
    keys, cluster = ClusterKeys(swarm.dek), swarm.cluster
    state = desired_root_ca(cluster, CAConfig(force_rotate=1), keys)
    rotation = state.root_rotation
    assert rotation is not None and state.last_forced_rotation == 1
    assert state.ca_cert == _root_ca(cluster).ca_cert and state.ca_key == _root_ca(cluster).ca_key
    assert is_sealed(rotation.ca_key)  # the new key is sealed like the root's
    rotating = _with(cluster, state)
    signer = keys.signer(rotating)
    new = x509.load_pem_x509_certificate(rotation.ca_cert.encode())
    assert new.subject == keys.root_ca(cluster).certificate.subject  # CN=swarm-ca again
    chain = _certs(_leaf(signer)[0])
    PolicyBuilder().store(Store([keys.root_ca(cluster).certificate])).build_client_verifier().verify(
        chain[0], chain[1:])
    assert trust_bundle(state) == state.ca_cert + rotation.ca_cert
    assert rotating.root_rotation_in_progress
    assert rotating.tls_info.trust_root == state.ca_cert  # the CLI shows the current root...
    assert (rotating.tls_info.cert_issuer_subject,  # ...and the issuer every node should get
            rotating.tls_info.cert_issuer_public_key) == issuer_fields(new) == desired_issuer(state)
    # The same request again (a retried update) does not start another rotation.
    assert desired_root_ca(rotating, CAConfig(force_rotate=1), keys) is rotating.root_ca


def test_the_rotation_ends_with_the_new_root_and_new_tokens(swarm: NewSwarm) -> None:
    keys, cluster = ClusterKeys(swarm.dek), swarm.cluster
    rotating = _with(cluster, desired_root_ca(cluster, CAConfig(force_rotate=1), keys))
    rotation = _root_ca(rotating).root_rotation
    assert rotation is not None
    state, tokens = finished_root_ca(rotating)
    assert state.root_rotation is None and state.last_forced_rotation == 1
    assert (state.ca_cert, state.ca_key) == (rotation.ca_cert, rotation.ca_key)
    assert (state.raft_ca_cert, state.raft_ca_key) == (_root_ca(cluster).raft_ca_cert,
                                                        _root_ca(cluster).raft_ca_key)
    assert digest_matches(tokens.worker, state.ca_cert) and digest_matches(tokens.manager, state.ca_cert)
    assert not digest_matches(tokens.worker, _root_ca(cluster).ca_cert)
    done = _with(rotating, state)
    assert not done.root_rotation_in_progress and done.tls_info.trust_root == rotation.ca_cert
    assert keys.signer(done).sign(generate_key_and_csr()[1], node_id="n", role="worker",
                                  cluster_id=CLUSTER).count("BEGIN CERTIFICATE") == 1


@pytest.mark.parametrize("key", [ec.generate_private_key(ec.SECP256R1()),
                                 rsa.generate_private_key(public_exponent=65537, key_size=2048)],
                         ids=["ecdsa", "rsa"])
def test_a_root_of_ones_own_is_cross_signed(swarm: NewSwarm,
                                             key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    keys, cluster = ClusterKeys(swarm.dek), swarm.cluster
    cert, key_pem = _own_root(key=key)
    state = desired_root_ca(cluster, CAConfig(signing_ca_cert=cert, signing_ca_key=key_pem), keys)
    assert state.root_rotation is not None and state.root_rotation.ca_cert == cert
    chain = _certs(_leaf(keys.signer(_with(cluster, state)))[0])
    for root in (keys.root_ca(cluster).certificate, _certs(cert)[0]):
        PolicyBuilder().store(Store([root])).build_client_verifier().verify(chain[0], chain[1:])


def _refusal(swarm: NewSwarm, config: CAConfig, cluster: Cluster | None = None) -> str:
    with pytest.raises(InvalidArgument) as info:
        desired_root_ca(cluster or swarm.cluster, config, ClusterKeys(swarm.dek))
    prefix = "rpc error: code = InvalidArgument desc = "
    assert info.value.message.startswith(prefix)
    return info.value.message[len(prefix):]


def test_docker_refusals(swarm: NewSwarm) -> None:
    cert, key = _own_root()
    other_cert, other_key = _own_root()
    assert _refusal(swarm, CAConfig(signing_ca_key=key)) == \
        "if a signing CA key is provided, the signing CA cert must also be provided"
    assert _refusal(swarm, CAConfig(signing_ca_cert=cert)) == (
        "there must be at least one valid, reachable external CA corresponding to the desired CA "
        "certificate")
    assert _refusal(swarm, CAConfig(signing_ca_cert=cert, signing_ca_key=other_key)) == \
        "certificate key mismatch"
    assert _refusal(swarm, CAConfig(signing_ca_cert=cert + other_cert, signing_ca_key=key)) == \
        "the desired CA certificate cannot contain multiple certificates"
    assert _refusal(swarm, CAConfig(signing_ca_cert=cert, signing_ca_key="not a key")).startswith(
        "malformed private key")
    assert _refusal(swarm, CAConfig(signing_ca_cert="junk", signing_ca_key=key)) == \
        "no valid root CA certificates found"
    soon_cert, soon_key = _own_root(days=300)
    assert _refusal(swarm, CAConfig(signing_ca_cert=soon_cert, signing_ca_key=soon_key)) == \
        "CA certificate expires too soon"
    later_cert, later_key = _own_root(not_before=datetime.now(UTC) + timedelta(days=1))
    assert "not yet valid" in _refusal(swarm, CAConfig(signing_ca_cert=later_cert, signing_ca_key=later_key))
    leaf_cert, leaf_key = _own_root(ca=False)
    assert _refusal(swarm, CAConfig(signing_ca_cert=leaf_cert, signing_ca_key=leaf_key)) == \
        "certificate not a CA"
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    small_cert, small_key = _own_root(key=small)
    assert _refusal(swarm, CAConfig(signing_ca_cert=small_cert, signing_ca_key=small_key)) == \
        "unsupported RSA key parameters"
    # Signed by another root: not a root.
    issuer = RootCA.create()
    not_root = issuer.cross_sign(_certs(cert)[0]).public_bytes(serialization.Encoding.PEM).decode()
    assert _refusal(swarm, CAConfig(signing_ca_cert=not_root, signing_ca_key=key)).startswith(
        "error while validating Root CA Certificate")


def test_a_new_certificate_for_the_current_key_is_refused(swarm: NewSwarm) -> None:
    keys = ClusterKeys(swarm.dek)
    current = keys.root_ca(swarm.cluster)
    assert current.key_pem is not None
    key = serialization.load_pem_private_key(current.key_pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    cert, key_pem = _own_root(key=key)
    assert _refusal(swarm, CAConfig(signing_ca_cert=cert, signing_ca_key=key_pem)) == \
        "Cannot update to a cert with an identical key"


def test_the_current_root_given_again_abandons_the_rotation(swarm: NewSwarm) -> None:
    keys, cluster = ClusterKeys(swarm.dek), swarm.cluster
    rotating = _with(cluster, desired_root_ca(cluster, CAConfig(force_rotate=1), keys))
    current = keys.root_ca(cluster)
    assert current.key_pem is not None
    state = desired_root_ca(rotating, CAConfig(signing_ca_cert=current.cert_pem,
                                                signing_ca_key=current.key_pem, force_rotate=1), keys)
    assert state.root_rotation is None and state.ca_cert == current.cert_pem
    assert keys.root_ca(_with(cluster, state)).key_pem == current.key_pem


def test_the_rotation_target_given_again_keeps_the_rotation(swarm: NewSwarm) -> None:
    keys, cluster = ClusterKeys(swarm.dek), swarm.cluster
    cert, key = _own_root()
    first = desired_root_ca(cluster, CAConfig(signing_ca_cert=cert, signing_ca_key=key), keys)
    again = desired_root_ca(_with(cluster, first), CAConfig(signing_ca_cert=cert, signing_ca_key=key), keys)
    assert first.root_rotation is not None and again.root_rotation is not None
    # the same cross-signed root: nodes that renewed already need not again
    assert again.root_rotation.cross_signed_ca_cert == first.root_rotation.cross_signed_ca_cert
