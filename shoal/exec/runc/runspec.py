"""``docker run``'s request (``POST /containers/create``: Config, HostConfig, NetworkingConfig)
as what the runc executor already runs: a ContainerSpec and TaskSpec (a standalone container is
built, started and stopped by the same controller as a task's). Every field the docker CLI or
docker-py may send is honoured here or refused with a 400 naming it; fields at their zero value
(what the CLI sends when a flag is not given) are accepted. Called by standalone.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shoal.errors import InvalidArgument
from shoal.exec.localnet import EndpointRequest, PortBinding
from shoal.model.specs import Limits, Resources, TaskSpec

__all__ = ["RESTART_POLICIES", "RunSpec", "parse_run"]

RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")

# Config: the fields honoured; the others must be at their zero value
_CONFIG_USED = {"Image", "Cmd", "Entrypoint", "Env", "Labels", "WorkingDir", "User", "Hostname",
                "Tty", "OpenStdin", "StdinOnce", "AttachStdin", "AttachStdout", "AttachStderr",
                "StopSignal", "StopTimeout", "Healthcheck", "ExposedPorts", "Volumes",
                "Domainname", "NetworkDisabled", "ArgsEscaped", "OnBuild", "Shell", "MacAddress"}
# HostConfig: the fields honoured, or ignored because they only say "the default"
_HOST_USED = {"Binds", "Mounts", "AutoRemove", "RestartPolicy", "NetworkMode", "PortBindings",
              "PublishAllPorts", "Init", "ReadonlyRootfs", "CapAdd", "CapDrop", "Memory",
              "NanoCpus", "PidsLimit", "LogConfig", "ExtraHosts", "Dns", "DnsSearch",
              "DnsOptions", "Sysctls", "Ulimits", "GroupAdd", "OomScoreAdj", "Tmpfs",
              "ConsoleSize", "Links", "VolumesFrom", "VolumeDriver", "CgroupnsMode", "IpcMode",
              "PidMode", "UTSMode", "UsernsMode", "Isolation", "Cgroup", "ContainerIDFile",
              "MaskedPaths", "ReadonlyPaths", "Annotations", "ShmSize", "Runtime",
              "MemorySwappiness", "OomKillDisable", "Privileged", "SecurityOpt", "Devices",
              "DeviceRequests", "CpuShares", "CpuQuota", "CpuPeriod", "CpusetCpus",
              "CpusetMems", "BlkioWeight", "MemoryReservation", "MemorySwap", "KernelMemory",
              "CgroupParent", "StorageOpt", "DeviceCgroupRules", "IOMaximumBandwidth",
              "IOMaximumIOps", "BlkioWeightDevice", "BlkioDeviceReadBps",
              "BlkioDeviceWriteBps", "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps", "CpuCount",
              "CpuPercent", "CpuRealtimePeriod", "CpuRealtimeRuntime"}
# honoured when zero or the default's name only
_DEFAULT_ONLY = {"CgroupnsMode": ("", "private", "host"), "IpcMode": ("", "private", "shareable"),
                 "PidMode": ("",), "UTSMode": ("",), "UsernsMode": ("",),
                 "Isolation": ("", "default"), "Runtime": ("", "runc"), "Cgroup": ("",),
                 "VolumeDriver": ("", "local"), "CgroupParent": ("",)}
_HANDLED_ZERO = {"ConsoleSize", "ContainerIDFile", "MaskedPaths", "ReadonlyPaths",
                 "MemorySwappiness", "ShmSize", "MemorySwap", "Annotations"}


@dataclass(slots=True)
class RunSpec:
    image: str
    task_spec: TaskSpec
    config: dict[str, Any]
    host_config: dict[str, Any]
    network_mode: str
    endpoints: list[EndpointRequest] = field(default_factory=list)
    ports: list[PortBinding] = field(default_factory=list)
    auto_remove: bool = False
    restart: str = "no"
    max_retries: int = 0


def _zero(value: Any) -> bool:
    return value in (None, "", 0, False, [], {})


def _refuse(section: str, key: str, value: Any) -> None:
    raise InvalidArgument(f"{section}.{key}={value!r} is not supported by this node")


def _mounts(host: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for bind in host.get("Binds") or []:
        parts = str(bind).split(":")
        if len(parts) < 2 or len(parts) > 3:
            raise InvalidArgument(f"invalid volume specification: '{bind}'")
        src, dst = parts[0], parts[1]
        mode = parts[2].split(",") if len(parts) == 3 else []
        for m in mode:
            if m not in ("ro", "rw", "z", "Z", "rprivate", "private", "rslave", "slave",
                         "rshared", "shared", "nocopy"):
                raise InvalidArgument(f"invalid mode: {m}")
        kind = "bind" if src.startswith("/") else "volume"
        out.append({"Type": kind, "Source": src, "Target": dst, "ReadOnly": "ro" in mode})
    out.extend(dict(m) for m in host.get("Mounts") or [])
    for dst, opts in (host.get("Tmpfs") or {}).items():
        out.append({"Type": "tmpfs", "Target": dst,
                    **({"TmpfsOptions": {"Options": [o.split("=", 1) for o in
                                                     str(opts).split(",") if o]}}
                       if opts else {})})
    return out


def _ports(host: dict[str, Any]) -> list[PortBinding]:
    out = []
    for key, bindings in (host.get("PortBindings") or {}).items():
        port, _, proto = str(key).partition("/")
        for b in bindings or [{}]:
            hp = str((b or {}).get("HostPort") or "0")
            if "-" in hp:
                raise InvalidArgument(f"-p {key}: host port ranges are not supported")
            out.append(PortBinding(int(port), proto or "tcp", str((b or {}).get("HostIp") or ""),
                                   int(hp)))
    return out


def parse_run(body: dict[str, Any], networking: dict[str, Any] | None) -> RunSpec:
    config = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
    host: dict[str, Any] = dict(body.get("HostConfig") or {})
    for key, value in config.items():
        if key not in _CONFIG_USED and not _zero(value):
            _refuse("Config", key, value)
    for key in ("OnBuild", "Shell", "MacAddress", "NetworkDisabled", "Domainname"):
        if not _zero(config.get(key)):
            _refuse("Config", key, config[key])
    for key, value in host.items():
        if key not in _HOST_USED and not _zero(value):
            _refuse("HostConfig", key, value)
        allowed = _DEFAULT_ONLY.get(key)
        if allowed is not None and (value or "") not in allowed:
            _refuse("HostConfig", key, value)
    for key in ("Links", "VolumesFrom", "Privileged", "SecurityOpt", "Devices",
                "DeviceRequests", "CpuShares", "CpuQuota", "CpuPeriod", "CpusetCpus",
                "CpusetMems", "BlkioWeight", "MemoryReservation", "KernelMemory", "StorageOpt",
                "DeviceCgroupRules", "OomKillDisable", "PublishAllPorts", "DnsOptions"):
        if not _zero(host.get(key)):
            _refuse("HostConfig", key, host[key])
    if host.get("MemorySwap") not in (None, 0, -1) and host.get("MemorySwap") != \
            host.get("Memory"):
        _refuse("HostConfig", "MemorySwap", host["MemorySwap"])
    image = str(config.get("Image") or "")
    if not image:
        raise InvalidArgument("config cannot be empty in order to create a container")
    cs: dict[str, Any] = {"Image": image}
    if config.get("Entrypoint"):
        cs["Command"] = list(config["Entrypoint"])
    if config.get("Cmd"):
        cs["Args"] = list(config["Cmd"])
    for src, dst in (("Env", "Env"), ("Labels", "Labels"), ("WorkingDir", "Dir"),
                     ("User", "User"), ("Hostname", "Hostname"), ("Tty", "TTY"),
                     ("OpenStdin", "OpenStdin"), ("StopSignal", "StopSignal"),
                     ("Healthcheck", "Healthcheck")):
        if not _zero(config.get(src)):
            cs[dst] = config[src]
    if config.get("StopTimeout") is not None:
        cs["StopGracePeriod"] = int(config["StopTimeout"]) * 1_000_000_000
    for src, dst in (("Init", "Init"), ("ReadonlyRootfs", "ReadOnly"), ("Sysctls", "Sysctls"),
                     ("Ulimits", "Ulimits"), ("GroupAdd", "Groups"),
                     ("OomScoreAdj", "OomScoreAdj"), ("CapAdd", "CapabilityAdd"),
                     ("CapDrop", "CapabilityDrop")):
        if not _zero(host.get(src)):
            cs[dst] = host[src]
    if host.get("ExtraHosts"):
        cs["Hosts"] = [_host_entry(h) for h in host["ExtraHosts"]]
    if host.get("Dns") or host.get("DnsSearch"):
        cs["DNSConfig"] = {"Nameservers": list(host.get("Dns") or []),
                           "Search": list(host.get("DnsSearch") or [])}
    mounts = _mounts(host)
    if mounts:
        cs["Mounts"] = mounts
    limits = Limits(nano_cpus=int(host.get("NanoCpus") or 0),
                    memory_bytes=int(host.get("Memory") or 0),
                    pids=max(int(host.get("PidsLimit") or 0), 0))
    log = host.get("LogConfig") or {}
    log_driver = ({"Name": log["Type"], "Options": log.get("Config") or {}}
                  if log.get("Type") else None)
    policy = host.get("RestartPolicy") or {}
    restart = str(policy.get("Name") or "no")
    if restart not in RESTART_POLICIES:
        raise InvalidArgument(f"invalid restart policy '{restart}'")
    retries = int(policy.get("MaximumRetryCount") or 0)
    if retries and restart != "on-failure":
        raise InvalidArgument("invalid restart policy: maximum retry count can only be used "
                              "with 'on-failure'")
    auto_remove = bool(host.get("AutoRemove"))
    if auto_remove and restart != "no":
        raise InvalidArgument("can't create 'AutoRemove' container with restart policy")
    mode = str(host.get("NetworkMode") or "default")
    endpoints = _endpoints(mode, networking)
    return RunSpec(image=image, task_spec=TaskSpec(container_spec=cs,
                                                   resources=Resources(limits=limits),
                                                   log_driver=log_driver),
                   config=config, host_config=host, network_mode=mode, endpoints=endpoints,
                   ports=_ports(host), auto_remove=auto_remove, restart=restart,
                   max_retries=retries)


def _host_entry(entry: str) -> str:
    """``--add-host name:ip`` as a hosts line ``ip name`` (the ContainerSpec's Hosts)."""
    name, _, ip = str(entry).partition(":")
    if not ip:
        raise InvalidArgument(f"invalid IP address in add-host: {entry!r}")
    return f"{ip} {name}"


def _endpoints(mode: str, networking: dict[str, Any] | None) -> list[EndpointRequest]:
    configs = dict((networking or {}).get("EndpointsConfig") or {})
    out: list[EndpointRequest] = []
    primary = "bridge" if mode == "default" else mode
    if "default" in configs:  # the CLI keys the primary's endpoint by the network mode
        configs.setdefault(primary, configs.pop("default"))
    names = [primary] + [n for n in configs if n != primary]
    for name in names:
        ep = configs.get(name) or {}
        ipam = ep.get("IPAMConfig") or {}
        out.append(EndpointRequest(name, tuple(ep.get("Aliases") or ()),
                                   str(ipam.get("IPv4Address") or "")))
    return out
