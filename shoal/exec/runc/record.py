"""A container's record on disk, ``<cid>/container.json``: what ``docker ps`` and ``docker
inspect`` show of it, in the Engine API's shape (Name, Created, Path, Args, Config,
HostConfig). Written once by the controller at prepare (task containers: ``task_record``) and
read by the node's container service (containers.py); the state (running, exit code, health)
is not in it but in the files the shim writes (shim.json, exit.json, health.json).

Task containers carry Docker's names (``SERVICE.SLOT.TASKID``, global ``SERVICE.NODEID.TASKID``)
and the swarm's labels (moby daemon/cluster/executor/container/container.go): the ContainerSpec's
labels, then the task's, then the system labels, which win.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from shoal.events import EventLog
from shoal.exec.containerspec import Process
from shoal.exec.runc.logfile import format_time
from shoal.exec.runc.state import read_json, write_json
from shoal.model.objects import Task

__all__ = ["RECORD_FILE", "publish", "read_record", "task_labels", "task_record", "write_record"]

RECORD_FILE = "container.json"


def task_labels(task: Task) -> dict[str, str]:
    cs = task.spec.container_spec or {}
    labels: dict[str, str] = {str(k): str(v) for k, v in (cs.get("Labels") or {}).items()}
    labels.update(task.labels or {})
    labels.update({
        "com.docker.swarm.task": "",
        "com.docker.swarm.task.id": task.id,
        "com.docker.swarm.task.name": task.full_name,
        "com.docker.swarm.node.id": task.node_id,
        "com.docker.swarm.service.id": task.service_id,
        "com.docker.swarm.service.name": task.service_name or task.service_id,
    })
    return labels


def task_record(task: Task, *, process: Process, image_id: str, image_config: dict[str, Any],
                hostname: str, tty: bool, open_stdin: bool) -> dict[str, Any]:
    """The record of a task's container (after its spec was expanded and resolved)."""
    cs = task.spec.container_spec or {}
    entrypoint = list(cs.get("Command") or image_config.get("Entrypoint") or []) or None
    if cs.get("Command"):
        cmd = list(cs.get("Args") or []) or None
    else:
        cmd = list(cs.get("Args") or image_config.get("Cmd") or []) or None
    args = list(process.args)
    stop_signal = str(cs.get("StopSignal") or image_config.get("StopSignal") or "")
    grace = cs.get("StopGracePeriod")
    config: dict[str, Any] = {
        "Hostname": hostname, "Domainname": "", "User": str(cs.get("User") or process.user),
        "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
        "ExposedPorts": None, "Tty": tty, "OpenStdin": open_stdin, "StdinOnce": False,
        "Env": list(process.env), "Cmd": cmd, "Image": str(cs.get("Image", "")),
        "Volumes": None, "WorkingDir": process.cwd if process.cwd != "/" else "",
        "Entrypoint": entrypoint, "OnBuild": None, "Labels": task_labels(task),
    }
    if stop_signal:
        config["StopSignal"] = stop_signal
    if grace is not None:
        config["StopTimeout"] = int(grace) // 1_000_000_000
    return {
        "Name": "/" + task.full_name,
        "Created": format_time(time.time_ns()),
        "Path": args[0] if args else "",
        "Args": args[1:],
        "Image": image_id,
        "Config": config,
        "HostConfig": {"NetworkMode": "default", "RestartPolicy": {"Name": "no",
                                                                   "MaximumRetryCount": 0},
                       "AutoRemove": False, "LogConfig": _log_config(task)},
        "Managed": True,
        "Networks": _networks(task),
    }


def _networks(task: Task) -> dict[str, Any]:
    """NetworkSettings.Networks: the task's attachments (EndpointSettings' shape)."""
    out: dict[str, Any] = {}
    for att in task.networks_attachments or []:
        net = att.network
        addr = (att.addresses or [""])[0]
        ip, _, prefix = addr.partition("/")
        out[net.spec.name or net.id] = {
            "IPAMConfig": {"IPv4Address": ip} if ip else None, "Links": None,
            "Aliases": list(att.aliases or []) or None, "MacAddress": "", "DriverOpts": None,
            "GwPriority": 0, "NetworkID": net.id, "EndpointID": "", "Gateway": "",
            "IPAddress": ip, "IPPrefixLen": int(prefix) if prefix.isdigit() else 0,
            "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "DNSNames": None}
    return out


def _log_config(task: Task) -> dict[str, Any]:
    driver = task.spec.log_driver or {}
    return {"Type": str(driver.get("Name") or "json-file"),
            "Config": {str(k): str(v) for k, v in (driver.get("Options") or {}).items()}}


def write_record(directory: Path, record: dict[str, Any]) -> None:
    write_json(directory / RECORD_FILE, record)


def read_record(directory: Path) -> dict[str, Any] | None:
    return read_json(directory / RECORD_FILE)


def publish(events: EventLog | None, directory: Path, action: str,
            extra: dict[str, str] | None = None) -> None:
    """A container event with Docker's attributes: its labels, image and name."""
    if events is None:
        return
    rec = read_record(directory) or {}
    config = rec.get("Config") or {}
    attrs = {str(k): str(v) for k, v in (config.get("Labels") or {}).items()}
    attrs["image"] = str(config.get("Image", ""))
    attrs["name"] = str(rec.get("Name", "")).lstrip("/")
    attrs.update(extra or {})
    events.publish("container", action, directory.name, attrs)
