"""``docker stats`` and ``docker top`` of a container: its cgroup's counters (v1, hybrid or v2)
in the shape the docker CLI reads (moby api/types/container StatsResponse), the network of its
namespace (``/proc/<pid>/net/dev``), and ``ps`` rows of its cgroup's processes (dockerd's
``ContainerTop``: ``ps`` on the host, rows kept by PID). Called by shoal.api.routes_containers.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any

from shoal.errors import InvalidArgument
from shoal.exec.runc import cgroups
from shoal.exec.runc.logfile import format_time

__all__ = ["cgroup_pids", "sample", "top"]

_USER_HZ = os.sysconf("SC_CLK_TCK")
_V2 = os.path.exists(os.path.join(cgroups.CGROUP_ROOT, "cgroup.controllers"))


def _int(text: str, default: int = 0) -> int:
    text = text.strip()
    return int(text) if text.isdigit() else default


def _kv(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def _dir(cgroups_path: str, controller: str) -> str:
    rel = cgroups_path.strip("/")
    if _V2:
        return os.path.join(cgroups.CGROUP_ROOT, rel)
    return os.path.join(cgroups.CGROUP_ROOT, controller, rel)


def cgroup_pids(cgroups_path: str) -> list[int]:
    pids: set[int] = set()
    for d in cgroups.container_dirs(cgroups_path):
        for dirpath, _dirs, files in os.walk(d):
            if "cgroup.procs" in files:
                pids.update(int(p) for p in cgroups.read_file(os.path.join(dirpath, "cgroup.procs")).split()
                            if p.isdigit())
    return sorted(pids)


def _system_cpu() -> int:
    """/proc/stat's cpu line in nanoseconds (Docker's system_cpu_usage)."""
    for line in cgroups.read_file("/proc/stat").splitlines():
        if line.startswith("cpu "):
            return sum(int(v) for v in line.split()[1:8]) * 1_000_000_000 // _USER_HZ
    return 0


def _cpu(cg: str) -> dict[str, Any]:
    if _V2:
        stat = _kv(cgroups.read_file(os.path.join(_dir(cg, ""), "cpu.stat")))
        usage: dict[str, Any] = {
            "total_usage": stat.get("usage_usec", 0) * 1000,
            "usage_in_kernelmode": stat.get("system_usec", 0) * 1000,
            "usage_in_usermode": stat.get("user_usec", 0) * 1000}
        throttling = {"periods": stat.get("nr_periods", 0),
                      "throttled_periods": stat.get("nr_throttled", 0),
                      "throttled_time": stat.get("throttled_usec", 0) * 1000}
    else:
        d = _dir(cg, "cpuacct")
        acct = _kv(cgroups.read_file(os.path.join(d, "cpuacct.stat")))
        ns_per_tick = 1_000_000_000 // _USER_HZ
        usage = {"total_usage": _int(cgroups.read_file(os.path.join(d, "cpuacct.usage"))),
                 "percpu_usage": [int(v) for v in
                                  cgroups.read_file(os.path.join(d, "cpuacct.usage_percpu")).split()],
                 "usage_in_kernelmode": acct.get("system", 0) * ns_per_tick,
                 "usage_in_usermode": acct.get("user", 0) * ns_per_tick}
        stat = _kv(cgroups.read_file(os.path.join(_dir(cg, "cpu"), "cpu.stat")))
        throttling = {"periods": stat.get("nr_periods", 0),
                      "throttled_periods": stat.get("nr_throttled", 0),
                      "throttled_time": stat.get("throttled_time", 0)}
    return {"cpu_usage": usage, "system_cpu_usage": _system_cpu(),
            "online_cpus": os.cpu_count() or 1, "throttling_data": throttling}


def _memory(cg: str) -> dict[str, Any]:
    d = _dir(cg, "memory")
    if _V2:
        usage = _int(cgroups.read_file(os.path.join(d, "memory.current")))
        limit = _int(cgroups.read_file(os.path.join(d, "memory.max")), 0)
    else:
        usage = _int(cgroups.read_file(os.path.join(d, "memory.usage_in_bytes")))
        limit = _int(cgroups.read_file(os.path.join(d, "memory.limit_in_bytes")), 0)
        out = {"usage": usage, "max_usage": _int(cgroups.read_file(os.path.join(d,
                                                                     "memory.max_usage_in_bytes"))),
               "failcnt": _int(cgroups.read_file(os.path.join(d, "memory.failcnt"))),
               "stats": _kv(cgroups.read_file(os.path.join(d, "memory.stat")))}
        out["limit"] = _host_limit(limit)
        return out
    return {"usage": usage, "limit": _host_limit(limit),
            "stats": _kv(cgroups.read_file(os.path.join(d, "memory.stat")))}


def _host_limit(limit: int) -> int:
    """An unlimited cgroup shows the host's memory (as dockerd)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return limit if 0 < limit < total else total


def _pids(cg: str) -> dict[str, int]:
    d = _dir(cg, "pids")
    out = {"current": _int(cgroups.read_file(os.path.join(d, "pids.current")))}
    limit = _int(cgroups.read_file(os.path.join(d, "pids.max")), 0)
    if limit:
        out["limit"] = limit
    return out


def _blkio(cg: str) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []
    if _V2:
        for line in cgroups.read_file(os.path.join(_dir(cg, ""), "io.stat")).splitlines():
            dev, *fields = line.split()
            major, _, minor = dev.partition(":")
            kv = dict(f.split("=", 1) for f in fields if "=" in f)
            for key, op in (("rbytes", "read"), ("wbytes", "write")):
                entries.append({"major": int(major), "minor": int(minor), "op": op,
                                "value": int(kv.get(key, 0))})
    else:
        text = cgroups.read_file(os.path.join(_dir(cg, "blkio"), "blkio.throttle.io_service_bytes"))
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 3 and ":" in parts[0]:
                major, _, minor = parts[0].partition(":")
                entries.append({"major": int(major), "minor": int(minor),
                                "op": parts[1].lower(), "value": int(parts[2])})
    return {"io_service_bytes_recursive": entries or None, "io_serviced_recursive": None,
            "io_queue_recursive": None, "io_service_time_recursive": None,
            "io_wait_time_recursive": None, "io_merged_recursive": None,
            "io_time_recursive": None, "sectors_recursive": None}


def _networks(pid: int) -> dict[str, Any] | None:
    if not pid:
        return None
    out: dict[str, Any] = {}
    for line in cgroups.read_file(f"/proc/{pid}/net/dev").splitlines()[2:]:
        name, _, rest = line.partition(":")
        name, v = name.strip(), [int(x) for x in rest.split()]
        if name == "lo" or len(v) < 16:
            continue
        out[name] = {"rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2],
                     "rx_dropped": v[3], "tx_bytes": v[8], "tx_packets": v[9],
                     "tx_errors": v[10], "tx_dropped": v[11]}
    return out


def sample(cgroups_path: str, pid: int, *, cid: str, name: str) -> dict[str, Any]:
    """One sample; ``precpu_stats`` and ``preread`` are the caller's previous one."""
    running = bool(pid)
    out: dict[str, Any] = {
        "name": name, "id": cid, "read": format_time(time.time_ns()),
        "num_procs": 0,
        "pids_stats": _pids(cgroups_path) if running else {},
        "blkio_stats": _blkio(cgroups_path) if running else {},
        "cpu_stats": _cpu(cgroups_path) if running else {"cpu_usage": {"total_usage": 0},
                                                           "throttling_data": {}},
        "memory_stats": _memory(cgroups_path) if running else {},
        "storage_stats": {}}
    networks = _networks(pid)
    if networks is not None:
        out["networks"] = networks
    return out


def top(cgroups_path: str, ps_args: str) -> dict[str, Any]:
    """``ps`` on the host, the rows of the container's processes (moby daemon/top_unix.go)."""
    args = ps_args.split() if ps_args.strip() else ["-ef"]
    try:
        proc = subprocess.run(["ps", *args], capture_output=True, text=True, check=False)
    except OSError as exc:
        raise InvalidArgument(f"Error running ps: {exc}") from exc
    if proc.returncode != 0:
        raise InvalidArgument(f"ps: {proc.stderr.strip() or proc.stdout.strip()}")
    lines = proc.stdout.splitlines()
    if not lines:
        raise InvalidArgument("Couldn't find PID field in ps output")
    titles = lines[0].split()
    if "PID" not in titles:
        raise InvalidArgument("Couldn't find PID field in ps output")
    pid_col = titles.index("PID")
    pids = set(cgroup_pids(cgroups_path))
    processes = []
    for line in lines[1:]:
        fields = line.split()
        if len(fields) <= pid_col or not fields[pid_col].isdigit():
            continue
        if int(fields[pid_col]) in pids:
            # the last column takes the rest (the command and its arguments)
            head = fields[:len(titles) - 1]
            processes.append([*head, " ".join(fields[len(titles) - 1:])])
    return {"Titles": titles, "Processes": processes}
