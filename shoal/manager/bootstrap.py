"""A new swarm (swarmkit's manager bootstrap): its CAs, the store DEK that seals their keys
in the store (``deks.py``), the first node's identity, and the first objects of the store, made
by ``swarm init``.

The daemon asks for a ``NewSwarm`` and hands ``NewSwarm.write`` to the manager's first start;
what a swarm starts with is decided here, once.

The root CA is a new one (swarmkit's ``CreateRootCA``), or the operator's ``SigningCACert``
(with ``SigningCAKey``, or without it when an external CA holds the key: then the first
manager's own certificate comes from that external CA, asked without a client certificate since
this manager has none yet). With a root key here, the first certificate is signed locally even
when external CAs are configured, as swarmkit signs its first manager before the spec applies.

``await_first_writes`` is what init waits for before it answers: the leader's parts then have
written what they add to the first node and the cluster, so a ``node update`` or ``swarm
update`` with the version just read is not "out of sequence" (Docker's init returns settled).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import timedelta

from shoal import aio
from shoal.errors import InvalidArgument
from shoal.manager.allocator.ipam import AddressPool
from shoal.manager.ca.etcdtls import RAFT_CA_CN, EtcdTLS, issue_etcd_tls
from shoal.manager.ca.rootca import RootCA
from shoal.manager.ca.signing import SIGN_WAIT, NodeSigner, matching_external_cas
from shoal.manager.controlapi.cluster import apply_defaults
from shoal.manager.deks import ClusterKeys, StoreDEK
from shoal.manager.secretbox import new_key
from shoal.model.ids import new_id
from shoal.model.objects import (
    Cluster,
    JoinTokens,
    ManagerStatus,
    Network,
    Node,
    NodeDescription,
    NodeStatus,
    RootCAState,
    TLSInfo,
)
from shoal.model.requests import InitRequest
from shoal.model.specs import IPAM, CAConfig, NetworkSpec, NodeSpec
from shoal.model.states import Availability, NodeRole, NodeState
from shoal.pki.identity import NodeIdentity, generate_key_and_csr
from shoal.pki.subjects import expiry_of
from shoal.pki.tokens import generate_token
from shoal.pki.unlockkey import UnlockKey
from shoal.store.store import Store, Tx
from shoal.store.tables import Tables
from shoal.store.watch import SubscriptionOverflow

__all__ = ["DEFAULT_ADDR_POOL", "DEFAULT_DATA_PATH_PORT", "DEFAULT_SUBNET_SIZE", "FIRST_WRITES_WAIT", "NewSwarm",
           "await_first_writes", "first_writes_done", "new_swarm"]

DEFAULT_ADDR_POOL = "10.0.0.0/8"
DEFAULT_SUBNET_SIZE = 24
DEFAULT_DATA_PATH_PORT = 4789
DATA_PATH_PORTS = (1024, 49151)  # moby's getDataPathPort: IANA's registered ports only
# Seconds init waits for the leader's first writes (about one here); past it init answers anyway,
# as a slow start is no reason to fail a swarm that exists.
FIRST_WRITES_WAIT = 10.0


@dataclass(frozen=True, kw_only=True)
class NewSwarm:
    """Everything ``swarm init`` makes before the store exists; nothing is written yet."""

    cluster_id: str
    node_id: str
    identity: NodeIdentity  # the first node's: a manager certificate from the new root CA
    etcd_tls: EtcdTLS  # its etcd member's, from the raft CA
    dek: StoreDEK  # seals the cluster's keys; kept on the managers' disks, never in the store
    unlock_key: UnlockKey | None  # with --autolock: wraps the first manager's key files
    cluster: Cluster
    node: Node
    ingress: Network

    def write(self, tx: Tx) -> None:
        """The store's first transaction."""
        tx.create(self.cluster)
        tx.create(self.node)
        tx.create(self.ingress)


async def new_swarm(req: InitRequest, *, hostname: str, advertise_ip: str, manager_addr: str,
                    sign_wait: float = SIGN_WAIT) -> NewSwarm:
    """A swarm whose first manager is this node (``hostname``), reached at ``manager_addr``
    ("IP:PORT"); raises InvalidArgument for a request Docker would refuse, and the external
    CA's error when it does not sign the first certificate."""
    if req.availability and req.availability not in Availability.ALL:
        raise InvalidArgument(f"invalid availability {req.availability!r}")
    spec = apply_defaults(req.spec)
    # dockerd takes --autolock from the request's own field; the CLI sets the spec's too.
    spec.encryption_config.auto_lock_managers = (req.auto_lock_managers
                                                 or spec.encryption_config.auto_lock_managers)
    port = req.data_path_port
    if port and not DATA_PATH_PORTS[0] <= port <= DATA_PATH_PORTS[1]:
        raise InvalidArgument(f"Datapath port number is not in valid range (1024-49151) : {port}")
    pool = req.default_addr_pool or [DEFAULT_ADDR_POOL]
    subnet_size = req.subnet_size or DEFAULT_SUBNET_SIZE
    AddressPool(pool, subnet_size)  # a bad pool or size: InvalidArgument now, not in the allocator
    root = _root_ca(spec.ca_config)
    spec.ca_config.signing_ca_cert = spec.ca_config.signing_ca_key = ""  # in the RootCA state only
    raft_root = RootCA.create(common_name=RAFT_CA_CN)
    assert raft_root.key_pem is not None  # just made
    cluster_id, node_id = new_id(), new_id()
    dek = StoreDEK.generate()
    keys = ClusterKeys(dek)
    unlock_key = UnlockKey.generate() if spec.encryption_config.auto_lock_managers else None
    key, csr = generate_key_and_csr()
    expiry = timedelta(microseconds=spec.ca_config.node_cert_expiry // 1000)  # --cert-expiry
    sans = sorted({"127.0.0.1", advertise_ip})
    if root.can_sign:
        cert = root.sign(csr, node_id=node_id, role="manager", cluster_id=cluster_id, expiry=expiry,
                         san_ips=sans)
    else:  # the external CA's profile sets the lifetime
        signer = NodeSigner(root, spec.ca_config.external_cas, cluster_id=cluster_id, identity=None)
        cert = await signer.sign(csr, node_id=node_id, role="manager", san_ips=sans, wait=sign_wait)
    cluster = Cluster(
        id=cluster_id, spec=spec, default_addr_pool=pool, subnet_size=subnet_size,
        data_path_port=req.data_path_port or DEFAULT_DATA_PATH_PORT,
        join_tokens=JoinTokens(worker=generate_token(root.digest), manager=generate_token(root.digest)),
        tls_info=TLSInfo(*root.tls_info()),
        root_ca=RootCAState(ca_cert=root.cert_pem,
                            ca_key=keys.seal(cluster_id, "root CA key", root.key_pem) if root.key_pem else "",
                            raft_ca_cert=raft_root.cert_pem,
                            raft_ca_key=keys.seal(cluster_id, "raft CA key", raft_root.key_pem)),
        secrets_key=keys.seal(cluster_id, "secrets key", new_key()),
    )
    if unlock_key is not None:
        cluster.unlock_key = keys.seal_unlock_key(cluster, unlock_key)
    node = Node(
        id=node_id,
        spec=NodeSpec(role=NodeRole.MANAGER, availability=req.availability or Availability.ACTIVE, labels={}),
        description=NodeDescription(hostname=hostname),  # usable by name at once
        status=NodeStatus(state=NodeState.UNKNOWN, addr=advertise_ip),
        manager_status=ManagerStatus(leader=True, reachability="reachable", addr=manager_addr),
        cert_role=NodeRole.MANAGER,
        role=NodeRole.MANAGER,
        etcd_member=True,
        cert_expiry=expiry_of(cert),
    )
    ingress = Network(id=new_id(), spec=NetworkSpec(
        name="ingress", driver="overlay", scope="swarm", ingress=True, labels={}, options={},
        ipam=IPAM(driver="default")))  # its subnet: the pool's first, by the allocator
    return NewSwarm(
        cluster_id=cluster_id, node_id=node_id,
        identity=NodeIdentity(cert_pem=cert, key_pem=key, ca_pem=root.cert_pem),
        etcd_tls=issue_etcd_tls(raft_root, node_id=node_id, cluster_id=cluster_id, ips=[advertise_ip],
                                expiry=expiry),
        dek=dek, unlock_key=unlock_key, cluster=cluster, node=node, ingress=ingress)


def _root_ca(config: CAConfig) -> RootCA:
    """A new root, or the operator's (validated as swarmkit's validateCAConfig does)."""
    if config.signing_ca_key and not config.signing_ca_cert:
        raise InvalidArgument("if a signing CA key is provided, the signing CA cert must also be provided")
    if not config.signing_ca_cert:
        return RootCA.create()
    root = RootCA.from_operator(config.signing_ca_cert, config.signing_ca_key or None)
    if not root.can_sign and not matching_external_cas(root, config.external_cas):
        raise InvalidArgument("there must be at least one valid, reachable external CA corresponding "
                              "to the desired CA certificate")
    return root


def first_writes_done(view: Tables, node_id: str) -> bool:
    """Whether the first node and the cluster are as the leader's parts leave them: the node
    registered by its agent (the dispatcher: READY and its description), its address on the
    ingress network (the allocator), the cluster's gossip keys (the key manager)."""
    node, cluster = view.get(Node, node_id), view.cluster()
    if node is None or cluster is None:
        return False
    on_ingress = any(a.network.spec.ingress and a.addresses for a in node.attachments or [])
    return (node.status.state == NodeState.READY and on_ingress
            and bool(cluster.network_bootstrap_keys))


async def await_first_writes(store: Store, node_id: str, timeout: float = FIRST_WRITES_WAIT) -> bool:
    """Until ``first_writes_done``, or ``timeout``; whether they are done."""
    with store.subscribe([Node, Cluster]) as changes:  # subscribe, then look: nothing is missed
        try:
            async with aio.timeout(timeout):
                while not first_writes_done(store.view(), node_id):
                    with contextlib.suppress(SubscriptionOverflow):  # the view is read again
                        await changes.next()
        except TimeoutError:
            return False
    return True
