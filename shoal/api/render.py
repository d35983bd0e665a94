"""Stored objects -> the Docker API's JSON: internal fields dropped, computed ones added
(ServiceStatus, insertDefaults, the engine's network format)."""

from __future__ import annotations

from typing import Any

from shoal.model.codec import to_builtins
from shoal.model.objects import Cluster, Config, Network, Node, Secret, Service, Task
from shoal.model.specs import SECOND
from shoal.model.states import TaskState
from shoal.model.volumes import Volume
from shoal.store.tables import Tables

__all__ = ["config_json", "down_nodes", "network_json", "node_json",
           "secret_json", "service_json", "swarm_json", "task_json", "volume_json"]


def _builtins(obj: object) -> Any:
    """Plain JSON data with null fields left out, as Go's omitempty pointers are (docker-py
    tests ``'Global' in Spec['Mode']``)."""
    return _strip(to_builtins(obj))


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def node_json(node: Node) -> dict[str, Any]:
    out: dict[str, Any] = _builtins(node)
    out.pop("CertRole", None)
    out.pop("Role", None)
    out.pop("EtcdMember", None)
    out.pop("RotateCertificate", None)
    out.pop("CertExpiry", None)
    return out


def _hide_registry_auth(task_spec: dict[str, Any] | None) -> None:
    # --with-registry-auth credentials travel to the nodes in the spec, but the API never
    # shows them (swarmkit's convert drops PullOptions too).
    cs = (task_spec or {}).get("ContainerSpec")
    if isinstance(cs, dict):
        cs.pop("PullOptions", None)


def task_json(task: Task) -> dict[str, Any]:
    out: dict[str, Any] = _builtins(task)
    out.pop("EndpointSpec", None)
    out.pop("ServiceName", None)
    out.pop("ServiceLabels", None)
    _hide_registry_auth(out.get("Spec"))
    return out


def down_nodes(view: Tables) -> frozenset[str]:
    return frozenset(n.id for n in view.all(Node) if n.status.state == "down")


def _service_status(view: Tables, svc: Service, down: frozenset[str]) -> dict[str, int]:
    # As dockerd: tasks on nodes that are down do not count (their last report says running).
    tasks = [t for t in view.tasks_of_service(svc.id) if t.node_id not in down]
    mode = svc.spec.mode
    iteration = svc.job_status.job_iteration.index if svc.job_status else None

    def current(t: Task) -> bool:
        return iteration is None or (t.job_iteration is not None and t.job_iteration.index == iteration)

    running = sum(1 for t in tasks if t.status.state == TaskState.RUNNING and current(t))
    completed = sum(1 for t in tasks if t.status.state == TaskState.COMPLETE and current(t))
    if mode.replicated is not None:
        desired = mode.replicated.replicas or 0
    elif mode.replicated_job is not None:
        desired = mode.replicated_job.max_concurrent or 0
    elif mode.global_job is not None:
        desired = sum(1 for t in tasks if current(t) and t.desired_state == TaskState.COMPLETE
                      and t.status.state != TaskState.COMPLETE)
    else:
        desired = sum(1 for t in tasks if t.desired_state == TaskState.RUNNING)
    return {"RunningTasks": running, "DesiredTasks": desired, "CompletedTasks": completed}


def _insert_defaults(spec: dict[str, Any]) -> None:
    tt = spec.setdefault("TaskTemplate", {})
    cs = tt.get("ContainerSpec") or {}
    tt["ContainerSpec"] = cs
    cs.setdefault("StopGracePeriod", 10 * SECOND)
    cs.setdefault("DNSConfig", {})
    cs.setdefault("Isolation", "default")
    tt["Resources"] = tt.get("Resources") or {"Limits": {}, "Reservations": {}}
    rp = tt.get("RestartPolicy")
    if rp is None:
        tt["RestartPolicy"] = {"Condition": "any", "Delay": 5 * SECOND, "MaxAttempts": 0}
    elif rp.get("Delay") is None:
        rp["Delay"] = 5 * SECOND
    tt["Placement"] = tt.get("Placement") or {}
    for key in ("UpdateConfig", "RollbackConfig"):
        cfg = spec.get(key)
        if cfg is None:
            spec[key] = {"Parallelism": 1, "FailureAction": "pause", "Monitor": 5 * SECOND,
                         "MaxFailureRatio": 0, "Order": "stop-first"}
        elif not cfg.get("Monitor"):
            cfg["Monitor"] = 5 * SECOND


def service_json(view: Tables, svc: Service, *, status: bool = False, insert_defaults: bool = False,
                 down: frozenset[str] | None = None) -> dict[str, Any]:
    """``down``: the down nodes, when the caller renders many services at once."""
    out: dict[str, Any] = _builtins(svc)
    out.pop("PendingAllocation", None)
    for key in ("Spec", "PreviousSpec"):
        _hide_registry_auth((out.get(key) or {}).get("TaskTemplate"))
    if insert_defaults:
        _insert_defaults(out["Spec"])
    if status:
        out["ServiceStatus"] = _service_status(view, svc, down_nodes(view) if down is None else down)
    return out


def network_json(net: Network) -> dict[str, Any]:
    """As dockerd shows a swarm network: the allocated IPAM (the requested one until the
    allocator has run) and the VXLAN ID among the options."""
    spec = net.spec
    ipam = net.current_ipam()
    ipam_cfg = [
        {k: v for k, v in (("Subnet", c.subnet), ("IPRange", c.ip_range), ("Gateway", c.gateway)) if v}
        for c in net.subnets()
    ]
    options = dict(spec.options or {})
    options.update((net.driver_state or {}).get("Options", {}))
    return {
        "Name": spec.name, "Id": net.id, "Created": net.created_at, "Scope": "swarm",
        "Driver": spec.driver or "overlay", "EnableIPv4": True, "EnableIPv6": bool(spec.enable_ipv6),
        "IPAM": {"Driver": (ipam.driver if ipam else "") or "default",
                 "Options": (ipam.options if ipam else None) or {}, "Config": ipam_cfg},
        "Internal": spec.internal, "Attachable": spec.attachable, "Ingress": spec.ingress,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": {},
        "Options": options, "Labels": spec.labels or {},
    }


def swarm_json(cluster: Cluster, *, with_tokens: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = _builtins(cluster)
    out.pop("RootCA", None)
    out.pop("NetworkBootstrapKeys", None)
    out.pop("EncryptionKeyLamportClock", None)
    out.pop("SecretsKey", None)
    out.pop("UnlockKey", None)
    out.pop("BlacklistedCertificates", None)
    if not with_tokens:
        out.pop("JoinTokens", None)
    return out



def volume_json(vol: Volume) -> dict[str, Any]:
    """Labels and Options are objects, {} when none (the schema's type, not Go's null)."""
    out: dict[str, Any] = to_builtins(vol)
    out["Labels"] = out.get("Labels") or {}
    out["Options"] = out.get("Options") or {}
    return out


def secret_json(secret: Secret) -> dict[str, Any]:
    """Never the data: neither ``Spec.Data`` (the store holds none) nor the sealed box."""
    out: dict[str, Any] = _builtins(secret)
    out.pop("Sealed", None)
    out["Spec"].pop("Data", None)
    out["Spec"]["Labels"] = out["Spec"].get("Labels") or {}
    return out


def config_json(config: Config) -> dict[str, Any]:
    out: dict[str, Any] = _builtins(config)
    out["Spec"]["Labels"] = out["Spec"].get("Labels") or {}
    return out
