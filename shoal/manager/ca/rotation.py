"""Root CA rotation: what ``swarm ca --rotate`` asks for, and the states the cluster object goes
through (swarmkit manager/controlapi/ca_rotation.go, ca/reconciler.go ``finishRootRotation``).

    RootCA{old}  --swarm update-->  RootCA{old, RootRotation{new, key, cross-signed}}
                 --every node's certificate issued by new (reconciler.py)-->  RootCA{new}

``desired_root_ca`` is the control API's half: from the spec's CAConfig (``ForceRotate``
changed: a new generated root; ``SigningCACert``/``SigningCAKey``: the operator's root, checked
as swarmkit does, with its messages) it gives the RootCAState to store. A new root is
cross-signed by the old root's key: the CA then signs with the new key and appends the
cross-signed certificate, so a node that trusts only the old root accepts the new certificates.
Nodes trust both roots meanwhile (``trust_bundle``, sent over their sessions);
``finished_root_ca`` is the reconciler's half, once every node holds a certificate from the new
root: the new root alone, join tokens with its digest.

Only the swarm root rotates. The managers' etcd certificates come from the separate raft CA,
which Docker does not have (its raft traffic uses the node certificates) and which no command
rotates.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shoal.errors import FailedPrecondition, InvalidArgument, Unimplemented
from shoal.manager.ca.rootca import MIN_ROOT_CA_VALIDITY, RootCA
from shoal.manager.ca.signing import matching_external_cas
from shoal.manager.deks import ClusterKeys
from shoal.model.objects import Cluster, JoinTokens, RootCAState, RootRotation, TLSInfo
from shoal.model.specs import CAConfig
from shoal.pki.subjects import issuer_fields
from shoal.pki.tokens import generate_token

__all__ = [
    "ROOT_KEY",
    "desired_issuer",
    "desired_root_ca",
    "finished_root_ca",
    "set_root_ca",
    "trust_bundle",
]

ROOT_KEY = "root CA key"  # what ClusterKeys binds the sealed key to: the root's and the next's
_RPC = "rpc error: code = InvalidArgument desc = "  # how dockerd shows swarmkit's refusals


def trust_bundle(root_ca: RootCAState) -> str:
    """The roots a node trusts: the old one first (a joining node checks it against its token),
    and the new one while a rotation lasts."""
    rotation = root_ca.root_rotation
    return root_ca.ca_cert + (rotation.ca_cert if rotation is not None else "")


def desired_issuer(root_ca: RootCAState) -> tuple[str, str]:
    """The issuer (TLSInfo's subject, public key) every node's certificate should have: the new
    root's during a rotation."""
    rotation = root_ca.root_rotation
    pem = rotation.ca_cert if rotation is not None else root_ca.ca_cert
    return issuer_fields(x509.load_pem_x509_certificate(pem.encode()))


def set_root_ca(cluster: Cluster, root_ca: RootCAState) -> None:
    """Store ``root_ca`` in ``cluster`` (a copy the caller writes) with what the API derives from
    it: TLSInfo (the current root, the desired issuer) and RootRotationInProgress."""
    cluster.root_ca = root_ca
    cluster.tls_info = TLSInfo(root_ca.ca_cert, *desired_issuer(root_ca))
    cluster.root_rotation_in_progress = root_ca.root_rotation is not None


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _invalid(message: str) -> InvalidArgument:
    return InvalidArgument(_RPC + message)


def _operator_root(cert_pem: str, key_pem: str, *, now: datetime) -> RootCA:
    """The root ``--ca-cert``/``--ca-key`` give, checked in swarmkit's order and words."""
    if "-----BEGIN" not in cert_pem:
        raise _invalid("no valid root CA certificates found")
    try:
        certs = x509.load_pem_x509_certificates(cert_pem.encode())
    except ValueError as exc:
        raise _invalid(f"invalid root certificates: {exc}") from exc
    cert = certs[0]
    try:
        cert.verify_directly_issued_by(cert)
    except Exception as exc:  # not self-signed: ValueError, TypeError or InvalidSignature
        raise _invalid("error while validating Root CA Certificate: x509: certificate signed by "
                       "unknown authority") from exc
    if cert.not_valid_before_utc > now:
        raise _invalid("error while validating Root CA Certificate: x509: certificate has "
                       "expired or is not yet valid")
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise _invalid(f"malformed private key: {exc}") from exc
    public = cert.public_key()
    if isinstance(public, rsa.RSAPublicKey) and public.key_size < 2048:
        raise _invalid("unsupported RSA key parameters")
    if isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name not in (
            "secp256r1", "secp384r1", "secp521r1"):
        raise _invalid("unsupported ECDSA key parameters")
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)) \
            or key.public_key() != public:
        raise _invalid("certificate key mismatch")
    if len(certs) != 1:
        raise _invalid("the desired CA certificate cannot contain multiple certificates")
    if cert.not_valid_after_utc < now + MIN_ROOT_CA_VALIDITY:
        raise _invalid("CA certificate expires too soon")
    return RootCA(cert, key)


def _same_cert(pem: str, current_pem: str) -> bool:
    try:
        certs = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        return False
    return certs == x509.load_pem_x509_certificates(current_pem.encode())


def _any_root(pem: str) -> RootCA:
    """``pem`` as a verify-only root, to match external CAs against; InvalidArgument if bad."""
    try:
        return RootCA.from_pem(pem)
    except InvalidArgument as exc:
        raise _invalid(exc.message) from exc


def _rotation(current: RootCAState, old: RootCA, new: RootCA, keys: ClusterKeys,
              cluster_id: str, force_rotate: int) -> RootCAState:
    """``current`` with a rotation to ``new``, cross-signed by the old root."""
    if not old.can_sign:
        raise Unimplemented("the swarm's root CA key is held by an external CA: shoal cannot have "
                            "it cross-sign a new root")
    new_key = new.key_pem
    assert new_key is not None  # generated or checked with its key
    try:
        cross = old.cross_sign(new.certificate)
    except InvalidArgument as exc:
        raise _invalid(exc.message) from exc
    rotation = RootRotation(ca_cert=new.cert_pem, ca_key=keys.seal(cluster_id, ROOT_KEY, new_key),
                            cross_signed_ca_cert=_pem(cross))
    return RootCAState(ca_cert=current.ca_cert, ca_key=current.ca_key,
                       raft_ca_cert=current.raft_ca_cert, raft_ca_key=current.raft_ca_key,
                       root_rotation=rotation, last_forced_rotation=force_rotate)


def desired_root_ca(cluster: Cluster, config: CAConfig, keys: ClusterKeys, *,
                    now: datetime | None = None) -> RootCAState:
    """The RootCAState the swarm should have after an update with ``config`` (swarmkit
    ``validateCAConfig``): ``cluster.root_ca`` itself when nothing changes; InvalidArgument, with
    Docker's message, for a root it would refuse."""
    current = cluster.root_ca
    if current is None:
        raise FailedPrecondition("this swarm has no root CA")
    moment = now or datetime.now(UTC)
    if config.signing_ca_key and not config.signing_ca_cert:
        raise _invalid("if a signing CA key is provided, the signing CA cert must also be provided")
    if not config.signing_ca_cert:
        if config.force_rotate == current.last_forced_rotation:
            return current
        return _rotation(current, keys.root_ca(cluster), RootCA.create(), keys, cluster.id,
                         config.force_rotate)
    if not config.signing_ca_key:
        # A root whose key the swarm does not hold: an external CA signs for it.
        if _same_cert(config.signing_ca_cert, current.ca_cert):
            return current  # the current root named again (the external CAs' CACert): no change
        if matching_external_cas(_any_root(config.signing_ca_cert), config.external_cas):
            raise Unimplemented("rotating to a root CA whose key only an external CA holds is not "
                                "supported: give its key too (--ca-key)")
        raise _invalid("there must be at least one valid, reachable external CA corresponding "
                       "to the desired CA certificate")
    new = _operator_root(config.signing_ca_cert, config.signing_ca_key, now=moment)
    key_pem = new.key_pem
    assert key_pem is not None
    old_cert = x509.load_pem_x509_certificate(current.ca_cert.encode())
    if new.certificate == old_cert:
        # The current root with this key: any rotation is abandoned (swarmkit does the same).
        return RootCAState(ca_cert=current.ca_cert, ca_key=keys.seal(cluster.id, ROOT_KEY, key_pem),
                           raft_ca_cert=current.raft_ca_cert, raft_ca_key=current.raft_ca_key,
                           last_forced_rotation=config.force_rotate)
    if new.certificate.public_key() == old_cert.public_key():
        # A chain through two certificates of one key does not verify (swarmkit's step 3).
        raise _invalid("Cannot update to a cert with an identical key")
    rotation = current.root_rotation
    if rotation is not None and \
            x509.load_pem_x509_certificate(rotation.ca_cert.encode()) == new.certificate:
        kept = RootRotation(ca_cert=rotation.ca_cert, ca_key=keys.seal(cluster.id, ROOT_KEY, key_pem),
                            cross_signed_ca_cert=rotation.cross_signed_ca_cert)
        return RootCAState(ca_cert=current.ca_cert, ca_key=current.ca_key,
                           raft_ca_cert=current.raft_ca_cert, raft_ca_key=current.raft_ca_key,
                           root_rotation=kept, last_forced_rotation=config.force_rotate)
    return _rotation(current, keys.root_ca(cluster), new, keys, cluster.id, config.force_rotate)


def finished_root_ca(cluster: Cluster) -> tuple[RootCAState, JoinTokens]:
    """The end of ``cluster``'s rotation: the new root (its key stays sealed as it is) and new
    join tokens, which carry the new root's digest."""
    current = cluster.root_ca
    if current is None or current.root_rotation is None:
        raise FailedPrecondition("no root rotation in progress")
    rotation = current.root_rotation
    digest = RootCA.from_pem(rotation.ca_cert).digest
    state = RootCAState(ca_cert=rotation.ca_cert, ca_key=rotation.ca_key,
                        raft_ca_cert=current.raft_ca_cert, raft_ca_key=current.raft_ca_key,
                        last_forced_rotation=current.last_forced_rotation)
    return state, JoinTokens(worker=generate_token(digest), manager=generate_token(digest))
