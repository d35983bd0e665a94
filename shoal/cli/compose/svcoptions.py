"""The compose service keys that become ContainerSpec options and the log driver (docker/cli's
convert.Service): ``init``, ``stdin_open``, ``isolation``, ``oom_score_adj``, ``sysctls``,
``ulimits``, ``extra_hosts``, ``dns``, ``dns_search`` and ``logging``. The loader calls `load`
to check a service's keys, the converter `container_fields` and `log_driver`; what the
daemon's nodes cannot honour (a sysctl, a log driver) it refuses when the stack is deployed."""

from __future__ import annotations

from typing import Any, Protocol

from shoal.cli.errors import CliError

__all__ = ["KEYS", "container_fields", "load", "log_driver"]

KEYS = frozenset({"init", "stdin_open", "isolation", "oom_score_adj", "sysctls", "ulimits",
                  "extra_hosts", "dns", "dns_search", "logging"})


class _FileLoader(Protocol):
    """The loader's checks (loader._FileLoader), which raise its schema errors."""

    def fail(self, path: str, message: str) -> CliError: ...
    def keys(self, path: str, value: dict[str, Any], allowed: set[str],
             known: set[str] | frozenset[str] = ..., *, extensions: bool = ...) -> None: ...
    def mapping(self, path: str, value: Any, *, allow_none: bool = ...) -> dict[str, Any]: ...
    def string(self, path: str, value: Any) -> str: ...
    def integer(self, path: str, value: Any) -> int: ...
    def boolean(self, path: str, value: Any) -> bool: ...
    def strings(self, path: str, value: Any) -> list[str]: ...
    def string_or_list(self, path: str, value: Any) -> list[str]: ...
    def dict_or_list(self, path: str, value: Any, sep: str = ...) -> dict[str, str | None]: ...


def _ulimits(fl: _FileLoader, path: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, limit in fl.mapping(path, value).items():
        where = f"{path}.{name}"
        if isinstance(limit, dict):
            fl.keys(where, limit, {"soft", "hard"}, extensions=False)
            if "soft" not in limit or "hard" not in limit:
                raise fl.fail(where, "must be a integer")  # the schema's oneOf: int or both
            out[str(name)] = {"soft": fl.integer(f"{where}.soft", limit["soft"]),
                              "hard": fl.integer(f"{where}.hard", limit["hard"])}
        else:
            out[str(name)] = fl.integer(where, limit)
    return out


def _hosts(fl: _FileLoader, path: str, value: Any) -> list[str]:
    """``host:ip`` entries (a mapping ``host: ip`` too), as docker's HostsList."""
    if isinstance(value, dict):
        return [f"{k}:{fl.string(f'{path}.{k}', v)}" for k, v in value.items()]
    return fl.strings(path, value)


def _logging(fl: _FileLoader, path: str, value: Any) -> dict[str, Any]:
    raw = fl.mapping(path, value)
    fl.keys(path, raw, {"driver", "options"})
    out: dict[str, Any] = {}
    if raw.get("driver") is not None:
        out["driver"] = fl.string(f"{path}.driver", raw["driver"])
    if raw.get("options") is not None:
        options = fl.dict_or_list(f"{path}.options", raw["options"])
        out["options"] = {k: v or "" for k, v in options.items()}
    return out


def load(fl: _FileLoader, path: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The service's option keys, checked and normalised."""
    out: dict[str, Any] = {}
    for key in ("init", "stdin_open"):
        if raw.get(key) is not None:
            out[key] = fl.boolean(f"{path}.{key}", raw[key])
    if raw.get("isolation") is not None:
        out["isolation"] = fl.string(f"{path}.isolation", raw["isolation"])
    if raw.get("oom_score_adj") is not None:
        out["oom_score_adj"] = fl.integer(f"{path}.oom_score_adj", raw["oom_score_adj"])
    if raw.get("sysctls") is not None:
        sysctls = fl.dict_or_list(f"{path}.sysctls", raw["sysctls"])
        out["sysctls"] = {k: v or "" for k, v in sysctls.items()}
    if raw.get("ulimits") is not None:
        out["ulimits"] = _ulimits(fl, f"{path}.ulimits", raw["ulimits"])
    if raw.get("extra_hosts") is not None:
        out["extra_hosts"] = _hosts(fl, f"{path}.extra_hosts", raw["extra_hosts"])
    for key in ("dns", "dns_search"):
        if raw.get(key) is not None:
            out[key] = fl.string_or_list(f"{path}.{key}", raw[key])
    if raw.get("logging") is not None:
        out["logging"] = _logging(fl, f"{path}.logging", raw["logging"])
    return out


def container_fields(svc: dict[str, Any]) -> dict[str, Any]:
    """ContainerSpec fields (unset ones as None), as docker/cli's convert.Service."""
    ulimits = None
    if svc.get("ulimits"):
        ulimits = []
        for name in sorted(svc["ulimits"]):
            limit = svc["ulimits"][name]
            soft, hard = (limit["soft"], limit["hard"]) if isinstance(limit, dict) else (limit,
                                                                                        limit)
            ulimits.append({"Name": name, "Soft": soft, "Hard": hard})
    hosts = None
    if svc.get("extra_hosts"):  # "host:ip" -> "ip host" (convertExtraHosts)
        hosts = [" ".join(reversed(h.split(":", 1))) if ":" in h else h
                 for h in svc["extra_hosts"]]
    dns = None
    if svc.get("dns") or svc.get("dns_search"):
        dns = {k: v for k, v in (("Nameservers", svc.get("dns")),
                                 ("Search", svc.get("dns_search"))) if v}
    # Init is a *bool (false is sent); OpenStdin and OomScoreAdj are omitempty
    return {"Init": svc.get("init"), "OpenStdin": svc.get("stdin_open") or None,
            "Isolation": svc.get("isolation"), "OomScoreAdj": svc.get("oom_score_adj") or None,
            "Sysctls": svc.get("sysctls") or None, "Ulimits": ulimits, "Hosts": hosts,
            "DNSConfig": dns}


def log_driver(svc: dict[str, Any]) -> dict[str, Any] | None:
    logging = svc.get("logging")
    if logging is None:
        return None
    out: dict[str, Any] = {"Name": logging.get("driver", "")}
    if logging.get("options"):
        out["Options"] = logging["options"]
    return out
