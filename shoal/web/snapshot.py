"""What the web view's page holds: the swarm's nodes, services and live tasks as small JSON
rows, and the store's changes as upserts and removals of those rows.

The rows carry only what the page draws (a 100-node, 1000-task swarm is about 300 KB before
compression), keyed by ID. A task is shown while it is meant to run (desired state RUNNING or
before); once not, it leaves the grid as a removal, and its details are read on demand
(``task_detail``). A task row says whether it matches its service's current
spec (``fresh``), for the update progress: a service change re-sends its live tasks.
"""

from __future__ import annotations

from typing import Any

from shoal.manager.orchestrator.common import is_task_dirty
from shoal.model.objects import Network, Node, Service, StoredObject, Task
from shoal.model.states import TaskState
from shoal.store.tables import Tables
from shoal.store.watch import Change

__all__ = ["KINDS", "Delta", "delta", "node_row", "service_row", "shown", "snapshot", "task_detail",
           "task_row"]

Row = dict[str, Any]
KINDS = (Node, Service, Task, Network)  # what the page follows (networks: their names)


def node_row(node: Node) -> Row:
    ms = node.manager_status
    return {
        "id": node.id, "hostname": node.description.hostname, "name": node.spec.name,
        "role": node.actual_role(), "availability": node.spec.availability or "active",
        "state": node.status.state, "message": node.status.message, "addr": node.status.addr,
        "leader": bool(ms and ms.leader), "reachability": ms.reachability if ms else "",
        "engine": node.description.engine.engine_version,
        "cpus": node.description.resources.nano_cpus / 1e9,
        "memory": node.description.resources.memory_bytes,
        "cert_expiry": node.cert_expiry, "labels": node.spec.labels or {},
    }


def _mode(service: Service) -> tuple[str, int | None]:
    """(mode, desired replicas; None where it follows the nodes)."""
    mode = service.spec.mode
    if mode.replicated_job is not None:
        return "replicated-job", mode.replicated_job.total_completions
    if mode.global_job is not None:
        return "global-job", None
    if mode.global_ is not None:
        return "global", None
    return "replicated", (mode.replicated.replicas or 0) if mode.replicated is not None else 1


def service_row(service: Service, view: Tables) -> Row:
    mode, replicas = _mode(service)
    spec = service.spec.task_template
    ids = [a.target for a in spec.networks or service.spec.networks or []]
    ids += [vip.network_id for vip in service.endpoint.virtual_ips or []]  # ingress, if it publishes
    networks = []
    for net_id in dict.fromkeys(ids):
        net = view.get(Network, net_id)
        networks.append(net.spec.name if net is not None else net_id)
    ports = [{"protocol": p.protocol, "target": p.target_port, "published": p.published_port,
              "mode": p.publish_mode} for p in service.endpoint.ports or []]
    status = service.update_status
    return {
        "id": service.id, "name": service.spec.name, "mode": mode, "replicas": replicas,
        "image": str((spec.container_spec or {}).get("Image") or ""),
        "networks": networks, "ports": ports, "updated_at": service.updated_at,
        "update": None if status is None else {
            "state": status.state, "message": status.message,
            "started_at": status.started_at, "completed_at": status.completed_at},
    }


def shown(task: Task) -> bool:
    """Whether the grid shows the task: while it is meant to run. A task told to stop leaves
    at once, as its replacement appears: a dead node's tasks still say RUNNING in the store."""
    return task.desired_state <= TaskState.RUNNING


def task_row(task: Task, view: Tables) -> Row:
    container = task.status.container_status
    service = view.get(Service, task.service_id)
    return {
        "id": task.id, "service": task.service_id, "slot": task.slot, "node": task.node_id,
        "state": str(task.status.state), "desired": str(task.desired_state),
        "health": container.health if container is not None else "",
        "message": task.status.err or task.status.message, "since": task.status.timestamp,
        "fresh": service is not None and not is_task_dirty(service, task),
    }


def task_detail(task: Task, view: Tables) -> Row:
    """One task's page: its row, and what ``docker inspect`` would add that a person reads."""
    row = task_row(task, view)
    container = task.status.container_status
    spec = task.spec.container_spec or {}
    node = view.get(Node, task.node_id) if task.node_id else None
    row.update({
        "name": task.name, "service_name": task.service_name, "image": spec.get("Image") or "",
        "command": spec.get("Command") or [], "args": spec.get("Args") or [],
        "node_hostname": node.description.hostname if node is not None else "",
        "container_id": container.container_id if container is not None else "",
        "exit_code": container.exit_code if container is not None else None,
        "created_at": task.created_at, "updated_at": task.updated_at,
        "addresses": [a for att in task.networks_attachments or [] for a in att.addresses or []],
        "err": task.status.err, "status_message": task.status.message,
    })
    return row


def snapshot(view: Tables, revision: int) -> Row:
    return {
        "revision": revision,
        "nodes": [node_row(n) for n in view.all(Node)],
        "services": [service_row(s, view) for s in view.all(Service)],
        "tasks": [task_row(t, view) for t in view.all(Task) if shown(t)],
    }


class Delta:
    """One batch of changes as the page applies it: rows to put, IDs to drop, per kind."""

    def __init__(self) -> None:
        self.put: dict[str, dict[str, Row]] = {"nodes": {}, "services": {}, "tasks": {}}
        self.drop: dict[str, set[str]] = {"nodes": set(), "services": set(), "tasks": set()}

    def __bool__(self) -> bool:
        return any(self.put.values()) or any(self.drop.values())

    def set(self, kind: str, obj_id: str, row: Row | None) -> None:
        if row is None:
            self.put[kind].pop(obj_id, None)
            self.drop[kind].add(obj_id)
        else:
            self.drop[kind].discard(obj_id)
            self.put[kind][obj_id] = row

    def encode(self, revision: int) -> Row:
        return {"revision": revision,
                "put": {k: list(rows.values()) for k, rows in self.put.items()},
                "drop": {k: sorted(ids) for k, ids in self.drop.items()}}


def _row(obj: StoredObject, view: Tables) -> Row | None:
    """The current row of a changed object, read from the view (the latest, whatever the batch
    held in between), None if it is gone or not shown."""
    if isinstance(obj, Node):
        node = view.get(Node, obj.id)
        return node_row(node) if node is not None else None
    if isinstance(obj, Service):
        service = view.get(Service, obj.id)
        return service_row(service, view) if service is not None else None
    task = view.get(Task, obj.id)
    return task_row(task, view) if task is not None and shown(task) else None


def delta(changes: list[Change], view: Tables) -> Delta:
    out = Delta()
    networks_changed = False
    for change in changes:
        obj = change.obj
        if isinstance(obj, Network):
            networks_changed = True
            continue
        kind = obj.kind
        out.set(kind, obj.id, _row(obj, view))
        if isinstance(obj, Service):
            for task in view.tasks_of_service(obj.id):  # their "fresh" may have changed
                if shown(task):
                    out.set("tasks", task.id, task_row(task, view))
    if networks_changed:  # a service's network names: rare, so all services again
        for service in view.all(Service):
            out.set("services", service.id, service_row(service, view))
    return out
