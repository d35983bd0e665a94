"""Build the ServiceSpec of ``service create`` from its flags, as docker's ``ToService`` does,
and pin images through ``/distribution`` as docker's client does before create and update.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shoal.cli.app import App
from shoal.cli.errors import CliError
from shoal.cli.service.flags import HEALTH_FLAGS, RESTART_FLAGS, ROLLBACK_FLAGS, UPDATE_FLAGS
from shoal.cli.service.opts import read_env_files
from shoal.cli.service.refs import resolve_references

__all__ = [
    "Changed",
    "apply_restart_flags",
    "apply_update_flags",
    "build_spec",
    "copy_changed",
    "default_restart_policy",
    "default_update_config",
    "effective_caps",
    "health_config",
    "kv_map",
    "make_env",
    "network_id",
    "swarm_hosts",
    "update_config_json",
]

Changed = Callable[[str], bool]


def copy_changed(
    target: dict[str, Any], params: dict[str, Any], changed: Changed, fields: dict[str, str]
) -> None:
    """``target[field] = params[flag]`` for each ``field: flag`` whose flag was given."""
    for field, flag in fields.items():
        if changed(flag):
            target[field] = params[flag]
SECOND = 1_000_000_000


def kv_map(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """docker's ``ConvertKVStringsToMap``: ``k=v`` -> {k: v}; ``k`` -> {k: ""}."""
    out: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def make_env(variables: list[str]) -> list[str]:
    """docker's ``makeEnv``: later values of a variable replace earlier ones, order kept."""
    current: list[str] = []
    for env in variables:
        key = env.partition("=")[0]
        current = [c for c in current if c == env or not c.startswith(key + "=")]
        current.append(env)
    return current


def health_config(params: dict[str, Any], changed: Changed) -> dict[str, Any] | None:
    """docker's ``toHealthConfig``."""
    have = (
        bool(params["health_cmd"])
        or params["health_retries"] != 0
        or any(
            params[name] is not None
            for name in HEALTH_FLAGS
            if name not in ("health_cmd", "health_retries")
        )
    )
    if params["no_healthcheck"]:
        if have:
            raise CliError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not have:
        return None
    config: dict[str, Any] = {}
    if params["health_cmd"]:
        config["Test"] = ["CMD-SHELL", params["health_cmd"]]
    for key, name in (
        ("Interval", "health_interval"),
        ("Timeout", "health_timeout"),
        ("StartPeriod", "health_start_period"),
        ("StartInterval", "health_start_interval"),
    ):
        if params[name]:
            config[key] = params[name]
    if params["health_retries"]:
        config["Retries"] = params["health_retries"]
    return config


def default_update_config() -> dict[str, Any]:
    """swarmkit's defaults for UpdateConfig and RollbackConfig, as the CLI fills them."""
    return {
        "Parallelism": 1,
        "Delay": 0,
        "FailureAction": "pause",
        "Monitor": 5 * SECOND,
        "MaxFailureRatio": 0,
        "Order": "stop-first",
    }


def _update_config(params: dict[str, Any], changed: Changed, prefix: str) -> dict[str, Any] | None:
    names = UPDATE_FLAGS if prefix == "update" else ROLLBACK_FLAGS
    if not any(changed(name) for name in names):
        return None
    config = default_update_config()
    apply_update_flags(config, params, changed, prefix)
    return update_config_json(config)


def apply_update_flags(
    config: dict[str, Any], params: dict[str, Any], changed: Changed, prefix: str
) -> None:
    for key, suffix in (
        ("Parallelism", "parallelism"),
        ("Delay", "delay"),
        ("Monitor", "monitor"),
        ("FailureAction", "failure_action"),
        ("MaxFailureRatio", "max_failure_ratio"),
        ("Order", "order"),
    ):
        name = f"{prefix}_{suffix}"
        if changed(name):
            value = params[name]
            config[key] = (
                int(value) if key == "MaxFailureRatio" and float(value).is_integer() else value
            )


def update_config_json(config: dict[str, Any]) -> dict[str, Any]:
    """Go's omitempty on UpdateConfig: Delay, FailureAction and Monitor vanish when zero."""
    return {
        k: v for k, v in config.items() if v or k in ("Parallelism", "MaxFailureRatio", "Order")
    }


def default_restart_policy() -> dict[str, Any]:
    return {"Condition": "any", "Delay": 5 * SECOND, "MaxAttempts": 0}


def apply_restart_flags(policy: dict[str, Any], params: dict[str, Any], changed: Changed) -> None:
    copy_changed(
        policy,
        params,
        changed,
        {
            "Condition": "restart_condition",
            "Delay": "restart_delay",
            "MaxAttempts": "restart_max_attempts",
            "Window": "restart_window",
        },
    )


def _mode(params: dict[str, Any]) -> dict[str, Any]:
    mode, replicas = params["mode"], params["replicas"]
    concurrent, per_node = params["max_concurrent"], params["replicas_max_per_node"]
    if mode in ("global", "global-job"):
        if mode == "global" and replicas is not None:
            raise CliError("replicas can only be used with replicated or replicated-job mode")
        if per_node:
            raise CliError(
                "replicas-max-per-node can only be used with replicated or replicated-job mode"
            )
        if concurrent is not None:
            raise CliError("max-concurrent can only be used with replicated-job mode")
        if replicas is not None:
            raise CliError("replicas can only be used with replicated or replicated-job mode")
        return {"Global": {}} if mode == "global" else {"GlobalJob": {}}
    if mode == "replicated":
        if concurrent is not None:
            raise CliError("max-concurrent can only be used with replicated-job mode")
        return {"Replicated": {} if replicas is None else {"Replicas": replicas}}
    if mode == "replicated-job":
        job: dict[str, Any] = {}
        if concurrent is not None or replicas is not None:
            job["MaxConcurrent"] = concurrent if concurrent is not None else replicas
        if replicas is not None:
            job["TotalCompletions"] = replicas
        return {"ReplicatedJob": job}
    raise CliError(f"Unknown mode: {mode}, only replicated and global supported")


def effective_caps(add: list[str], drop: list[str]) -> tuple[list[str], list[str]]:
    """docker's ``EffectiveCapAddCapDrop`` (normalised ``CAP_`` names, sorted)."""

    def norm(name: str) -> str:
        name = name.strip().upper()
        return name if name == "ALL" or name.startswith("CAP_") else "CAP_" + name

    dropped = {norm(c) for c in drop if c}
    added = {norm(c) for c in add if c and c not in dropped}
    if "ALL" in added:
        dropped = {c for c in dropped if c not in added}
    if "ALL" in dropped:
        added = {c for c in added if c != "ALL"}
    return sorted(added), sorted(dropped)


def swarm_hosts(hosts: list[str] | tuple[str, ...]) -> list[str]:
    """``host:ip`` flags -> swarm's ``"ip host"`` entries."""
    return [f"{ip} {host}" for host, sep, ip in (h.partition(":") for h in hosts) if sep]


def network_id(app: App, name: str) -> str:
    """docker resolves ``--network`` names on the client: ``GET /networks/{name}?scope=swarm``."""
    return str((app.client.get(f"/networks/{name}", {"scope": "swarm"}) or {}).get("Id", ""))


def _omit_empty(mapping: dict[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k in keep or v not in (None, "", [], {}, 0, False)}


def build_spec(app: App, params: dict[str, Any], changed: Changed) -> dict[str, Any]:
    """The ServiceSpec body of ``POST /services/create`` for these flags."""
    try:
        env = make_env(read_env_files(list(params["env_file"])) + list(params["env"]))
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    healthcheck = health_config(params, changed)
    mode = _mode(params)
    update_config = _update_config(params, changed, "update")
    rollback_config = _update_config(params, changed, "rollback")
    if ("ReplicatedJob" in mode or "GlobalJob" in mode) and (update_config or rollback_config):
        raise CliError("update and rollback configuration is not supported for jobs")
    networks = [dict(n, Target=network_id(app, n["Target"])) for n in params["network"]]
    networks.sort(key=lambda n: n["Target"])
    secrets = resolve_references(app, "secret", list(params["secret"]))
    configs = resolve_references(app, "config", list(params["config"]))
    cap_add, cap_drop = effective_caps(list(params["cap_add"]), list(params["cap_drop"]))
    container = _omit_empty(
        {
            "Image": params["args"][0],
            "Labels": kv_map(params["container_label"]),
            "Command": params["entrypoint"],
            "Args": list(params["args"][1:]),
            "Hostname": params["hostname"],
            "Env": env,
            "Dir": params["workdir"],
            "User": params["user"],
            "Groups": list(params["group"]),
            "Init": params["init"],
            "StopSignal": params["stop_signal"],
            "TTY": params["tty"],
            "ReadOnly": params["read_only"],
            "Mounts": list(params["mount"]),
            "StopGracePeriod": params["stop_grace_period"]
            if changed("stop_grace_period")
            else None,
            "Healthcheck": healthcheck,
            "Hosts": swarm_hosts(params["host"]),
            "DNSConfig": _omit_empty(
                {
                    "Nameservers": list(params["dns"]),
                    "Search": list(params["dns_search"]),
                    "Options": list(params["dns_option"]),
                }
            ),
            "Secrets": secrets,
            "Configs": configs,
            "Isolation": params["isolation"],
            "Sysctls": kv_map(params["sysctl"]),
            "CapabilityAdd": cap_add,
            "CapabilityDrop": cap_drop,
            "OomScoreAdj": params["oom_score_adj"],
        },
        keep=("Init", "DNSConfig", "StopGracePeriod"),
    )
    if container.get("StopGracePeriod") is None:
        container.pop("StopGracePeriod")
    restart = None
    if any(changed(name) for name in RESTART_FLAGS):
        restart = default_restart_policy()
        apply_restart_flags(restart, params, changed)
    task: dict[str, Any] = {
        "ContainerSpec": container,
        "Resources": {
            "Limits": _omit_empty(
                {
                    "NanoCPUs": params["limit_cpu"],
                    "MemoryBytes": params["limit_memory"],
                    "Pids": params["limit_pids"],
                }
            ),
            "Reservations": _omit_empty(
                {"NanoCPUs": params["reserve_cpu"], "MemoryBytes": params["reserve_memory"]}
            ),
        },
    }
    if restart is not None:
        task["RestartPolicy"] = restart
    task["Placement"] = _omit_empty(
        {
            "Constraints": list(params["constraint"]),
            "Preferences": list(params["placement_pref"]),
            "MaxReplicas": params["replicas_max_per_node"],
        }
    )
    if networks:
        task["Networks"] = networks
    if params["log_driver"]:
        task["LogDriver"] = _omit_empty(
            {"Name": params["log_driver"], "Options": kv_map(params["log_opt"])}
        )
    task["ForceUpdate"] = 0
    spec: dict[str, Any] = {}
    if params["name"]:
        spec["Name"] = params["name"]
    spec.update({"Labels": kv_map(params["label"]), "TaskTemplate": task, "Mode": mode})
    if update_config:
        spec["UpdateConfig"] = update_config
    if rollback_config:
        spec["RollbackConfig"] = rollback_config
    spec["EndpointSpec"] = _omit_empty(
        {
            "Mode": params["endpoint_mode"].lower(),
            "Ports": [port for group in params["publish"] for port in group],
        }
    )
    return spec
