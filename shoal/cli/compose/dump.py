"""A loaded `Config` back as YAML, as ``docker stack config`` prints it: docker's field order,
long syntax for ports, volumes, secrets and configs, durations as Go writes them."""

from __future__ import annotations

import json
import re
from typing import Any

from shoal.cli.compose.loader import Config
from shoal.cli.format import units

__all__ = ["dump"]

_SERVICE_ORDER = [
    "command", "configs", "depends_on", "deploy", "dns", "dns_search", "entrypoint",
    "environment", "extra_hosts", "hostname", "healthcheck", "image", "init", "isolation",
    "labels", "logging", "networks", "oom_score_adj", "ports", "read_only", "secrets",
    "stdin_open", "stop_grace_period", "stop_signal", "sysctls", "tty", "ulimits", "user",
    "volumes", "working_dir",
]
_DEPLOY_ORDER = ["mode", "replicas", "labels", "update_config", "rollback_config", "resources",
                 "restart_policy", "placement", "endpoint_mode"]
_UPDATE_ORDER = ["parallelism", "delay", "failure_action", "monitor", "max_failure_ratio", "order"]
_HEALTH_ORDER = ["test", "timeout", "interval", "retries", "start_period", "start_interval",
                 "disable"]
_DURATIONS = {"delay", "monitor", "window", "timeout", "interval", "start_period",
              "start_interval", "stop_grace_period"}
_INDICATORS = set("-?:,[]{}#&*!|>'\"%@`")
_NOT_STRINGS = re.compile(
    r"^(?:[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|[-+]?\.[0-9]+|0x[0-9a-fA-F]+|0o?[0-7]+"
    r"|true|false|True|False|TRUE|FALSE|yes|no|Yes|No|YES|NO|on|off|On|Off|ON|OFF|y|n|Y|N"
    r"|null|Null|NULL|~|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


def _ordered(value: dict[str, Any], order: list[str]) -> dict[str, Any]:
    return {k: value[k] for k in order if k in value}


def _durations(value: dict[str, Any]) -> dict[str, Any]:
    return {k: units.format_duration(v) if k in _DURATIONS else v for k, v in value.items()}


def _cpus(nanos: int) -> str:
    text = f"{nanos / 1e9:.9f}".rstrip("0").rstrip(".")
    return text or "0"


def _deploy(deploy: dict[str, Any]) -> dict[str, Any]:
    out = _ordered(deploy, _DEPLOY_ORDER)
    if "labels" in out:
        out["labels"] = _sorted(out["labels"])
    for key in ("update_config", "rollback_config"):
        if key in out:
            out[key] = _durations(_ordered(out[key], _UPDATE_ORDER))
    if "restart_policy" in out:
        out["restart_policy"] = _durations(
            _ordered(out["restart_policy"], ["condition", "delay", "max_attempts", "window"]))
    if "resources" in out:
        out["resources"] = {
            key: {**({"cpus": _cpus(res["cpus"])} if "cpus" in res else {}),
                  **({"memory": str(res["memory"])} if "memory" in res else {}),
                  **({"pids": res["pids"]} if "pids" in res else {})}
            for key, res in out["resources"].items()
        }
    if "placement" in out:
        placement = dict(out["placement"])
        if "preferences" in placement:
            placement["preferences"] = [{"spread": s} for s in placement["preferences"]]
        out["placement"] = _ordered(placement,
                                    ["constraints", "preferences", "max_replicas_per_node"])
    return out


def _volume(vol: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": vol["type"]}
    if vol.get("source"):
        out["source"] = vol["source"]
    out["target"] = vol["target"]
    if vol.get("read_only"):
        out["read_only"] = True
    if vol.get("propagation"):
        out["bind"] = {"propagation": vol["propagation"]}
    if vol.get("nocopy"):
        out["volume"] = {"nocopy": True}
    if vol.get("tmpfs_size"):
        out["tmpfs"] = {"size": vol["tmpfs_size"]}
    return out


def _service(svc: dict[str, Any]) -> dict[str, Any]:
    out = _durations(_ordered(svc, _SERVICE_ORDER))
    if "deploy" in out:
        out["deploy"] = _deploy(out["deploy"])
    if "healthcheck" in out:
        out["healthcheck"] = _durations(_ordered(out["healthcheck"], _HEALTH_ORDER))
    if "ports" in out:
        out["ports"] = [
            {k: p[k] for k in ("mode", "target", "published", "protocol") if p.get(k)}
            for p in out["ports"]
        ]
    if "networks" in out:
        out["networks"] = {name: (conf or None) for name, conf in _sorted(out["networks"]).items()}
    if "volumes" in out:
        out["volumes"] = [_volume(v) for v in out["volumes"]]
    for key in ("environment", "labels", "sysctls", "ulimits"):
        if key in out:
            out[key] = _sorted(out[key])
    if "logging" in out and "options" in out["logging"]:
        out["logging"] = {**out["logging"], "options": _sorted(out["logging"]["options"])}
    return out


def _top(objects: dict[str, dict[str, Any]], order: list[str]) -> dict[str, Any]:
    out = {}
    for key in sorted(objects):
        obj = objects[key]
        item: dict[str, Any] = {}
        for k in order:
            if not obj.get(k):
                continue
            if k == "subnets":
                item["ipam"] = {"config": [{"subnet": s} for s in obj[k]]}
            elif isinstance(obj[k], dict):
                item[k] = _sorted(obj[k])
            else:
                item[k] = obj[k]
        out[key] = item
    return out


def _sorted(value: dict[str, Any]) -> dict[str, Any]:
    """A Go map: yaml.v3 writes its keys sorted."""
    return {k: value[k] for k in sorted(value)}


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if text == "" or _NOT_STRINGS.match(text) or not text.isprintable():
        return json.dumps(text, ensure_ascii=False)  # yaml.v3: double quotes
    first = text[0] in _INDICATORS and (text[0] not in "-?:" or text[1:2] in ("", " "))
    if not first and text.strip() == text and ": " not in text \
            and " #" not in text and not text.endswith(":"):
        return text
    return "'" + text.replace("'", "''") + "'"


def _emit(value: Any, indent: int, lines: list[str]) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            name = _scalar(key)
            if isinstance(item, dict) and item or isinstance(item, list) and item:
                lines.append(f"{pad}{name}:")
                _emit(item, indent + 2, lines)
            elif isinstance(item, dict):
                lines.append(f"{pad}{name}: {{}}")
            elif isinstance(item, list):
                lines.append(f"{pad}{name}: []")
            else:
                lines.append(f"{pad}{name}: {_scalar(item)}")
        return
    for item in value:
        if isinstance(item, (dict, list)) and item:
            sub: list[str] = []
            _emit(item, indent + 2, sub)
            sub[0] = f"{pad}- " + sub[0][indent + 2:]
            lines.extend(sub)
        else:
            lines.append(f"{pad}- {_scalar(item) if not isinstance(item, (dict, list)) else '{}'}")


def dump(config: Config) -> str:
    """``docker stack config``'s output for `config`."""
    doc: dict[str, Any] = {"version": config.version}
    doc["services"] = {key: _service(config.services[key]) for key in sorted(config.services)}
    if config.networks:
        doc["networks"] = _top(config.networks, ["name", "driver", "driver_opts", "subnets",
                                                 "external", "internal", "attachable", "labels"])
    if config.volumes:
        doc["volumes"] = _top(config.volumes, ["name", "external", "labels"])
    for kind in ("secrets", "configs"):
        objects = getattr(config, kind)
        if objects:
            doc[kind] = _top(objects, ["name", "file", "external", "labels"])
    lines: list[str] = []
    _emit(doc, 0, lines)
    return "\n".join(lines) + "\n"
