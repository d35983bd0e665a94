"""Stored objects: Node, Service, Task, Network, Cluster, in the Docker API's JSON shape.

Every object carries ``Version.Index``: the store revision of its last write (the etcd
mod_revision), filled in by the store on read. Fields the Docker API does not show (the CA key)
live in separate structs that the API never encodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import msgspec

from shoal.model.specs import (
    IPAM,
    ClusterSpec,
    ConfigSpec,
    EndpointSpec,
    IPAMConfig,
    NetworkSpec,
    NodeSpec,
    Platform,
    PortConfig,
    SecretSpec,
    ServiceSpec,
    Struct,
    TaskSpec,
)
from shoal.model.states import TaskState

__all__ = [
    "KINDS",
    "VXLAN_ID_OPTION",
    "BlacklistedCertificate",
    "Cluster",
    "Config",
    "ContainerStatus",
    "EncryptionKey",
    "Endpoint",
    "EngineDescription",
    "JobStatus",
    "JoinTokens",
    "ManagerStatus",
    "Network",
    "NetworkAttachment",
    "Node",
    "NodeDescription",
    "NodeResources",
    "NodeStatus",
    "RootCAState",
    "RootRotation",
    "Secret",
    "Service",
    "StoredObject",
    "TLSInfo",
    "Task",
    "TaskStatus",
    "UpdateStatus",
    "Version",
    "VirtualIP",
    "now",
    "overlay_driver_state",
    "vxlan_ids_of",
]

ZERO_TIME = "0001-01-01T00:00:00Z"


def now() -> str:
    """RFC 3339 with a zone, as the docker CLI requires."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Version(Struct):
    index: int = 0


class StoredObject(Struct):
    """Fields every stored object has; ``kind`` names its table and etcd key prefix."""

    kind: ClassVar[str] = ""
    id: str = msgspec.field(name="ID")
    version: Version = msgspec.field(default_factory=Version)
    created_at: str = ZERO_TIME
    updated_at: str = ZERO_TIME


class EngineDescription(Struct):
    engine_version: str = ""
    labels: dict[str, str] | None = None
    plugins: list[dict[str, str]] | None = None


class NodeResources(Struct):
    nano_cpus: int = msgspec.field(default=0, name="NanoCPUs")
    memory_bytes: int = 0


class TLSInfo(Struct):
    trust_root: str = ""
    cert_issuer_subject: str = ""
    cert_issuer_public_key: str = ""


class NodeDescription(Struct):
    hostname: str = ""
    platform: Platform = msgspec.field(default_factory=Platform)
    resources: NodeResources = msgspec.field(default_factory=NodeResources)
    engine: EngineDescription = msgspec.field(default_factory=EngineDescription)
    tls_info: TLSInfo | None = msgspec.field(default=None, name="TLSInfo")


class NodeStatus(Struct):
    state: str = "unknown"
    message: str = ""
    addr: str = ""


class ManagerStatus(Struct):
    leader: bool = False
    reachability: str = "unknown"
    addr: str = ""


class Node(StoredObject, kw_only=True):
    kind: ClassVar[str] = "nodes"
    spec: NodeSpec = msgspec.field(default_factory=NodeSpec)
    description: NodeDescription = msgspec.field(default_factory=NodeDescription)
    status: NodeStatus = msgspec.field(default_factory=NodeStatus)
    manager_status: ManagerStatus | None = None
    # Internal: the role the node's certificate carries (Spec.Role is the desired role).
    cert_role: str = ""
    # Internal: the role the swarm gives the node now (swarmkit's Node.Role). The role manager
    # moves it to Spec.Role once the quorum allows (a demoted manager leaves etcd first).
    role: str = ""
    # Internal: whether the node is a member of the managers' etcd cluster (kept by the role
    # manager); a manager cut off by force-new-cluster is not, and can be demoted freely.
    etcd_member: bool = False
    # Internal: the root rotation asks this node for a new certificate now (swarmkit's
    # IssuanceStateRotate); the CA clears it when it signs the node's next one.
    rotate_certificate: bool = False
    # Internal: when the node's latest certificate expires (RFC 3339, UTC), as the CA signed
    # it; "" before Shoal kept it. Docker's API has no field for it: the web view shows it.
    cert_expiry: str = ""
    # The node's own addresses on networks (swarmkit Node.Attachments): its address on the
    # ingress network, which the routing mesh sends from.
    attachments: list[NetworkAttachment] | None = None

    def actual_role(self) -> str:
        return self.role or self.spec.role or "worker"


class VirtualIP(Struct):
    network_id: str = msgspec.field(default="", name="NetworkID")
    addr: str = ""


class Endpoint(Struct):
    spec: EndpointSpec = msgspec.field(default_factory=EndpointSpec)
    ports: list[PortConfig] | None = None
    virtual_ips: list[VirtualIP] | None = msgspec.field(default=None, name="VirtualIPs")


class UpdateStatus(Struct):
    state: str = ""
    started_at: str | None = None
    completed_at: str | None = None
    message: str = ""


class JobStatus(Struct):
    job_iteration: Version = msgspec.field(default_factory=Version)
    last_execution: str | None = None


class Service(StoredObject, kw_only=True):
    kind: ClassVar[str] = "services"
    spec: ServiceSpec = msgspec.field(default_factory=ServiceSpec)
    previous_spec: ServiceSpec | None = None
    endpoint: Endpoint = msgspec.field(default_factory=Endpoint)
    update_status: UpdateStatus | None = None
    job_status: JobStatus | None = None
    # Internal: set by every write of the spec, cleared by the allocator once the service has
    # what its spec needs (VIPs); the API waits on it instead of knowing the allocator's rules.
    pending_allocation: bool = False


class ContainerStatus(Struct):
    container_id: str = msgspec.field(default="", name="ContainerID")
    pid: int = msgspec.field(default=0, name="PID")
    exit_code: int = 0
    # Not in Docker's API (the docker CLI ignores it): the container's health check status,
    # "starting" | "healthy" | "unhealthy", or "" when it has none.
    health: str = ""


class TaskStatus(Struct):
    timestamp: str = ZERO_TIME
    state: TaskState = TaskState.NEW
    message: str = ""
    err: str = ""
    container_status: ContainerStatus | None = None
    port_status: dict[str, Any] | None = None


class NetworkAttachment(Struct):
    """A task's (or a node's load-balancer) place on a network: the whole Network object as the
    allocator saw it (swarmkit copies it, so the agent needs no other lookup) and the
    addresses allocated to it, "10.0.1.5/24"."""

    network: Network
    addresses: list[str] | None = None
    aliases: list[str] | None = None


class Task(StoredObject, kw_only=True):
    kind: ClassVar[str] = "tasks"
    name: str = ""
    labels: dict[str, str] | None = None
    spec: TaskSpec = msgspec.field(default_factory=TaskSpec)
    service_id: str = msgspec.field(default="", name="ServiceID")
    # Internal: the service's name when the task was made (swarmkit's ServiceAnnotations), for
    # the node's DNS and container names, which have no store to look it up in.
    service_name: str = ""
    # Internal: the service's labels when the task was made (ServiceAnnotations.Labels), for
    # templated secrets and configs (``.Service.Labels``).
    service_labels: dict[str, str] | None = None
    slot: int = 0
    node_id: str = msgspec.field(default="", name="NodeID")
    status: TaskStatus = msgspec.field(default_factory=TaskStatus)
    desired_state: TaskState = TaskState.RUNNING
    networks_attachments: list[NetworkAttachment] | None = None
    job_iteration: Version | None = None
    # The service's endpoint (its VIPs and ports) when the task was allocated (swarmkit's
    # Task.Endpoint): what the node needs to load-balance and answer DNS for it.
    endpoint: Endpoint | None = None
    # Internal: the service's endpoint spec when the task was made (for "is this task dirty").
    endpoint_spec: EndpointSpec | None = None

    @property
    def state(self) -> TaskState:
        return self.status.state

    @property
    def is_attachment(self) -> bool:
        """A standalone container's network attachment (no service; the network-attachment
        runtime, ``Spec.NetworkAttachmentSpec.ContainerID``): the agent runs nothing for it."""
        return not self.service_id and self.spec.network_attachment_spec is not None

    @property
    def full_name(self) -> str:
        """"web.1.<task id>" (global: "web.<node id>.<task id>"): the container's name."""
        return f"{self.service_name or self.service_id}.{self.slot or self.node_id}.{self.id}"


# The overlay driver's option that lists a network's VXLAN IDs (libnetwork's name): the
# allocator writes it, nodes read it, so both go through the two functions below.
VXLAN_ID_OPTION = "com.docker.network.driver.overlay.vxlanid_list"


def overlay_driver_state(vnis: Sequence[int]) -> dict[str, Any]:
    """A Network's ``DriverState`` (swarmkit's) for the overlay driver: one VNI per subnet."""
    return {"Name": "overlay", "Options": {VXLAN_ID_OPTION: ",".join(map(str, vnis))}}


def vxlan_ids_of(driver_state: dict[str, Any] | None) -> list[int]:
    """The VNIs in a driver state ("4097" or "4097,4098"); none before allocation."""
    raw = str(((driver_state or {}).get("Options") or {}).get(VXLAN_ID_OPTION, ""))
    return [int(v) for v in raw.split(",") if v.strip()]


class Network(StoredObject, kw_only=True):
    kind: ClassVar[str] = "networks"
    spec: NetworkSpec = msgspec.field(default_factory=NetworkSpec)
    driver_state: dict[str, Any] | None = None
    # The allocated subnets and gateways (swarmkit Network.IPAM); None until allocated.
    ipam_options: IPAM | None = msgspec.field(default=None, name="IPAM")

    @property
    def allocated(self) -> bool:
        return self.ipam_options is not None

    def vxlan_ids(self) -> list[int]:
        return vxlan_ids_of(self.driver_state)

    def current_ipam(self) -> IPAM | None:
        """The allocated IPAM, or the requested one until the allocator has run."""
        return self.ipam_options if self.ipam_options is not None else self.spec.ipam

    def subnets(self) -> list[IPAMConfig]:
        """The subnets (and gateways) the network holds, or will hold once allocated."""
        ipam = self.current_ipam()
        return (ipam.config if ipam else None) or []


class JoinTokens(Struct):
    worker: str = ""
    manager: str = ""


class RootRotation(Struct):
    """A root CA rotation in progress (swarmkit RootRotation): the new root, its key (sealed
    like the root's), and the new root's key certified by the old root (same subject, key and
    validity), which the CA appends to every certificate it issues meanwhile, so nodes that
    still trust only the old root accept them."""

    ca_cert: str = msgspec.field(default="", name="CACert")
    ca_key: str = msgspec.field(default="", name="CAKey")
    cross_signed_ca_cert: str = msgspec.field(default="", name="CrossSignedCACert")


class RootCAState(Struct):
    """The CA's key and certificate; never shown by the API (swarmkit keeps it in raft too).
    The keys are sealed under the managers' store DEK (shoal.manager.deks), never in clear.
    ``CAKey`` is empty when the root's key stays with an external CA, which then signs every
    node certificate.

    The raft CA signs only managers' etcd certificates: etcd cannot check a certificate's OU, so
    trusting the swarm CA would let a worker certificate into the store (raft.md, pitfall 6).
    A root rotation (shoal.manager.ca.rotation) replaces the swarm CA only.
    """

    ca_cert: str = msgspec.field(default="", name="CACert")
    ca_key: str = msgspec.field(default="", name="CAKey")
    raft_ca_cert: str = msgspec.field(default="", name="RaftCACert")
    raft_ca_key: str = msgspec.field(default="", name="RaftCAKey")
    root_rotation: RootRotation | None = None
    # The spec's CAConfig.ForceRotate that made the last rotation: a different value asks for one.
    last_forced_rotation: int = 0


class EncryptionKey(Struct):
    """A gossip key (swarmkit EncryptionKey): AES-128-GCM, 16 random bytes; never shown by the
    API. ``lamport_time`` orders keys: the newest is the one that seals."""

    subsystem: str = "networking:gossip"
    algorithm: str = "aes_128_gcm"
    key: bytes = b""
    lamport_time: int = 0


class BlacklistedCertificate(Struct):
    """A removed node (swarmkit BlacklistedCertificate): its certificates are refused until
    ``expiry`` (unix seconds; 0: kept for ever), by which time every certificate issued to it
    has expired."""

    expiry: int = 0


class Cluster(StoredObject, kw_only=True):
    kind: ClassVar[str] = "clusters"
    spec: ClusterSpec = msgspec.field(default_factory=ClusterSpec)
    tls_info: TLSInfo = msgspec.field(default_factory=TLSInfo, name="TLSInfo")
    root_rotation_in_progress: bool = False
    default_addr_pool: list[str] = msgspec.field(default_factory=lambda: ["10.0.0.0/8"])
    subnet_size: int = 24
    data_path_port: int = 4789
    join_tokens: JoinTokens = msgspec.field(default_factory=JoinTokens)
    root_ca: RootCAState | None = msgspec.field(default=None, name="RootCA")
    # Internal (never rendered): the gossip keys, oldest first, and the clock that stamps them.
    network_bootstrap_keys: list[EncryptionKey] | None = None
    encryption_key_lamport_clock: int = 0
    # Internal (never rendered): the AES-256-GCM key that seals secrets' data in the store,
    # base64, itself sealed under the managers' store DEK; made with the swarm (or by the first
    # secret create that finds none).
    secrets_key: str = ""
    # Internal (never rendered): the autolock unlock key (SWMKEY-1-...), sealed under the store
    # DEK like the secrets key; "" while autolock is off (swarmkit's Cluster.UnlockKeys).
    unlock_key: str = ""
    # Internal (never rendered): the IDs of removed nodes (swarmkit's BlacklistedCertificates),
    # whose certificates every manager refuses even if a node with that ID were made again.
    blacklisted_certificates: dict[str, BlacklistedCertificate] | None = None


class Secret(StoredObject, kw_only=True):
    """A secret: its spec without ``Data``, which is kept sealed (``sealed``, internal: base64 of
    nonce + AES-GCM ciphertext under ``Cluster.secrets_key``; the API never shows it)."""

    kind: ClassVar[str] = "secrets"
    spec: SecretSpec = msgspec.field(default_factory=SecretSpec)
    sealed: str = ""


class Config(StoredObject, kw_only=True):
    kind: ClassVar[str] = "configs"
    spec: ConfigSpec = msgspec.field(default_factory=ConfigSpec)


KINDS: dict[str, type[StoredObject]] = {
    cls.kind: cls for cls in (Node, Service, Task, Network, Cluster, Secret, Config)
}
