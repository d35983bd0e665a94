"""A loaded compose `Config` as Engine API objects, as docker's ``cli/compose/convert``:
names scoped to the stack (``STACK_x``), the ``com.docker.stack.namespace`` label on
everything, ``com.docker.stack.image`` on services."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from shoal.cli.compose import svcoptions
from shoal.cli.compose.loader import Config
from shoal.cli.errors import CliError

__all__ = [
    "LABEL_IMAGE",
    "LABEL_NAMESPACE",
    "Namespace",
    "file_objects",
    "file_references",
    "networks",
    "service_spec",
    "services_networks",
]

LABEL_NAMESPACE = "com.docker.stack.namespace"
LABEL_IMAGE = "com.docker.stack.image"
DEFAULT_NETWORK = "default"
_BUILTIN_NETWORKS = {"default", "bridge", "host", "none"}


class Namespace:
    """docker's ``convert.Namespace``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def scope(self, name: str) -> str:
        return f"{self.name}_{name}"

    def descope(self, name: str) -> str:
        return name.removeprefix(self.name + "_")

    def labels(self, labels: dict[str, str] | None = None) -> dict[str, str]:
        return {**(labels or {}), LABEL_NAMESPACE: self.name}


def _user_defined(name: str) -> bool:
    return name not in _BUILTIN_NETWORKS and not name.startswith("container:")


def services_networks(config: Config) -> set[str]:
    """docker's ``getServicesDeclaredNetworks``: the networks some service uses."""
    used: set[str] = set()
    for svc in config.services.values():
        used.update(svc.get("networks") or {DEFAULT_NETWORK: {}})
    return used


def networks(ns: Namespace, config: Config) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """docker's ``convert.Networks``: create requests by network name, and the external names."""
    creates: dict[str, dict[str, Any]] = {}
    external: list[str] = []
    for key in sorted(services_networks(config)):
        net = config.networks.get(key) or {}
        if net.get("external"):
            external.append(net.get("name") or key)
            continue
        ipam = None
        if net.get("subnets"):
            ipam = {"Driver": "", "Options": None,
                    "Config": [{"Subnet": subnet} for subnet in net["subnets"]]}
        name = net.get("name") or ns.scope(key)
        creates[name] = {
            "Name": name,
            "Driver": net.get("driver") or "overlay",
            "Scope": "",
            "IPAM": ipam,
            "Internal": bool(net.get("internal")),
            "Attachable": bool(net.get("attachable")),
            "Ingress": False,
            "ConfigOnly": False,
            "ConfigFrom": None,
            "Options": net.get("driver_opts"),
            "Labels": ns.labels(net.get("labels")),
        }
    return creates, external


def file_objects(ns: Namespace, objects: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """docker's ``convert.Secrets`` / ``Configs``: the specs of the non-external ones, their
    data read from their files."""
    specs = []
    for key, obj in objects.items():
        if obj.get("external"):
            continue
        try:
            data = Path(obj["file"]).read_bytes()
        except OSError as exc:
            raise CliError(f"open {obj['file']}: {(exc.strerror or str(exc)).lower()}") from None
        specs.append({
            "Name": obj.get("name") or ns.scope(key),
            "Labels": ns.labels(obj.get("labels")),
            "Data": base64.b64encode(data).decode(),
        })
    return specs


def file_references(
    ns: Namespace, refs: list[dict[str, Any]], objects: dict[str, dict[str, Any]], kind: str
) -> list[dict[str, Any]]:
    """A service's secrets/configs as references by name (IDs are filled in by the caller);
    docker's ``convertFileObject``: target = source, uid/gid "0", mode 0444."""
    out = []
    for ref in refs:
        source = ref["source"]
        obj = objects.get(source)
        if obj is None:
            raise CliError(f"undefined {kind} \"{source}\"")
        out.append({
            "File": {
                "Name": ref.get("target") or source,
                "UID": ref.get("uid") or "0",
                "GID": ref.get("gid") or "0",
                "Mode": ref.get("mode", 0o444),
            },
            "Name": obj.get("name") or ns.scope(source),
        })
    return out


def _mode(deploy: dict[str, Any]) -> dict[str, Any]:
    mode = deploy.get("mode") or "replicated"
    replicas = deploy.get("replicas")
    if mode in ("global", "global-job") and replicas is not None:
        raise CliError("replicas can only be used with replicated or replicated-job mode")
    if mode == "global":
        return {"Global": {}}
    if mode == "global-job":
        return {"GlobalJob": {}}
    if mode == "replicated-job":
        return {"ReplicatedJob": {"MaxConcurrent": replicas, "TotalCompletions": replicas}}
    if mode == "replicated":
        return {"Replicated": {} if replicas is None else {"Replicas": replicas}}
    raise CliError(f"Unknown mode: {mode}")


def _update_config(conf: dict[str, Any] | None) -> dict[str, Any] | None:
    if conf is None:
        return None
    return {
        "Parallelism": conf.get("parallelism", 1),
        "Delay": conf.get("delay", 0),
        "FailureAction": conf.get("failure_action", ""),
        "Monitor": conf.get("monitor", 0),
        "MaxFailureRatio": conf.get("max_failure_ratio", 0),
        "Order": conf.get("order", ""),
    }


def _resources(res: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, api in (("limits", "Limits"), ("reservations", "Reservations")):
        if key in res:
            out[api] = {"NanoCPUs": res[key].get("cpus", 0),
                        "MemoryBytes": res[key].get("memory", 0)}
            if res[key].get("pids"):
                out[api]["Pids"] = res[key]["pids"]
    return out


def _healthcheck(check: dict[str, Any] | None) -> dict[str, Any] | None:
    if check is None:
        return None
    if check.get("disable"):
        if check.get("test"):
            raise CliError("test and disable can't be set at the same time")
        return {"Test": ["NONE"]}
    out: dict[str, Any] = {"Test": check.get("test")}
    for key, api in (("interval", "Interval"), ("timeout", "Timeout"),
                     ("start_period", "StartPeriod"), ("start_interval", "StartInterval"),
                     ("retries", "Retries")):
        if check.get(key):
            out[api] = check[key]
    return out


def _mounts(ns: Namespace, volumes: list[dict[str, Any]], config: Config) -> list[dict[str, Any]]:
    """docker's ``convert.Volumes`` for the types shoal runs: volume, bind and tmpfs."""
    mounts = []
    for vol in volumes:
        kind = vol["type"] or "volume"
        mount: dict[str, Any] = {"Type": kind, "Source": vol["source"], "Target": vol["target"]}
        if vol.get("read_only"):
            mount["ReadOnly"] = True
        if kind == "volume" and vol["source"]:
            stack_volume = config.volumes.get(vol["source"])
            if stack_volume is None:
                raise CliError(f"undefined volume \"{vol['source']}\"")
            mount["Source"] = stack_volume.get("name") or ns.scope(vol["source"])
            options: dict[str, Any] = {"NoCopy": bool(vol.get("nocopy"))}
            if not stack_volume.get("external"):
                options["Labels"] = ns.labels(stack_volume.get("labels"))
            mount["VolumeOptions"] = options
        elif kind == "bind":
            if not vol["source"]:
                raise CliError("invalid bind source, source cannot be empty")
            if vol.get("propagation"):
                mount["BindOptions"] = {"Propagation": vol["propagation"]}
        elif kind == "tmpfs":
            if vol["source"]:
                raise CliError("invalid tmpfs source, source must be empty")
            if vol.get("tmpfs_size"):
                mount["TmpfsOptions"] = {"SizeBytes": vol["tmpfs_size"]}
        mounts.append(mount)
    return mounts


def _networks(ns: Namespace, svc: dict[str, Any], config: Config, key: str) -> list[dict[str, Any]]:
    attachments = []
    for name, conf in (svc.get("networks") or {DEFAULT_NETWORK: {}}).items():
        if name not in config.networks and name != DEFAULT_NETWORK:
            raise CliError(f"undefined network \"{name}\"")
        target = (config.networks.get(name) or {}).get("name") or ns.scope(name)
        aliases = list(conf.get("aliases") or [])
        if _user_defined(target):
            aliases.append(key)
        attachment: dict[str, Any] = {"Target": target}
        if aliases:
            attachment["Aliases"] = aliases
        attachments.append(attachment)
    return sorted(attachments, key=lambda a: str(a["Target"]))


def _ports(deploy: dict[str, Any], ports: list[dict[str, Any]]) -> dict[str, Any]:
    configs = []
    for port in ports:
        entry: dict[str, Any] = {}
        for key, api in (("protocol", "Protocol"), ("target", "TargetPort"),
                         ("published", "PublishedPort"), ("mode", "PublishMode")):
            if port.get(key):
                entry[api] = port[key]
        configs.append(entry)
    configs.sort(key=lambda p: int(p.get("PublishedPort", 0)))
    endpoint: dict[str, Any] = {}  # Go's omitempty: an unset mode is the daemon's (vip)
    if deploy.get("endpoint_mode"):
        endpoint["Mode"] = str(deploy["endpoint_mode"]).lower()
    if configs:
        endpoint["Ports"] = configs
    return endpoint


def service_spec(
    ns: Namespace,
    key: str,
    svc: dict[str, Any],
    config: Config,
    secrets: list[dict[str, Any]],
    configs: list[dict[str, Any]],
) -> dict[str, Any]:
    """docker's ``convert.Service``; `secrets`/`configs` are the resolved references."""
    image = svc.get("image") or ""
    if not image:
        raise CliError(f"invalid image reference for service {key}: no image specified")
    deploy = svc.get("deploy") or {}
    env = svc.get("environment") or {}
    container: dict[str, Any] = {
        "Image": image,
        "Labels": ns.labels(svc.get("labels")),
        "Env": sorted(k if v is None else f"{k}={v}" for k, v in env.items()),
    }
    optional = {
        "Command": svc.get("entrypoint"),
        "Args": svc.get("command"),
        "Hostname": svc.get("hostname"),
        "Dir": svc.get("working_dir"),
        "User": svc.get("user"),
        "StopGracePeriod": svc.get("stop_grace_period"),
        "StopSignal": svc.get("stop_signal"),
        "TTY": svc.get("tty"),
        "ReadOnly": svc.get("read_only"),
        "CapabilityAdd": svc.get("cap_add"),
        "CapabilityDrop": svc.get("cap_drop"),
        "Healthcheck": _healthcheck(svc.get("healthcheck")),
        "Mounts": _mounts(ns, svc.get("volumes") or [], config),
        "Secrets": secrets,
        "Configs": configs,
        **svcoptions.container_fields(svc),
    }
    container.update({k: v for k, v in optional.items() if v not in (None, [], "")})
    placement_src = deploy.get("placement") or {}
    placement: dict[str, Any] = {}
    if placement_src.get("constraints"):
        placement["Constraints"] = placement_src["constraints"]
    if placement_src.get("preferences"):
        placement["Preferences"] = [
            {"Spread": {"SpreadDescriptor": spread}} for spread in placement_src["preferences"]
        ]
    if placement_src.get("max_replicas_per_node"):
        placement["MaxReplicas"] = placement_src["max_replicas_per_node"]
    task: dict[str, Any] = {
        "ContainerSpec": container,
        "Resources": _resources(deploy.get("resources") or {}),
        "Placement": placement,
        "Networks": _networks(ns, svc, config, key),
    }
    if svcoptions.log_driver(svc) is not None:
        task["LogDriver"] = svcoptions.log_driver(svc)
    restart = deploy.get("restart_policy")
    if restart is not None:
        policy: dict[str, Any] = {"Condition": restart.get("condition", "")}
        for src, api in (("delay", "Delay"), ("max_attempts", "MaxAttempts"),
                         ("window", "Window")):
            if src in restart:
                policy[api] = restart[src]
        task["RestartPolicy"] = policy
    spec: dict[str, Any] = {
        "Name": ns.scope(key),
        "Labels": {**ns.labels(deploy.get("labels")), LABEL_IMAGE: image},
        "TaskTemplate": task,
        "Mode": _mode(deploy),
        "EndpointSpec": _ports(deploy, svc.get("ports") or []),
    }
    for src, api in (("update_config", "UpdateConfig"), ("rollback_config", "RollbackConfig")):
        conf = _update_config(deploy.get(src))
        if conf is not None:
            spec[api] = conf
    return spec
