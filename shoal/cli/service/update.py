"""Merge ``service update`` flags into the current ServiceSpec, as docker's ``updateService``.

The spec is the raw JSON from ``GET /services/{id}``; only the flags that were given change it,
and the result is posted back whole.
"""

from __future__ import annotations

from typing import Any

from shoal.cli.app import App
from shoal.cli.errors import CliError
from shoal.cli.service.flags import HEALTH_FLAGS, RESTART_FLAGS, ROLLBACK_FLAGS, UPDATE_FLAGS
from shoal.cli.service.refs import updated_references
from shoal.cli.service.spec import (
    Changed,
    apply_restart_flags,
    apply_update_flags,
    copy_changed,
    default_restart_policy,
    default_update_config,
    effective_caps,
    kv_map,
    network_id,
    update_config_json,
)

__all__ = ["port_key", "prune_empty", "update_spec"]


def _env_key(item: str) -> str:
    return item.partition("=")[0]


def _update_map(
    current: dict[str, str] | None, params: dict[str, Any], changed: Changed, flag: str
) -> dict[str, str] | None:
    """Apply ``--FLAG-rm`` then ``--FLAG-add`` (given as `flag`, e.g. ``label``) to a map."""
    if current is not None and changed(f"{flag}_rm"):
        for key in params[f"{flag}_rm"]:
            current.pop(key, None)
    if changed(f"{flag}_add"):
        current = current if current is not None else {}
        current.update(kv_map(params[f"{flag}_add"]))
    return current


def _update_env(current: list[str], add: tuple[str, ...], remove: tuple[str, ...]) -> list[str]:
    kept = [item for item in current if _env_key(item) not in set(remove)]
    for item in add:
        key = _env_key(item)
        index = next((i for i, old in enumerate(kept) if _env_key(old) == key), None)
        if index is None:
            kept.append(item)
        else:
            kept[index] = item
    return kept


def port_key(port: dict[str, Any]) -> str:
    """docker's ``portConfigToString``: ``published:target/protocol/mode``."""
    return (
        f"{port.get('PublishedPort', 0)}:{port.get('TargetPort', 0)}/"
        f"{port.get('Protocol', '')}/{port.get('PublishMode', '')}"
    )


def _same(a: str | None, b: str | None, default: str) -> bool:
    return (a or default) == (b or default)


def _update_ports(
    current: list[dict[str, Any]], add: list[dict[str, Any]], remove: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    unique: dict[str, dict[str, Any]] = {}
    for port in current:
        unique.setdefault(port_key(port), port)
    ports = [
        port
        for port in unique.values()
        if not any(
            _same(port.get("Protocol"), r.get("Protocol"), "tcp")
            and port.get("TargetPort") == r.get("TargetPort")
            and _same(port.get("PublishMode"), r.get("PublishMode"), "ingress")
            for r in remove
        )
    ]
    ports += [port for port in add if port_key(port) not in unique]
    return sorted(ports, key=port_key)


def _update_mounts(
    current: list[dict[str, Any]], add: list[dict[str, Any]], remove: tuple[str, ...]
) -> list[dict[str, Any]]:
    by_target: dict[str, dict[str, Any]] = {}
    for mount in add:
        if mount.get("Target") in by_target:
            raise CliError("duplicate mount target")
        by_target[mount.get("Target", "")] = mount
    for mount in current:
        by_target.setdefault(mount.get("Target", ""), mount)
    mounts = [m for m in by_target.values() if m.get("Target") not in set(remove)]
    return sorted(mounts, key=lambda m: (m.get("Source", ""), m.get("Target", "")))


def _update_networks(app: App, spec: dict[str, Any], params: dict[str, Any]) -> None:
    task = spec.setdefault("TaskTemplate", {})
    current = task.get("Networks") or spec.get("Networks") or []
    spec.pop("Networks", None)
    remove_ids = {network_id(app, name) for name in params["network_rm"]}
    networks = [n for n in current if n.get("Target") not in remove_ids]
    existing = {n.get("Target") for n in networks}
    for attachment in params["network_add"]:
        ident = network_id(app, attachment["Target"])
        if ident in existing:
            raise CliError(f"service is already attached to network {attachment['Target']}")
        networks.append(dict(attachment, Target=ident))
        existing.add(ident)
    task["Networks"] = sorted(networks, key=lambda n: n.get("Target", ""))


def _update_health(container: dict[str, Any], params: dict[str, Any], changed: Changed) -> None:
    health_changed = [name for name in HEALTH_FLAGS if changed(name)]
    if not health_changed and not changed("no_healthcheck"):
        return
    health = container.get("Healthcheck") or {}
    if params["no_healthcheck"]:
        if health_changed:
            raise CliError("--no-healthcheck conflicts with --health-* options")
        container["Healthcheck"] = {"Test": ["NONE"]}
        return
    if (health.get("Test") or [""])[0] == "NONE":
        health.pop("Test", None)
    copy_changed(
        health,
        params,
        changed,
        {
            "Interval": "health_interval",
            "Timeout": "health_timeout",
            "StartPeriod": "health_start_period",
            "StartInterval": "health_start_interval",
            "Retries": "health_retries",
        },
    )
    if changed("health_cmd"):
        if params["health_cmd"]:
            health["Test"] = ["CMD-SHELL", params["health_cmd"]]
        else:
            health.pop("Test", None)
    container["Healthcheck"] = health


def _update_replicas(spec: dict[str, Any], params: dict[str, Any], changed: Changed) -> None:
    if not changed("replicas"):
        return
    mode = spec.get("Mode") or {}
    if mode.get("Replicated") is None:
        raise CliError("replicas can only be used with replicated mode")
    mode["Replicated"]["Replicas"] = params["replicas"]


_OMITEMPTY_MAPS = ("Sysctls", "DriverOpts", "Options")


def prune_empty(value: Any, *, top: bool = True) -> Any:
    """Drop what Go's ``omitempty`` drops when docker re-encodes a spec: empty lists, and empty
    maps that are omitempty (container labels, sysctls, driver options)."""
    if isinstance(value, list):
        return [prune_empty(v, top=False) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        item = prune_empty(item, top=False)
        if isinstance(item, list) and not item:
            continue
        if (
            isinstance(item, dict)
            and not item
            and (key in _OMITEMPTY_MAPS or (key == "Labels" and not top))
        ):
            continue
        out[key] = item
    return out


def update_spec(app: App, spec: dict[str, Any], params: dict[str, Any], changed: Changed) -> None:
    """Apply the given ``service update`` flags to `spec` in place."""
    task = spec.setdefault("TaskTemplate", {})
    container = task.setdefault("ContainerSpec", {})
    spec["Labels"] = _update_map(spec.get("Labels"), params, changed, "label")
    labels = _update_map(container.get("Labels"), params, changed, "container_label")
    if labels is not None:
        container["Labels"] = labels
    copy_changed(
        container,
        params,
        changed,
        {
            "Image": "image",
            "Dir": "workdir",
            "User": "user",
            "Hostname": "hostname",
            "Isolation": "isolation",
            "StopSignal": "stop_signal",
            "Args": "container_args",
            "Command": "entrypoint",
        },
    )
    if changed("env_add") or changed("env_rm"):
        container["Env"] = _update_env(
            container.get("Env") or [], params["env_add"], params["env_rm"]
        )
    if changed("init"):
        container["Init"] = params["init"]
    if changed("mount_add") or changed("mount_rm"):
        container["Mounts"] = _update_mounts(
            container.get("Mounts") or [], list(params["mount_add"]), params["mount_rm"]
        )
    sysctls = _update_map(container.get("Sysctls"), params, changed, "sysctl")
    if sysctls is not None:
        container["Sysctls"] = sysctls
    _update_resources(task, params, changed)
    copy_changed(
        container,
        params,
        changed,
        {"OomScoreAdj": "oom_score_adj", "StopGracePeriod": "stop_grace_period"},
    )
    if any(changed(name) for name in RESTART_FLAGS):
        policy = task.get("RestartPolicy") or default_restart_policy()
        apply_restart_flags(policy, params, changed)
        task["RestartPolicy"] = policy
    if changed("constraint_add") or changed("constraint_rm"):
        placement = task.get("Placement") or {}
        constraints = (placement.get("Constraints") or []) + list(params["constraint_add"])
        placement["Constraints"] = sorted(
            c for c in constraints if c not in set(params["constraint_rm"])
        )
        task["Placement"] = placement
    if changed("placement_pref_add") or changed("placement_pref_rm"):
        placement = task.get("Placement") or {}
        removed = {p["Spread"]["SpreadDescriptor"] for p in params["placement_pref_rm"]}
        prefs = [
            p
            for p in placement.get("Preferences") or []
            if (p.get("Spread") or {}).get("SpreadDescriptor") not in removed
        ]
        placement["Preferences"] = prefs + list(params["placement_pref_add"])
        task["Placement"] = placement
    if changed("network_add") or changed("network_rm"):
        _update_networks(app, spec, params)
    for kind in ("secret", "config"):
        add, remove = params[f"{kind}_add"], params[f"{kind}_rm"]
        if add or remove:
            container[f"{kind.capitalize()}s"] = updated_references(
                app, kind, container, list(add), remove
            )
    _update_replicas(spec, params, changed)
    if changed("replicas_max_per_node"):
        task.setdefault("Placement", {})["MaxReplicas"] = params["replicas_max_per_node"]
    for key, names, prefix in (
        ("UpdateConfig", UPDATE_FLAGS, "update"),
        ("RollbackConfig", ROLLBACK_FLAGS, "rollback"),
    ):
        if any(changed(name) for name in names):
            config = spec.get(key) or default_update_config()
            apply_update_flags(config, params, changed, prefix)
            spec[key] = update_config_json(config)
    if changed("endpoint_mode"):
        (spec.get("EndpointSpec") or spec.setdefault("EndpointSpec", {}))["Mode"] = params[
            "endpoint_mode"
        ]
    if changed("group_add") or changed("group_rm"):
        groups = (container.get("Groups") or []) + list(params["group_add"])
        container["Groups"] = sorted(g for g in groups if g not in set(params["group_rm"]))
    if changed("publish_add") or changed("publish_rm"):
        endpoint = spec.get("EndpointSpec") or spec.setdefault("EndpointSpec", {})
        endpoint["Ports"] = _update_ports(
            endpoint.get("Ports") or [],
            [p for group in params["publish_add"] for p in group],
            [p for group in params["publish_rm"] for p in group],
        )
    if changed("log_driver") and params["log_driver"]:
        task["LogDriver"] = {"Name": params["log_driver"], "Options": kv_map(params["log_opt"])}
    if params["force"]:
        task["ForceUpdate"] = int(task.get("ForceUpdate") or 0) + 1
    _update_health(container, params, changed)
    copy_changed(container, params, changed, {"TTY": "tty", "ReadOnly": "read_only"})
    if changed("cap_add") or changed("cap_drop"):
        _update_caps(container, params)


def _update_resources(task: dict[str, Any], params: dict[str, Any], changed: Changed) -> None:
    for group, fields in (
        ("Limits", {"NanoCPUs": "limit_cpu", "MemoryBytes": "limit_memory", "Pids": "limit_pids"}),
        ("Reservations", {"NanoCPUs": "reserve_cpu", "MemoryBytes": "reserve_memory"}),
    ):
        if not any(changed(flag) for flag in fields.values()):
            continue
        resources = task.get("Resources") or {}
        task["Resources"] = resources
        for key in ("Limits", "Reservations"):
            if not resources.get(key):
                resources[key] = {}
        copy_changed(resources[group], params, changed, fields)


def _update_caps(container: dict[str, Any], params: dict[str, Any]) -> None:
    add_now, drop_now = effective_caps(list(params["cap_add"]), list(params["cap_drop"]))
    current_add = [c for c in container.get("CapabilityAdd") or [] if c not in drop_now]
    current_drop = [c for c in container.get("CapabilityDrop") or [] if c not in add_now]
    container["CapabilityAdd"] = sorted(set(current_add) | set(add_now))
    container["CapabilityDrop"] = sorted(set(current_drop) | set(drop_now))
