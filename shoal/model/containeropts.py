"""What a ContainerSpec asks of its process and host files beyond the command: ``DNSConfig``,
``Hosts``, ``Groups``, ``Init``, ``TTY``, ``OpenStdin``, ``OomScoreAdj``, ``Ulimits``,
``Sysctls`` and ``Isolation``, read into one typed value.

As `shoal.model.privileges`, the control API calls `container_options` on every service create
and update, so a value no container could get is refused there, naming the field, with Docker's
words where it has some; the runc executor calls it again to build the container. Sysctls follow
runc's rule (what Docker passes on): only those of a namespace the container has of its own
(IPC: ``kernel.msg*``, ``kernel.sem``, ``kernel.shm*``, ``fs.mqueue.*``; network: ``net.*``;
UTS: ``kernel.domainname``).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from shoal.errors import InvalidArgument

__all__ = [
    "RLIMIT_INFINITY",
    "ULIMITS",
    "ContainerOptions",
    "DNSConfig",
    "HostEntry",
    "Ulimit",
    "check_sysctl",
    "container_options",
]

# Docker's ulimit names (go-units ulimit.go) -> the OCI rlimit type
ULIMITS = {"as": "RLIMIT_AS", "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU",
           "data": "RLIMIT_DATA", "fsize": "RLIMIT_FSIZE", "locks": "RLIMIT_LOCKS",
           "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE", "nice": "RLIMIT_NICE",
           "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS",
           "rtprio": "RLIMIT_RTPRIO", "rttime": "RLIMIT_RTTIME",
           "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK"}
RLIMIT_INFINITY = 2**64 - 1  # what Docker's -1 becomes (uint64)
_IPC_SYSCTLS = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}
# docker's opts.ValidateDNSSearch
_DOMAIN = re.compile(r"^(:?(([a-zA-Z0-9])|([a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))"
                     r"(:?\.(([a-zA-Z0-9])|([a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])))*)\.?$")


@dataclass(frozen=True, slots=True)
class DNSConfig:
    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HostEntry:
    """One line of /etc/hosts: ``IP_address canonical_hostname [aliases...]``."""

    ip: str
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Ulimit:
    name: str  # Docker's: "nofile"
    soft: int
    hard: int

    @property
    def rlimit(self) -> dict[str, Any]:
        """The OCI ``process.rlimits`` entry (-1: unlimited)."""
        def value(v: int) -> int:
            return RLIMIT_INFINITY if v < 0 else v
        return {"type": ULIMITS[self.name], "soft": value(self.soft), "hard": value(self.hard)}


@dataclass(frozen=True, slots=True)
class ContainerOptions:
    dns: DNSConfig | None = None  # None: no DNSConfig asked for
    hosts: tuple[HostEntry, ...] = ()
    groups: tuple[str, ...] = ()
    init: bool = False
    tty: bool = False
    open_stdin: bool = False
    oom_score_adj: int = 0
    ulimits: tuple[Ulimit, ...] = ()
    sysctls: dict[str, str] = field(default_factory=dict)


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"invalid JSON in request body: {what} must be a list of strings")
    return tuple(value)


def _bool(value: Any, what: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidArgument(f"invalid JSON in request body: {what} must be a boolean")
    return value


def _int(value: Any, what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"invalid JSON in request body: {what} must be an integer")
    return value


def _ip(text: str, what: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise InvalidArgument(f"invalid {what} {text!r}: IP address is not correctly "
                              f"formatted: {text}") from None


def _dns(raw: Any) -> DNSConfig | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidArgument("invalid JSON in request body: DNSConfig must be an object")
    servers = tuple(_ip(s, "DNSConfig.Nameservers entry")
                    for s in _strings(raw.get("Nameservers"), "DNSConfig.Nameservers"))
    search = _strings(raw.get("Search"), "DNSConfig.Search")
    for domain in search:
        if domain != "." and (len(domain) > 255 or not _DOMAIN.match(domain)):
            raise InvalidArgument(f"invalid DNSConfig.Search entry: {domain} is not a valid "
                                  "domain")
    options = _strings(raw.get("Options"), "DNSConfig.Options")
    for option in options:
        if not option or any(c.isspace() for c in option):
            raise InvalidArgument(f"invalid DNSConfig.Options entry {option!r}: one option, "
                                  "without spaces (as ndots:2)")
    return DNSConfig(servers, search, options)


def _hosts(raw: Any) -> tuple[HostEntry, ...]:
    out = []
    for line in _strings(raw, "Hosts"):
        fields = line.split()
        if len(fields) < 2:
            raise InvalidArgument(f"invalid Hosts entry {line!r}: want \"IP_address "
                                  "canonical_hostname [aliases...]\" (--host name:ip)")
        if fields[0] == "host-gateway":
            raise InvalidArgument(f"invalid Hosts entry {line!r}: host-gateway is not "
                                  "supported by Shoal: give the address")
        out.append(HostEntry(_ip(fields[0], "Hosts entry address"), tuple(fields[1:])))
    return tuple(out)


def _ulimits(raw: Any) -> tuple[Ulimit, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(u, dict) for u in raw):
        raise InvalidArgument("invalid JSON in request body: Ulimits must be a list of objects")
    out: dict[str, Ulimit] = {}
    for u in raw:
        name = u.get("Name")
        if not isinstance(name, str) or name not in ULIMITS:
            raise InvalidArgument(f"invalid Ulimits entry: invalid ulimit type: {name}")
        soft, hard = _int(u.get("Soft"), "Ulimits.Soft"), _int(u.get("Hard"), "Ulimits.Hard")
        if soft < -1 or hard < -1:
            raise InvalidArgument(f"invalid Ulimits entry: invalid ulimit argument: "
                                  f"{name}={soft}:{hard}")
        if hard != -1 and (soft == -1 or soft > hard):
            raise InvalidArgument(f"invalid Ulimits entry {name}: ulimit soft limit must be "
                                  f"less than or equal to hard limit: {soft} > {hard}")
        out[name] = Ulimit(name, soft, hard)  # the last one of a name wins, as Docker's map
    return tuple(out.values())


def check_sysctl(name: str) -> None:
    """runc's rule: a sysctl must belong to a namespace the container has of its own."""
    if name in _IPC_SYSCTLS or name.startswith(("fs.mqueue.", "net.")):
        return
    if name == "kernel.domainname":
        return
    if name == "kernel.hostname":
        raise InvalidArgument(f"invalid Sysctls: sysctl \"{name}\" is not allowed as it "
                              "conflicts with the OCI \"hostname\" field (use --hostname)")
    raise InvalidArgument(f"invalid Sysctls: sysctl \"{name}\" is not in a separate kernel "
                          "namespace (only kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, "
                          "net.* and kernel.domainname are)")


def _sysctls(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise InvalidArgument("invalid JSON in request body: Sysctls must be an object of "
                              "strings")
    for name in raw:
        check_sysctl(str(name))
    return {str(k): v for k, v in raw.items()}


def _isolation(raw: Any) -> None:
    if raw is None or (isinstance(raw, str) and raw.lower() in ("", "default")):
        return
    raise InvalidArgument(f"Invalid isolation: {str(raw)!r} - linux only supports 'default'")


def container_options(spec: dict[str, Any]) -> ContainerOptions:
    """The options a ContainerSpec asks for; InvalidArgument for what no container can get."""
    _isolation(spec.get("Isolation"))
    groups = _strings(spec.get("Groups"), "Groups")
    if any(not g for g in groups):
        raise InvalidArgument("invalid Groups entry: a group name or number must not be empty")
    oom = _int(spec.get("OomScoreAdj"), "OomScoreAdj")
    if not -1000 <= oom <= 1000:
        raise InvalidArgument(f"Invalid value {oom}, range for oom score adj is [-1000, 1000]")
    init = spec.get("Init")
    return ContainerOptions(
        dns=_dns(spec.get("DNSConfig")), hosts=_hosts(spec.get("Hosts")), groups=groups,
        init=_bool(init, "Init"), tty=_bool(spec.get("TTY"), "TTY"),
        open_stdin=_bool(spec.get("OpenStdin"), "OpenStdin"), oom_score_adj=oom,
        ulimits=_ulimits(spec.get("Ulimits")), sysctls=_sysctls(spec.get("Sysctls")))
