"""Parsers for the structured ``service create/update`` flag values, in docker's syntax:
``--publish`` (``8080:80/udp`` or ``mode=host,target=80,published=8080``), ``--network``,
``--placement-pref`` and ``--env-file`` (``--mount`` is in `shoal.cli.service.mounts`).
Each returns API JSON (dicts).
"""

from __future__ import annotations

import csv
import re
from typing import Any

from shoal.cli.flagtypes import GoValue, validate_env
from shoal.cli.format import units

__all__ = [
    "CONFIG",
    "NETWORK",
    "PLACEMENT_PREF",
    "PORTS",
    "SECRET",
    "csv_fields",
    "parse_network",
    "parse_placement_pref",
    "parse_ports",
    "parse_reference",
    "read_env_files",
]

_LONG_SYNTAX = re.compile(r"\w+=\w+(,\w+=\w+)*")
_PROTOCOLS = ("tcp", "udp", "sctp")


def csv_fields(value: str) -> list[str]:
    try:
        return next(csv.reader([value]))
    except (csv.Error, StopIteration) as exc:
        raise ValueError(str(exc)) from exc


def _port_range(text: str) -> tuple[int, int]:
    if text == "":
        raise ValueError("empty string specified for ports.")
    if "-" not in text:
        port = units.parse_uint(text, 16, base=10)
        return port, port
    start_text, _, end_text = text.partition("-")
    start = units.parse_uint(start_text, 16, base=10)
    end = units.parse_uint(end_text, 16, base=10)
    if end < start:
        raise ValueError(f"invalid range specified for port: {text}")
    return start, end


def _long_port(value: str) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for field in csv_fields(value):
        key, sep, val = field.lower().partition("=")
        if not sep or not key:
            raise ValueError(f"invalid field: {field}")
        if key == "protocol":
            if val not in _PROTOCOLS:
                raise ValueError(f"invalid protocol value '{val}'")
            config["Protocol"] = val
        elif key == "mode":
            if val not in ("ingress", "host"):
                raise ValueError(
                    f"invalid publish mode value ({val}): must be either 'ingress' or 'host'"
                )
            config["PublishMode"] = val
        elif key in ("target", "published"):
            try:
                port = units.parse_uint(val, 16, base=10)
            except ValueError as exc:
                reason = "value out of range" if "range" in str(exc) else "invalid syntax"
                what = "target" if key == "target" else "published"
                raise ValueError(
                    f"invalid {what} port ({val}): value must be an integer: {reason}"
                ) from exc
            config["TargetPort" if key == "target" else "PublishedPort"] = port
        else:
            raise ValueError(f"invalid field key: {key}")
    if not config.get("TargetPort"):
        raise ValueError("missing mandatory field 'target'")
    ordered = {"Protocol": config.get("Protocol", "tcp"), "TargetPort": config["TargetPort"]}
    if config.get("PublishedPort"):
        ordered["PublishedPort"] = config["PublishedPort"]
    ordered["PublishMode"] = config.get("PublishMode", "ingress")
    return ordered


def _short_ports(value: str) -> list[dict[str, Any]]:
    parts = value.split(":")
    container = parts[-1]
    host = parts[-2] if len(parts) >= 2 else ""
    ip = ":".join(parts[:-2]) if len(parts) >= 3 else ""
    proto_parts = container.split("/")
    if not container or not proto_parts[0]:
        proto, container = "", ""
    elif len(proto_parts) == 1 or not proto_parts[1]:
        proto, container = "tcp", proto_parts[0]
    else:
        proto, container = proto_parts[1], proto_parts[0]
    if ip.startswith("["):
        ip = ip.strip("[]")
    if container == "":
        raise ValueError(f"no port specified: {value}<empty>")
    try:
        start, end = _port_range(container)
    except ValueError:
        raise ValueError(f"invalid containerPort: {container}") from None
    host_start = host_end = 0
    if host:
        try:
            host_start, host_end = _port_range(host)
        except ValueError:
            raise ValueError(f"invalid hostPort: {host}") from None
        if end - start != host_end - host_start and end != start:
            raise ValueError(
                f"invalid ranges specified for container and host Ports: {container} and {host}"
            )
    if proto.lower() not in _PROTOCOLS:
        raise ValueError(f"invalid proto: {proto}")
    if ip:
        raise ValueError("hostip is not supported")
    configs = []
    for offset in range(end - start + 1):
        if not host:
            published = [0]
        elif end - start == host_end - host_start:
            published = [host_start + offset]
        else:  # one container port, a range of published ports
            published = list(range(host_start, host_end + 1))
        for port in published:
            config: dict[str, Any] = {"Protocol": proto.lower(), "TargetPort": start + offset}
            if port:
                config["PublishedPort"] = port
            config["PublishMode"] = "ingress"
            configs.append(config)
    return configs


def parse_ports(value: str) -> list[dict[str, Any]]:
    """docker's ``PortOpt.Set``: one ``--publish`` value -> PortConfig list."""
    if _LONG_SYNTAX.search(value):
        return [_long_port(value)]
    return _short_ports(value)


def parse_network(value: str) -> dict[str, Any]:
    """docker's ``NetworkOpt.Set``: ``mynet`` or ``name=mynet,alias=web,driver-opt=k=v``."""
    if not _LONG_SYNTAX.search(value):
        return {"Target": value}
    attachment: dict[str, Any] = {"Target": "", "Aliases": []}
    for field in csv_fields(value):
        key, sep, val = field.lower().partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"invalid field {field}")
        if key == "name":
            attachment["Target"] = val
        elif key == "alias":
            attachment["Aliases"].append(val)
        elif key == "driver-opt":
            opt_key, opt_sep, opt_value = val.partition("=")
            if not opt_sep or not opt_key:
                raise ValueError("invalid key value pair format in driver options")
            attachment.setdefault("DriverOpts", {})[opt_key.strip().lower()] = (
                opt_value.strip().lower()
            )
        elif key not in ("ip", "ip6", "mac-address", "link-local-ip", "gw-priority"):
            raise ValueError(f"invalid field key {key}")
    if not attachment["Target"]:
        raise ValueError("network name/id is not specified")
    if not attachment["Aliases"]:
        del attachment["Aliases"]
    return attachment


def parse_placement_pref(value: str) -> dict[str, Any]:
    """``spread=node.labels.zone`` -> ``{"Spread": {"SpreadDescriptor": ...}}``."""
    strategy, sep, arg = value.partition("=")
    if not sep or not strategy:
        raise ValueError('placement preference must be of the format "<strategy>=<arg>"')
    if strategy != "spread":
        raise ValueError(f"unsupported placement preference {strategy} (only spread is supported)")
    return {"Spread": {"SpreadDescriptor": arg}}


def parse_reference(kind: str, value: str) -> dict[str, Any]:
    """docker's ``SecretOpt.Set``/``ConfigOpt.Set`` (`kind` ``secret`` or ``config``): ``name``
    or ``source=name,target=path,uid=0,gid=0,mode=0444``; the target defaults to the name (the
    daemon puts a relative secret under /run/secrets/, a relative config under /)."""
    fields = csv_fields(value)
    ref: dict[str, Any] = {"File": {"Name": "", "UID": "0", "GID": "0", "Mode": 0o444}}
    name_key = f"{kind.capitalize()}Name"
    if len(fields) == 1 and "=" not in fields[0]:
        ref["File"]["Name"] = ref[name_key] = fields[0]
        return ref
    ref[name_key] = ""
    for field in fields:
        key, sep, val = field.partition("=")
        if not sep or not key:
            raise ValueError(f"invalid field '{field}' must be a key=value pair")
        key = key.lower()
        if key in ("source", "src"):
            ref[name_key] = val
        elif key == "target":
            ref["File"]["Name"] = val
        elif key in ("uid", "gid"):
            ref["File"][key.upper()] = val
        elif key == "mode":
            try:
                ref["File"]["Mode"] = units.parse_uint(val, 32)
            except ValueError as exc:
                raise ValueError(f"invalid mode specified: {exc}") from exc
        else:
            raise ValueError(f"invalid field in {kind} request: {key}")
    if not ref[name_key]:
        raise ValueError("source is required")
    ref["File"]["Name"] = ref["File"]["Name"] or ref[name_key]
    return ref


def read_env_files(paths: list[str]) -> list[str]:
    """docker's env-file reader: ``KEY=VALUE`` lines, comments and blank lines skipped."""
    out: list[str] = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except OSError as exc:
            raise ValueError(
                f"open {path}: {exc.strerror.lower() if exc.strerror else exc}"
            ) from exc
        for line in lines:
            stripped = line.lstrip()
            if not stripped or stripped.startswith("#"):
                continue
            out.append(validate_env(stripped))
    return out


PORTS = GoValue("port", parse_ports)
NETWORK = GoValue("network", parse_network)
PLACEMENT_PREF = GoValue("pref", parse_placement_pref)
SECRET = GoValue("secret", lambda value: parse_reference("secret", value))
CONFIG = GoValue("config", lambda value: parse_reference("config", value))
