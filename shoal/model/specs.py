"""Specs: what a user declares, in the Docker Engine API's JSON shape (api/types/swarm).

Fields the control plane reads are typed; ``ContainerSpec`` and ``LogDriver`` pass through as
dicts, so nothing a client sends is dropped, whatever the executor does with it later.
Durations are integer nanoseconds, as in the API. Field names encode to Docker's PascalCase.
"""

from __future__ import annotations

from typing import Any

import msgspec

from shoal.model.gotypes import Duration, Float32, GoInt, UInt32, UInt64

__all__ = [
    "IPAM",
    "MAX_REPLICAS",
    "SECOND",
    "CAConfig",
    "ClusterSpec",
    "ConfigSpec",
    "DispatcherConfig",
    "Driver",
    "EncryptionConfig",
    "EndpointSpec",
    "ExternalCA",
    "IPAMConfig",
    "Limits",
    "NetworkAttachmentConfig",
    "NetworkSpec",
    "NodeSpec",
    "OrchestrationConfig",
    "Placement",
    "PlacementPreference",
    "Platform",
    "PortConfig",
    "RaftConfig",
    "Replicated",
    "ReplicatedJob",
    "Reservations",
    "Resources",
    "RestartPolicy",
    "SecretSpec",
    "ServiceMode",
    "ServiceSpec",
    "SpreadOver",
    "Struct",
    "TaskSpec",
    "UpdateConfig",
]

SECOND = 1_000_000_000


class Struct(msgspec.Struct, rename="pascal", kw_only=True):
    """Base of every model struct: PascalCase on the wire, every field written (Go reads null as zero)."""


# The most tasks one service may ask for at a time (Replicas, a job's TotalCompletions and
# MaxConcurrent, Placement.MaxReplicas). Docker's Go types take any uint64 and swarmkit sets no
# bound; every manager holds every task in memory with its indexes (and etcd, 640 bytes), so the API
# refuses more than this with a 400 rather than let one call fill a manager (issue 16).
MAX_REPLICAS = 10_000


class Replicated(Struct):
    replicas: UInt64 | None = None


class ReplicatedJob(Struct):
    max_concurrent: UInt64 | None = None
    total_completions: UInt64 | None = None


class ServiceMode(Struct):
    replicated: Replicated | None = None
    global_: dict[str, Any] | None = msgspec.field(default=None, name="Global")
    replicated_job: ReplicatedJob | None = None
    global_job: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        if self.global_ is not None:
            return "global"
        if self.replicated_job is not None:
            return "replicated-job"
        if self.global_job is not None:
            return "global-job"
        return "replicated"

    @property
    def is_global(self) -> bool:
        return self.global_ is not None or self.global_job is not None


class Limits(Struct, omit_defaults=True):
    """Zero fields are left out, as Docker's ``omitempty`` does (docker-py compares specs)."""

    nano_cpus: int = msgspec.field(default=0, name="NanoCPUs")
    memory_bytes: int = 0
    pids: int = 0


class Reservations(Struct, omit_defaults=True):
    nano_cpus: int = msgspec.field(default=0, name="NanoCPUs")
    memory_bytes: int = 0
    generic_resources: list[dict[str, Any]] | None = None


class Resources(Struct):
    limits: Limits | None = None
    reservations: Reservations | None = None


class RestartPolicy(Struct):
    condition: str | None = None  # none | on-failure | any
    delay: Duration | None = None
    max_attempts: UInt64 | None = None
    window: Duration | None = None


class SpreadOver(Struct):
    spread_descriptor: str = ""


class PlacementPreference(Struct):
    spread: SpreadOver | None = None


class Platform(Struct):
    architecture: str = ""
    os: str = msgspec.field(default="", name="OS")


class Placement(Struct):
    constraints: list[str] | None = None
    preferences: list[PlacementPreference] | None = None
    max_replicas: UInt64 = 0
    platforms: list[Platform] | None = None


class NetworkAttachmentConfig(Struct):
    target: str = ""
    aliases: list[str] | None = None
    driver_opts: dict[str, str] | None = None


class TaskSpec(Struct):
    container_spec: dict[str, Any] | None = None
    plugin_spec: dict[str, Any] | None = None
    network_attachment_spec: dict[str, Any] | None = None
    resources: Resources | None = None
    restart_policy: RestartPolicy | None = None
    placement: Placement | None = None
    networks: list[NetworkAttachmentConfig] | None = None
    log_driver: dict[str, Any] | None = None
    force_update: UInt64 = 0
    runtime: str = ""

    @property
    def image(self) -> str:
        return str((self.container_spec or {}).get("Image", ""))


class UpdateConfig(Struct):
    parallelism: UInt64 = 0
    delay: Duration = 0
    failure_action: str = ""
    monitor: Duration = 0
    max_failure_ratio: Float32 = 0.0
    order: str = ""


class PortConfig(Struct):
    name: str = ""
    protocol: str = "tcp"
    target_port: UInt32 = 0
    published_port: UInt32 = 0
    publish_mode: str = "ingress"


class EndpointSpec(Struct):
    mode: str = ""
    ports: list[PortConfig] | None = None


class ServiceSpec(Struct):
    name: str = ""
    labels: dict[str, str] | None = None
    task_template: TaskSpec = msgspec.field(default_factory=TaskSpec)
    mode: ServiceMode = msgspec.field(default_factory=ServiceMode)
    update_config: UpdateConfig | None = None
    rollback_config: UpdateConfig | None = None
    networks: list[NetworkAttachmentConfig] | None = None
    endpoint_spec: EndpointSpec | None = None


class NodeSpec(Struct):
    name: str = ""
    labels: dict[str, str] | None = None
    role: str = ""
    availability: str = ""


class IPAMConfig(Struct):
    subnet: str = ""
    ip_range: str = msgspec.field(default="", name="IPRange")
    gateway: str = ""
    aux_address: dict[str, str] | None = None


class IPAM(Struct):
    driver: str = "default"
    options: dict[str, str] | None = None
    config: list[IPAMConfig] | None = None


class NetworkSpec(Struct):
    """The engine's network create request (NetworkCreateRequest)."""

    name: str = ""
    driver: str = ""
    scope: str = ""
    enable_ipv4: bool | None = msgspec.field(default=None, name="EnableIPv4")
    enable_ipv6: bool | None = msgspec.field(default=None, name="EnableIPv6")
    ipam: IPAM | None = msgspec.field(default=None, name="IPAM")
    internal: bool = False
    attachable: bool = False
    ingress: bool = False
    config_only: bool = False
    config_from: dict[str, Any] | None = None
    options: dict[str, str] | None = None
    labels: dict[str, str] | None = None

    def subnets(self) -> list[IPAMConfig]:
        """The subnets (and gateways, ranges) the user asked for; none: the pool's choice."""
        return (self.ipam.config if self.ipam else None) or []


class OrchestrationConfig(Struct):
    task_history_retention_limit: int | None = None


class RaftConfig(Struct):
    snapshot_interval: UInt64 = 0
    keep_old_snapshots: UInt64 | None = None
    log_entries_for_slow_followers: UInt64 = 0
    election_tick: GoInt = 0
    heartbeat_tick: GoInt = 0


class DispatcherConfig(Struct):
    heartbeat_period: Duration = 0


class ExternalCA(Struct):
    """A certificate signer the managers send CSRs to (swarm.ExternalCA); only ``cfssl`` is
    spoken. An empty ``CACert`` stands for the swarm's current root CA certificate."""

    protocol: str = ""
    url: str = msgspec.field(default="", name="URL")
    options: dict[str, str] | None = None
    ca_cert: str = msgspec.field(default="", name="CACert")


class CAConfig(Struct):
    """``SigningCACert``/``SigningCAKey`` are read once (swarm init) and never stored here: the
    root lives in ``Cluster.root_ca``."""

    node_cert_expiry: Duration = 0
    external_cas: list[ExternalCA] | None = msgspec.field(default=None, name="ExternalCAs")
    signing_ca_cert: str = msgspec.field(default="", name="SigningCACert")
    signing_ca_key: str = msgspec.field(default="", name="SigningCAKey")
    force_rotate: UInt64 = 0


class EncryptionConfig(Struct):
    auto_lock_managers: bool = False


class ClusterSpec(Struct):
    """The swarm's spec (swarm.Spec): cluster-wide settings, watched by every part."""

    name: str = ""
    labels: dict[str, str] | None = None
    orchestration: OrchestrationConfig = msgspec.field(default_factory=OrchestrationConfig)
    raft: RaftConfig = msgspec.field(default_factory=RaftConfig)
    dispatcher: DispatcherConfig = msgspec.field(default_factory=DispatcherConfig)
    ca_config: CAConfig = msgspec.field(default_factory=CAConfig, name="CAConfig")
    task_defaults: dict[str, Any] = msgspec.field(default_factory=dict)
    encryption_config: EncryptionConfig = msgspec.field(default_factory=EncryptionConfig)


class Driver(Struct):
    """A secret's store driver or a secret's/config's template driver (api/types/swarm Driver)."""

    name: str = ""
    options: dict[str, str] | None = None


class SecretSpec(Struct):
    """``Data`` is base64 on the wire (Go []byte). The store never holds it: the control API
    seals it into ``Secret.sealed`` and clears it; the API never shows it."""

    name: str = ""
    labels: dict[str, str] | None = None
    data: str | None = None
    driver: Driver | None = None
    templating: Driver | None = None


class ConfigSpec(Struct):
    """``Data`` is base64 on the wire (Go []byte); a config's data is stored and shown."""

    name: str = ""
    labels: dict[str, str] | None = None
    data: str | None = None
    templating: Driver | None = None
