"""Load compose files as docker's ``cli/compose/loader`` does: YAML (safe), interpolation
from the environment, a check of every key (docker's schema errors for unknown keys, a
one-line refusal naming the file and key path for keys shoal cannot honour), the per-file
normalisation docker's ``loadSections`` does, then the merge of several files in order.

The result is a `Config`: plain dicts in one normal form, which `convert` maps to API specs.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from shoal.cli.compose import svcoptions
from shoal.cli.compose.interpolate import InterpolationError, interpolate
from shoal.cli.errors import CliError
from shoal.cli.format import units

__all__ = ["Config", "ConfigFile", "load", "parse_yaml"]

UNSUPPORTED = "not supported by shoal stack deploy"
LATEST_VERSION = "3.13"

# The service keys docker's v3 schema knows; those not in `_SERVICE` are refused by name.
_DOCKER_SERVICE_KEYS = {
    "build", "cap_add", "cap_drop", "cgroup_parent", "cgroupns_mode", "command", "configs",
    "container_name", "credential_spec", "depends_on", "deploy", "devices", "dns", "dns_search",
    "domainname", "entrypoint", "env_file", "environment", "expose", "external_links",
    "extra_hosts", "healthcheck", "hostname", "image", "init", "ipc", "isolation", "labels",
    "links", "logging", "mac_address", "network_mode", "networks", "oom_score_adj", "pid",
    "ports", "privileged", "read_only", "restart", "secrets", "security_opt", "shm_size",
    "stdin_open", "stop_grace_period", "stop_signal", "sysctls", "tmpfs", "tty", "ulimits",
    "user", "userns_mode", "volumes", "working_dir",
    # not in the schema but named by docker's "unsupported options" error
    "extends", "volume_driver", "volumes_from", "cpu_quota", "cpu_shares", "cpuset",
    "mem_limit", "memswap_limit",
}


class _Loader(yaml.SafeLoader):  # type: ignore[misc]
    """PyYAML's safe loader without YAML 1.1's base-60 numbers (``5000:50`` stays a string,
    as in docker's Go YAML)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:int",
                                                              "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"""^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"""),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.VERBOSE),
    list("-+0123456789."),
)


@dataclass
class ConfigFile:
    """One ``-c`` file: its name as given and its text."""

    filename: str
    text: str


@dataclass
class Config:
    """The merged, normalised compose model."""

    version: str = LATEST_VERSION
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


MAX_EXPANDED_NODES = 1_000_000  # a file's nodes with every alias expanded (billion laughs)


class _Recursive(Exception):
    pass


def _expanded_size(root: yaml.Node) -> int:
    """How many nodes the document has once its aliases are expanded, counted without
    expanding them (each node's size once, children first); _Recursive if a node contains
    itself."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if isinstance(node, yaml.MappingNode):
            kids = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            kids = list(node.value)
        else:
            kids = []
        if children_done:
            visiting.discard(id(node))
            size = 1 + sum(sizes[id(k)] for k in kids)
            sizes[id(node)] = min(size, MAX_EXPANDED_NODES + 1)
            continue
        if id(node) in sizes:
            continue
        if id(node) in visiting:
            raise _Recursive
        visiting.add(id(node))
        stack.append((node, True))
        for kid in kids:
            if id(kid) in visiting:
                raise _Recursive
            if id(kid) not in sizes:
                stack.append((kid, False))
    return sizes[id(root)]


def parse_yaml(filename: str, text: str) -> dict[str, Any]:
    """The file's top-level mapping; YAML errors name the file and the line."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            try:
                if node is not None and _expanded_size(node) > MAX_EXPANDED_NODES:
                    raise CliError(f"{filename}: yaml: document contains excessive aliasing")
            except _Recursive:
                raise CliError(f"{filename}: yaml: an anchor's value contains itself") from None
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]  # a ReaderError: 2 lines
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise CliError(f"{filename}: yaml: {where}{problem}") from exc
    except RecursionError:  # PyYAML's parser recurses once per nesting level
        raise CliError(f"{filename}: yaml: document nested too deeply") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CliError(f"{filename}: Top-level object must be a mapping")
    return data


def load(
    files: list[ConfigFile],
    *,
    env: Mapping[str, str] | None = None,
    working_dir: str = ".",
    interpolation: bool = True,
) -> Config:
    """Load, check and merge `files` in order (later files override earlier ones)."""
    environ = dict(os.environ if env is None else env)
    if not files:
        raise CliError("Please specify a Compose file (with --compose-file).")
    merged = Config()
    version = None
    for index, config_file in enumerate(files):
        raw = parse_yaml(config_file.filename, config_file.text)
        file_version = _version(config_file.filename, raw)
        if version is not None and file_version != version:
            raise CliError(
                f"version mismatched between two composefiles : {version} and {file_version}"
            )
        version = file_version
        try:
            raw = interpolate(raw, environ) if interpolation else raw
        except InterpolationError as exc:
            raise CliError(f"{config_file.filename}: {exc}") from exc
        loaded = _FileLoader(config_file.filename, environ, working_dir).load(raw)
        loaded.version = file_version
        merged = loaded if index == 0 else _merge(merged, loaded)
    return merged


def _version(filename: str, raw: dict[str, Any]) -> str:
    version = raw.get("version")
    if version is None:
        return LATEST_VERSION
    text = str(version)
    if text == "3":
        return LATEST_VERSION
    match = re.fullmatch(r"3\.(\d+)", text)
    if match is None or int(match.group(1)) > int(LATEST_VERSION.split(".")[1]):
        raise CliError(f"{filename}: unsupported Compose file version: {text}")
    return text


# -- checking and normalising one file -------------------------------------------------------


class _FileLoader:
    def __init__(self, filename: str, env: dict[str, str], working_dir: str) -> None:
        self.filename, self.env, self.working_dir = filename, env, working_dir
        self.warnings: list[str] = []

    # errors

    def fail(self, path: str, message: str) -> CliError:
        # docker's schema errors read "services.web.replicas must be a integer"
        schema = message.startswith(("must be a", "Additional property"))
        return CliError(f"{self.filename}: {path}{' ' if schema else ': '}{message}")

    def unsupported(self, path: str) -> CliError:
        return self.fail(path, UNSUPPORTED)

    def keys(self, path: str, value: dict[str, Any], allowed: set[str],
             known: set[str] | frozenset[str] = frozenset(), *, extensions: bool = True) -> None:
        """Refuse keys outside `allowed`: unsupported by name if docker knows them."""
        for key in value:
            key_text = str(key)
            if key_text in allowed or (extensions and key_text.startswith("x-")):
                continue
            if key_text in known:
                raise self.unsupported(f"{path}.{key_text}" if path else key_text)
            where = path or "(root)"
            raise self.fail(where, f"Additional property {key_text} is not allowed")

    # types

    def mapping(self, path: str, value: Any, *, allow_none: bool = True) -> dict[str, Any]:
        if value is None and allow_none:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, "must be a mapping")
        return value

    def string(self, path: str, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.fail(path, "must be a string")
        return str(value)

    def integer(self, path: str, value: Any) -> int:
        if isinstance(value, bool):
            raise self.fail(path, "must be a integer")
        if isinstance(value, str) and re.fullmatch(r"[-+]?\d+", value.strip()):
            value = int(value)
        if isinstance(value, int):
            if not -(2**63) <= value < 2**64:  # Go's int64 and uint64 fields
                raise self.fail(path, "must be a integer within 64 bits")
            return value
        raise self.fail(path, "must be a integer")

    def number(self, path: str, value: Any) -> float:
        if isinstance(value, bool):
            raise self.fail(path, "must be a number")
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return float(str(value))
        except ValueError:
            raise self.fail(path, "must be a number") from None

    def boolean(self, path: str, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off",
                                                        "y", "n", "1", "0"):
            return value.lower() in ("true", "yes", "on", "y", "1")
        raise self.fail(path, "must be a boolean")

    def duration(self, path: str, value: Any) -> int:
        text = self.string(path, value)
        try:
            return units.parse_duration(text)
        except ValueError as exc:
            raise self.fail(path, f"invalid duration {text!r}: {exc}") from None

    def strings(self, path: str, value: Any) -> list[str]:
        if not isinstance(value, list):
            raise self.fail(path, "must be a array")
        return [self.string(path, item) for item in value]

    def string_or_list(self, path: str, value: Any) -> list[str]:
        if isinstance(value, str):
            return [value]
        return self.strings(path, value)

    def shell(self, path: str, value: Any) -> list[str]:
        if isinstance(value, str):
            try:
                return shlex.split(value)
            except ValueError as exc:
                raise self.fail(path, str(exc)) from None
        return self.strings(path, value)

    def dict_or_list(self, path: str, value: Any, sep: str = "=") -> dict[str, str | None]:
        """A ``{k: v}`` mapping or a ``["k=v", "k"]`` list (labels, environment)."""
        if value is None:
            return {}
        if isinstance(value, list):
            out: dict[str, str | None] = {}
            for item in self.strings(path, value):
                key, found, val = item.partition(sep)
                out[key] = val if found else None
            return out
        mapping = self.mapping(path, value)
        return {
            str(k): None if v is None else self.string(f"{path}.{k}", v) for k, v in mapping.items()
        }

    def labels(self, path: str, value: Any) -> dict[str, str]:
        return {k: v or "" for k, v in self.dict_or_list(path, value).items()}

    def path(self, text: str) -> str:
        if text.startswith("~"):
            text = os.path.expanduser(text)
        return os.path.normpath(os.path.join(self.working_dir, text))

    # the file

    def load(self, raw: dict[str, Any]) -> Config:
        self.keys("", raw, {"version", "services", "networks", "volumes", "secrets", "configs"})
        config = Config()
        for name, svc in self.mapping("services", raw.get("services")).items():
            config.services[str(name)] = self.service(f"services.{name}", svc)
        for name, net in self.mapping("networks", raw.get("networks")).items():
            config.networks[str(name)] = self.network(f"networks.{name}", str(name), net)
        for name, vol in self.mapping("volumes", raw.get("volumes")).items():
            config.volumes[str(name)] = self.volume(f"volumes.{name}", str(name), vol)
        for kind in ("secrets", "configs"):
            target = config.secrets if kind == "secrets" else config.configs
            for name, obj in self.mapping(kind, raw.get(kind)).items():
                target[str(name)] = self.file_object(f"{kind}.{name}", kind, str(name), obj)
        config.warnings = self.warnings
        return config

    # services

    _SERVICE: ClassVar[set[str]] = {
        "image", "command", "entrypoint", "environment", "env_file", "labels", "deploy", "ports",
        "networks", "healthcheck", "secrets", "configs", "hostname", "user", "working_dir",
        "stop_grace_period", "stop_signal", "tty", "read_only", "volumes", "depends_on",
        "cap_add", "cap_drop", *svcoptions.KEYS,
    }

    def service(self, path: str, value: Any) -> dict[str, Any]:
        raw = self.mapping(path, value)
        self.keys(path, raw, self._SERVICE, _DOCKER_SERVICE_KEYS)
        out: dict[str, Any] = {}
        simple: dict[str, Callable[[str, Any], Any]] = {
            "image": self.string, "hostname": self.string, "user": self.string,
            "working_dir": self.string, "stop_signal": self.string, "tty": self.boolean,
            "read_only": self.boolean, "stop_grace_period": self.duration,
            "command": self.shell, "entrypoint": self.shell,
        }
        for key, check in simple.items():
            if key in raw and raw[key] is not None:
                out[key] = check(f"{path}.{key}", raw[key])
        for key in ("cap_add", "cap_drop"):
            if raw.get(key) is not None:
                out[key] = self.strings(f"{path}.{key}", raw[key])
        out.update(svcoptions.load(self, path, raw))
        if "depends_on" in raw:  # kept for `stack config`; deploy cannot honour it: said aloud
            out["depends_on"] = self.strings(f"{path}.depends_on", raw["depends_on"])
            self.warnings.append(f"{self.filename}: {path}.depends_on: ignored: a swarm starts "
                                 "services in no order")
        env: dict[str, str | None] = {}
        if raw.get("env_file") is not None:
            for name in self.string_or_list(f"{path}.env_file", raw["env_file"]):
                env.update(self.env_file(f"{path}.env_file", name))
        for key, val in self.dict_or_list(f"{path}.environment", raw.get("environment")).items():
            env[key] = val if val is not None else self.env.get(key)
        if "environment" in raw or "env_file" in raw:
            out["environment"] = env
        if "labels" in raw:
            out["labels"] = self.labels(f"{path}.labels", raw["labels"])
        if "deploy" in raw:
            out["deploy"] = self.deploy(f"{path}.deploy", raw["deploy"])
        if "ports" in raw:
            out["ports"] = [
                port
                for item in self.array(f"{path}.ports", raw["ports"])
                for port in self.ports(f"{path}.ports", item)
            ]
        if "networks" in raw:
            out["networks"] = self.service_networks(f"{path}.networks", raw["networks"])
        if "healthcheck" in raw:
            out["healthcheck"] = self.healthcheck(f"{path}.healthcheck", raw["healthcheck"])
        for kind in ("secrets", "configs"):
            if kind in raw:
                out[kind] = [
                    self.file_reference(f"{path}.{kind}", item)
                    for item in self.array(f"{path}.{kind}", raw[kind])
                ]
        if "volumes" in raw:
            out["volumes"] = [
                self.service_volume(f"{path}.volumes", item)
                for item in self.array(f"{path}.volumes", raw["volumes"])
            ]
        return out

    def array(self, path: str, value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, "must be a array")
        return value

    def env_file(self, path: str, name: str) -> dict[str, str | None]:
        filename = self.path(name)
        try:
            text = Path(filename).read_text(errors="replace")  # Go keeps the bytes
        except OSError as exc:
            raise self.fail(path, f"open {filename}: {(exc.strerror or str(exc)).lower()}") from None
        out: dict[str, str | None] = {}
        for line in text.splitlines():
            line = line.lstrip()
            if not line or line.startswith("#"):
                continue
            key, found, val = line.partition("=")
            if any(c.isspace() for c in key):
                raise self.fail(path, f"variable '{key}' contains whitespaces")
            if found:
                out[key] = val
            elif key in self.env:
                out[key] = self.env[key]
        return out

    def deploy(self, path: str, value: Any) -> dict[str, Any]:
        raw = self.mapping(path, value)
        self.keys(path, raw, {"mode", "replicas", "labels", "placement", "resources",
                              "restart_policy", "update_config", "rollback_config",
                              "endpoint_mode"})
        out: dict[str, Any] = {}
        for key in ("mode", "endpoint_mode"):
            if raw.get(key) is not None:
                out[key] = self.string(f"{path}.{key}", raw[key])
        if raw.get("replicas") is not None:
            out["replicas"] = self.integer(f"{path}.replicas", raw["replicas"])
        if "labels" in raw:
            out["labels"] = self.labels(f"{path}.labels", raw["labels"])
        if raw.get("placement") is not None:
            out["placement"] = self.placement(f"{path}.placement", raw["placement"])
        if raw.get("resources") is not None:
            res = self.mapping(f"{path}.resources", raw["resources"])
            self.keys(f"{path}.resources", res, {"limits", "reservations"})
            out["resources"] = {
                key: self.resource(f"{path}.resources.{key}", res[key])
                for key in ("limits", "reservations")
                if key in res
            }
        if raw.get("restart_policy") is not None:
            out["restart_policy"] = self.restart_policy(f"{path}.restart_policy",
                                                        raw["restart_policy"])
        for key in ("update_config", "rollback_config"):
            if raw.get(key) is not None:
                out[key] = self.update_config(f"{path}.{key}", raw[key])
        return out

    def placement(self, path: str, value: Any) -> dict[str, Any]:
        raw = self.mapping(path, value)
        self.keys(path, raw, {"constraints", "preferences", "max_replicas_per_node"})
        out: dict[str, Any] = {}
        if raw.get("constraints") is not None:
            out["constraints"] = self.strings(f"{path}.constraints", raw["constraints"])
        if raw.get("preferences") is not None:
            prefs = []
            for item in self.array(f"{path}.preferences", raw["preferences"]):
                pref = self.mapping(f"{path}.preferences", item, allow_none=False)
                self.keys(f"{path}.preferences", pref, {"spread"})
                prefs.append(self.string(f"{path}.preferences.spread", pref.get("spread", "")))
            out["preferences"] = prefs
        if raw.get("max_replicas_per_node") is not None:
            out["max_replicas_per_node"] = self.integer(f"{path}.max_replicas_per_node",
                                                        raw["max_replicas_per_node"])
        return out

    def resource(self, path: str, value: Any) -> dict[str, Any]:
        raw = self.mapping(path, value)
        limits = path.endswith(".limits")  # pids (3.9) is a limit only
        self.keys(path, raw, {"cpus", "memory", *(["pids"] if limits else [])},
                  {"pids", "generic_resources", "devices"})
        out: dict[str, Any] = {}
        if limits and raw.get("pids") is not None:
            out["pids"] = self.integer(f"{path}.pids", raw["pids"])
        if raw.get("cpus") is not None:
            text = self.string(f"{path}.cpus", raw["cpus"])
            try:
                out["cpus"] = units.parse_cpus(text)
            except ValueError as exc:
                raise self.fail(f"{path}.cpus", str(exc)) from None
        if raw.get("memory") is not None:
            mem = raw["memory"]
            if isinstance(mem, int) and not isinstance(mem, bool):
                out["memory"] = mem
            else:
                try:
                    out["memory"] = units.ram_in_bytes(self.string(f"{path}.memory", mem))
                except ValueError as exc:
                    raise self.fail(f"{path}.memory", str(exc)) from None
        return out

    def restart_policy(self, path: str, value: Any) -> dict[str, Any]:
        raw = self.mapping(path, value)
        self.keys(path, raw, {"condition", "delay", "max_attempts", "window"})
        out: dict[str, Any] = {}
        if raw.get("condition") is not None:
            out["condition"] = self.string(f"{path}.condition", raw["condition"])
        for key in ("delay", "window"):
            if raw.get(key) is not None:
                out[key] = self.duration(f"{path}.{key}", raw[key])
        if raw.get("max_attempts") is not None:
            out["max_attempts"] = self.integer(f"{path}.max_attempts", raw["max_attempts"])
        return out

    def update_config(self, path: str, value: Any) -> dict[str, Any]:
        raw = self.mapping(path, value)
        self.keys(path, raw, {"parallelism", "delay", "failure_action", "monitor",
                              "max_failure_ratio", "order"})
        out: dict[str, Any] = {}
        if raw.get("parallelism") is not None:
            out["parallelism"] = self.integer(f"{path}.parallelism", raw["parallelism"])
        for key in ("delay", "monitor"):
            if raw.get(key) is not None:
                out[key] = self.duration(f"{path}.{key}", raw[key])
        for key in ("failure_action", "order"):
            if raw.get(key) is not None:
                out[key] = self.string(f"{path}.{key}", raw[key])
        if raw.get("max_failure_ratio") is not None:
            out["max_failure_ratio"] = self.number(f"{path}.max_failure_ratio",
                                                   raw["max_failure_ratio"])
        return out

    def ports(self, path: str, value: Any) -> list[dict[str, Any]]:
        if isinstance(value, dict):
            self.keys(path, value, {"target", "published", "protocol", "mode"})
            if value.get("target") is None:
                raise self.fail(path, "target is required")
            port: dict[str, Any] = {
                "target": self.integer(f"{path}.target", value["target"]),
                "published": 0,
                "protocol": "",
                "mode": "",
            }
            if value.get("published") is not None:
                port["published"] = self.integer(f"{path}.published", value["published"])
            for key in ("protocol", "mode"):
                if value.get(key) is not None:
                    port[key] = self.string(f"{path}.{key}", value[key])
            return [port]
        spec = self.string(path, value)
        try:
            return parse_port_spec(spec, self.warnings)
        except ValueError as exc:
            raise self.fail(path, str(exc)) from None

    def service_networks(self, path: str, value: Any) -> dict[str, dict[str, Any]]:
        if isinstance(value, list):
            return {name: {} for name in self.strings(path, value)}
        out: dict[str, dict[str, Any]] = {}
        for name, conf in self.mapping(path, value).items():
            where = f"{path}.{name}"
            raw = self.mapping(where, conf)
            self.keys(where, raw, {"aliases"}, {"ipv4_address", "ipv6_address", "driver_opts"})
            out[str(name)] = {}
            if raw.get("aliases") is not None:
                out[str(name)]["aliases"] = self.strings(f"{where}.aliases", raw["aliases"])
        return out

    def healthcheck(self, path: str, value: Any) -> dict[str, Any]:
        raw = self.mapping(path, value)
        self.keys(path, raw, {"test", "interval", "timeout", "retries", "start_period",
                              "start_interval", "disable"})
        out: dict[str, Any] = {}
        if raw.get("test") is not None:
            test = raw["test"]
            out["test"] = (["CMD-SHELL", test] if isinstance(test, str)
                           else self.strings(f"{path}.test", test))
        for key in ("interval", "timeout", "start_period", "start_interval"):
            if raw.get(key) is not None:
                out[key] = self.duration(f"{path}.{key}", raw[key])
        if raw.get("retries") is not None:
            out["retries"] = self.integer(f"{path}.retries", raw["retries"])
        if raw.get("disable") is not None:
            out["disable"] = self.boolean(f"{path}.disable", raw["disable"])
        return out

    def file_reference(self, path: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            return {"source": self.string(path, value)}
        self.keys(path, value, {"source", "target", "uid", "gid", "mode"})
        if value.get("source") is None:
            raise self.fail(path, "source is required")
        out: dict[str, Any] = {"source": self.string(f"{path}.source", value["source"])}
        for key in ("target", "uid", "gid"):
            if value.get(key) is not None:
                out[key] = self.string(f"{path}.{key}", value[key])
        if value.get("mode") is not None:
            out["mode"] = self.integer(f"{path}.mode", value["mode"])
        return out

    def service_volume(self, path: str, value: Any) -> dict[str, Any]:
        if isinstance(value, dict):
            self.keys(path, value, {"type", "source", "target", "read_only", "volume", "bind",
                                    "tmpfs"}, {"consistency"})
            out: dict[str, Any] = {
                "type": self.string(f"{path}.type", value.get("type", "")),
                "source": self.string(f"{path}.source", value.get("source") or ""),
                "target": self.string(f"{path}.target", value.get("target") or ""),
            }
            if out["type"] not in ("volume", "bind", "tmpfs"):
                raise self.fail(f"{path}.type", f"{out['type']!r}: {UNSUPPORTED}")
            if value.get("read_only") is not None:
                out["read_only"] = self.boolean(f"{path}.read_only", value["read_only"])
            for kind, allowed in (("volume", {"nocopy"}), ("bind", {"propagation"}),
                                  ("tmpfs", {"size"})):
                if value.get(kind) is None:
                    continue
                opts = self.mapping(f"{path}.{kind}", value[kind])
                self.keys(f"{path}.{kind}", opts, allowed,
                          {"subpath", "create_host_path", "selinux", "mode"})
                if kind != out["type"]:
                    raise self.fail(path, f"{kind} options are incompatible with type "
                                          f"{out['type']}")
                if "nocopy" in opts:
                    out["nocopy"] = self.boolean(f"{path}.volume.nocopy", opts["nocopy"])
                if "propagation" in opts:
                    out["propagation"] = self.string(f"{path}.bind.propagation",
                                                     opts["propagation"])
                if "size" in opts:
                    size = opts["size"]
                    out["tmpfs_size"] = (size if isinstance(size, int)
                                         else units.ram_in_bytes(self.string(path, size)))
            if out["type"] == "bind" and out["source"]:
                out["source"] = self.path(out["source"])
            return out
        return self.short_volume(path, self.string(path, value))

    def short_volume(self, path: str, spec: str) -> dict[str, Any]:
        parts = spec.split(":")
        if len(parts) > 3 or not all(parts):
            raise self.fail(path, f"invalid spec: {spec}")
        if len(parts) == 1:
            return {"type": "volume", "source": "", "target": parts[0]}
        out: dict[str, Any] = {"source": parts[0], "target": parts[1]}
        out["type"] = "bind" if parts[0][:1] in (".", "/", "~") else "volume"
        if out["type"] == "bind":
            out["source"] = self.path(parts[0])
        for mode in (parts[2].split(",") if len(parts) == 3 else []):
            if mode == "ro":
                out["read_only"] = True
            elif mode == "rw":
                out["read_only"] = False
            elif mode == "nocopy" and out["type"] == "volume":
                out["nocopy"] = True
            else:
                raise self.fail(path, f"volume mode {mode!r} in {spec!r}: {UNSUPPORTED}")
        return out

    # top level

    def external(self, path: str, raw: dict[str, Any], name: str) -> tuple[bool, str]:
        """(external, name); ``external: {name: x}`` is docker's deprecated form."""
        ext = raw.get("external")
        explicit = self.string(f"{path}.name", raw["name"]) if raw.get("name") is not None else ""
        if isinstance(ext, dict):
            self.keys(f"{path}.external", ext, {"name"})
            if ext.get("name") is not None:
                self.warnings.append(
                    f"{path}.external.name is deprecated. Please use {path}.name instead."
                )
                return True, self.string(f"{path}.external.name", ext["name"])
            return True, explicit or name
        if ext is not None and self.boolean(f"{path}.external", ext):
            return True, explicit or name
        return False, explicit

    def network(self, path: str, name: str, value: Any) -> dict[str, Any]:
        raw = self.mapping(path, value)
        self.keys(path, raw, {"driver", "driver_opts", "attachable", "internal", "labels",
                              "external", "name", "ipam"}, {"enable_ipv6"})
        external, net_name = self.external(path, raw, name)
        out: dict[str, Any] = {"external": external, "name": net_name}
        if raw.get("driver") is not None:
            out["driver"] = self.string(f"{path}.driver", raw["driver"])
        if raw.get("driver_opts") is not None:
            out["driver_opts"] = self.labels(f"{path}.driver_opts", raw["driver_opts"])
        if raw.get("attachable") is not None:
            out["attachable"] = self.boolean(f"{path}.attachable", raw["attachable"])
        if raw.get("internal") is not None:
            out["internal"] = self.boolean(f"{path}.internal", raw["internal"])
        if raw.get("labels") is not None:
            out["labels"] = self.labels(f"{path}.labels", raw["labels"])
        if raw.get("ipam") is not None:
            ipam = self.mapping(f"{path}.ipam", raw["ipam"])
            self.keys(f"{path}.ipam", ipam, {"config"}, {"driver"})
            subnets = []
            for item in self.array(f"{path}.ipam.config", ipam.get("config") or []):
                conf = self.mapping(f"{path}.ipam.config", item, allow_none=False)
                self.keys(f"{path}.ipam.config", conf, {"subnet"},
                          {"ip_range", "gateway", "aux_addresses"})
                if conf.get("subnet") is not None:
                    subnets.append(self.string(f"{path}.ipam.config.subnet", conf["subnet"]))
            out["subnets"] = subnets
        return out

    def volume(self, path: str, name: str, value: Any) -> dict[str, Any]:
        raw = self.mapping(path, value)
        self.keys(path, raw, {"driver", "external", "name", "labels"}, {"driver_opts"})
        external, vol_name = self.external(path, raw, name)
        if raw.get("driver") is not None:
            driver = self.string(f"{path}.driver", raw["driver"])
            if external:
                raise CliError(f'conflicting parameters "external" and "driver" specified for '
                               f'volume "{name}"')
            if driver != "local":
                raise self.fail(f"{path}.driver", f"{driver!r}: {UNSUPPORTED} (only local)")
        out: dict[str, Any] = {"external": external, "name": vol_name}
        if raw.get("labels") is not None:
            if external:
                raise CliError(f'conflicting parameters "external" and "labels" specified for '
                               f'volume "{name}"')
            out["labels"] = self.labels(f"{path}.labels", raw["labels"])
        return out

    def file_object(self, path: str, kind: str, name: str, value: Any) -> dict[str, Any]:
        raw = self.mapping(path, value)
        self.keys(path, raw, {"file", "external", "name", "labels"},
                  {"driver", "driver_opts", "template_driver"})
        external, obj_name = self.external(path, raw, name)
        out: dict[str, Any] = {"external": external, "name": obj_name}
        if raw.get("labels") is not None:
            out["labels"] = self.labels(f"{path}.labels", raw["labels"])
        if raw.get("file") is not None:
            out["file"] = self.path(self.string(f"{path}.file", raw["file"]))
        elif not external:
            raise self.fail(path, f"{kind[:-1]} needs a file or external: true")
        return out


def parse_port_spec(spec: str, warnings: list[str]) -> list[dict[str, Any]]:
    """docker's ``nat.ParsePortSpec`` for the short syntax: ``[ip:][published:]target[/proto]``
    with ranges; the IP is dropped with docker's warning."""
    rest, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp", "sctp"):
        raise ValueError(f"invalid proto: {proto}")
    parts = rest.rsplit(":", 2)
    ip, published, target = "", "", parts[-1]
    if len(parts) == 2:
        published = parts[0]
    elif len(parts) == 3:
        ip, published = parts[0], parts[1]
    if ip:
        warnings.append(
            f"ignoring IP-address ({ip}:{published}:{target}/{proto}) service will listen on "
            "'0.0.0.0'"
        )

    def span(text: str) -> list[int]:
        low, _, high = text.partition("-")
        try:
            a, b = int(low), int(high or low)
        except ValueError:
            raise ValueError(f"invalid port: {text}") from None
        if not (0 <= a <= b <= 65535):
            raise ValueError(f"invalid port: {text}")
        return list(range(a, b + 1))

    targets = span(target)
    publisheds = span(published) if published else []
    if publisheds and len(publisheds) != len(targets):
        if len(targets) != 1:
            raise ValueError(f"invalid ranges specified for container and host Ports: {spec}")
        publisheds = publisheds[:1]
    return [
        {"target": t, "published": publisheds[i] if publisheds else 0, "protocol": proto,
         "mode": "ingress"}
        for i, t in enumerate(targets)
    ]


# -- merging -----------------------------------------------------------------------------------

_KEYED_LISTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "ports": lambda p: (p["published"], p["target"], p["protocol"]) if p["published"] else id(p),
    "secrets": lambda s: s["source"],
    "configs": lambda s: s["source"],
    "volumes": lambda v: v["target"],
}
_REPLACED = {"command", "entrypoint", "test", "preferences"}


def _merge_value(key: str, base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for k, v in override.items():
            out[k] = _merge_value(k, out[k], v) if k in out else v
        return out
    if isinstance(base, list) and isinstance(override, list) and key not in _REPLACED:
        if key in _KEYED_LISTS:
            keyed = {_KEYED_LISTS[key](item): item for item in base}
            keyed.update({_KEYED_LISTS[key](item): item for item in override})
            return list(keyed.values())
        return base + [item for item in override if item not in base]
    return override


def _merge(base: Config, override: Config) -> Config:
    """docker's ``merge``: services by key and field (scalars override, lists append or merge
    by key, maps merge); top-level networks, volumes, secrets and configs replaced per key."""
    out = Config(version=override.version, warnings=base.warnings + override.warnings)
    out.services = dict(base.services)
    for name, svc in override.services.items():
        out.services[name] = _merge_value("", out.services[name], svc) if name in out.services \
            else svc
    for attr in ("networks", "volumes", "secrets", "configs"):
        setattr(out, attr, {**getattr(base, attr), **getattr(override, attr)})
    return out
