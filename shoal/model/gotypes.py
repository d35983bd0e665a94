"""The Go types Docker declares for the request bodies, where the model's own types say less.

Python's ``int`` has no width, and the model keeps some parts of a spec as plain dicts
(``ContainerSpec``, ``LogDriver``, ``TaskDefaults``...) so that nothing a client sends is lost.
dockerd decodes every body into its Go structs first (moby ``api/types/swarm``, ``mount``,
``container``) and refuses, with ``json: cannot unmarshal ...``, a value those types cannot hold.
This module says what they hold, for ``codec.decode`` to check:

- integer widths as ``Annotated`` aliases (``UInt64``, ``UInt32``, ``Duration``...) carrying the
  Go type's name; a plain ``int`` in a spec is Go's ``int64``;
- ``SHAPES``: for each dict-typed field (by its key), a struct of the Go type's fields, used only
  to check the value; the dict is stored as sent.

Read by ``shoal.model.codec`` (the checks) and ``shoal.model.specs`` (the aliases).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

__all__ = ["BOUNDS", "SHAPES", "Duration", "FileMode", "Float32", "GoInt", "Int64", "UInt32", "UInt64", "go_name"]

# The Go type's name rides in the annotation; the bounds come from BOUNDS by that name. No
# ge/le constraint: objects already stored decode as before, only requests are checked.
Int64 = Annotated[int, msgspec.Meta(extra={"go": "int64"})]
GoInt = Annotated[int, msgspec.Meta(extra={"go": "int"})]
UInt64 = Annotated[int, msgspec.Meta(extra={"go": "uint64"})]
UInt32 = Annotated[int, msgspec.Meta(extra={"go": "uint32"})]
Duration = Annotated[int, msgspec.Meta(extra={"go": "time.Duration"})]
FileMode = Annotated[int, msgspec.Meta(extra={"go": "fs.FileMode"})]
Float32 = Annotated[float, msgspec.Meta(extra={"go": "float32"})]

_I64 = (-(2**63), 2**63 - 1)
BOUNDS: dict[str, tuple[int, int]] = {
    "int64": _I64, "int": _I64, "time.Duration": _I64,
    "int32": (-(2**31), 2**31 - 1),
    "uint64": (0, 2**64 - 1),
    "uint32": (0, 2**32 - 1), "fs.FileMode": (0, 2**32 - 1),
}


class _Go(msgspec.Struct, rename="pascal", kw_only=True):
    """A Go struct's fields, by their JSON names; every field optional (null = absent)."""


class Driver(_Go):
    name: str | None = None
    options: dict[str, str] | None = None


class TaskDefaults(_Go):
    log_driver: Driver | None = None


class _CredentialSpec(_Go):
    config: str | None = None
    file: str | None = None
    registry: str | None = None


class _SELinuxContext(_Go):
    disable: bool | None = None
    user: str | None = None
    role: str | None = None
    type: str | None = None
    level: str | None = None


class _SeccompOpts(_Go):
    mode: str | None = None
    profile: str | None = None  # []byte: base64


class _AppArmorOpts(_Go):
    mode: str | None = None


class Privileges(_Go):
    credential_spec: _CredentialSpec | None = None
    selinux_context: _SELinuxContext | None = msgspec.field(default=None, name="SELinuxContext")
    seccomp: _SeccompOpts | None = None
    app_armor: _AppArmorOpts | None = msgspec.field(default=None, name="AppArmor")
    no_new_privileges: bool | None = None


class _BindOptions(_Go):
    propagation: str | None = None
    non_recursive: bool | None = None
    create_mountpoint: bool | None = None
    read_only_non_recursive: bool | None = None
    read_only_force_recursive: bool | None = None


class _VolumeOptions(_Go):
    no_copy: bool | None = None
    labels: dict[str, str] | None = None
    subpath: str | None = None
    driver_config: Driver | None = None


class _ImageOptions(_Go):
    subpath: str | None = None


class _TmpfsOptions(_Go):
    size_bytes: Int64 | None = None
    mode: FileMode | None = None
    options: list[list[str]] | None = None


class Mount(_Go):
    type: str | None = None
    source: str | None = None
    target: str | None = None
    read_only: bool | None = None
    consistency: str | None = None
    bind_options: _BindOptions | None = None
    volume_options: _VolumeOptions | None = None
    image_options: _ImageOptions | None = None
    tmpfs_options: _TmpfsOptions | None = None
    cluster_options: dict[str, Any] | None = None


class HealthcheckConfig(_Go):
    test: list[str] | None = None
    interval: Duration | None = None
    timeout: Duration | None = None
    start_period: Duration | None = None
    start_interval: Duration | None = None
    retries: GoInt | None = None


class DNSConfig(_Go):
    nameservers: list[str] | None = None
    search: list[str] | None = None
    options: list[str] | None = None


class _FileTarget(_Go):
    name: str | None = None
    uid: str | None = msgspec.field(default=None, name="UID")
    gid: str | None = msgspec.field(default=None, name="GID")
    mode: FileMode | None = None


class SecretReference(_Go):
    file: _FileTarget | None = None
    secret_id: str | None = msgspec.field(default=None, name="SecretID")
    secret_name: str | None = None


class ConfigReference(_Go):
    file: _FileTarget | None = None
    runtime: dict[str, Any] | None = None
    config_id: str | None = msgspec.field(default=None, name="ConfigID")
    config_name: str | None = None


class Ulimit(_Go):
    name: str | None = None
    hard: Int64 | None = None
    soft: Int64 | None = None


class ContainerSpec(_Go):
    """swarm.ContainerSpec (api/types/swarm/container.go)."""

    image: str | None = None
    labels: dict[str, str] | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    hostname: str | None = None
    env: list[str] | None = None
    dir: str | None = None
    user: str | None = None
    groups: list[str] | None = None
    privileges: Privileges | None = None
    init: bool | None = None
    stop_signal: str | None = None
    tty: bool | None = msgspec.field(default=None, name="TTY")
    open_stdin: bool | None = None
    read_only: bool | None = None
    mounts: list[Mount] | None = None
    stop_grace_period: Duration | None = None
    healthcheck: HealthcheckConfig | None = None
    hosts: list[str] | None = None
    dns_config: DNSConfig | None = msgspec.field(default=None, name="DNSConfig")
    secrets: list[SecretReference] | None = None
    configs: list[ConfigReference] | None = None
    isolation: str | None = None
    sysctls: dict[str, str] | None = None
    capability_add: list[str] | None = None
    capability_drop: list[str] | None = None
    ulimits: list[Ulimit] | None = None
    oom_score_adj: Int64 | None = None


class _PluginPrivilege(_Go):
    name: str | None = None
    description: str | None = None
    value: list[str] | None = None


class PluginSpec(_Go):
    """runtime.PluginSpec."""

    name: str | None = None
    remote: str | None = None
    privileges: list[_PluginPrivilege] | None = None
    disabled: bool | None = None
    env: list[str] | None = None


class NetworkAttachmentSpec(_Go):
    container_id: str | None = msgspec.field(default=None, name="ContainerID")


class GlobalService(_Go):
    """swarm.GlobalService, swarm.GlobalJob: empty structs (any object)."""


class _NamedGenericResource(_Go):
    kind: str | None = None
    value: str | None = None


class _DiscreteGenericResource(_Go):
    kind: str | None = None
    value: Int64 | None = None


class GenericResource(_Go):
    named_resource_spec: _NamedGenericResource | None = None
    discrete_resource_spec: _DiscreteGenericResource | None = None


class ConfigReferenceNetwork(_Go):
    """network.ConfigReference."""

    network: str | None = None


# A dict-typed field's key -> the Go struct its value must fit.
SHAPES: dict[str, type[msgspec.Struct]] = {
    "ContainerSpec": ContainerSpec,
    "PluginSpec": PluginSpec,
    "NetworkAttachmentSpec": NetworkAttachmentSpec,
    "LogDriver": Driver,
    "TaskDefaults": TaskDefaults,
    "Global": GlobalService,
    "GlobalJob": GlobalService,
    "ConfigFrom": ConfigReferenceNetwork,
    "GenericResources": GenericResource,
}

# Go's name of a type (reflect's Type.String()) where it is not "swarm." + the class's name.
_GO_NAMES = {
    # shoal.model.specs
    "Replicated": "swarm.ReplicatedService", "Resources": "swarm.ResourceRequirements",
    "Limits": "swarm.Limit", "Reservations": "swarm.Resources", "ClusterSpec": "swarm.Spec",
    "NetworkSpec": "network.CreateRequest", "IPAM": "network.IPAM", "IPAMConfig": "network.IPAMConfig",
    "VolumeCreateRequest": "volume.CreateOptions",
    # the shapes above
    "Mount": "mount.Mount", "_BindOptions": "mount.BindOptions", "_VolumeOptions": "mount.VolumeOptions",
    "_ImageOptions": "mount.ImageOptions", "_TmpfsOptions": "mount.TmpfsOptions",
    "HealthcheckConfig": "v1.HealthcheckConfig", "Ulimit": "units.Ulimit",
    "_FileTarget": "swarm.SecretReferenceFileTarget", "_SeccompOpts": "swarm.SeccompOpts",
    "_AppArmorOpts": "swarm.AppArmorOpts", "_PluginPrivilege": "runtime.PluginPrivilege",
    "PluginSpec": "runtime.PluginSpec", "ConfigReferenceNetwork": "network.ConfigReference",
    "_NamedGenericResource": "swarm.NamedGenericResource",
    "_DiscreteGenericResource": "swarm.DiscreteGenericResource",
}


def go_name(cls: type) -> str:
    """Go's name of the struct ``cls`` stands for: "swarm.TaskSpec"."""
    name = cls.__name__
    return _GO_NAMES.get(name) or "swarm." + name.lstrip("_")

