"""How services print in ``service ls``: MODE, REPLICAS (``3/3``, ``1/1 (max 2 per node)``,
job progress), IMAGE without digest, and PORTS as ``*:8080-8081->80-81/tcp`` ranges.
"""

from __future__ import annotations

from typing import Any

from shoal.cli.images import display_image
from shoal.gotemplate import Fields

__all__ = [
    "SERVICE_HEADER",
    "SERVICE_RAW",
    "SERVICE_TABLE",
    "ServiceRow",
    "ingress_ports",
    "mode_name",
]

SERVICE_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Mode}}\t{{.Replicas}}\t{{.Image}}\t{{.Ports}}"
SERVICE_RAW = (
    "id: {{.ID}}\\nname: {{.Name}}\\nmode: {{.Mode}}\\nreplicas: {{.Replicas}}\\nimage: {{.Image}}"
    "\\nports: {{.Ports}}\\n"
)
SERVICE_HEADER = {
    "ID": "ID",
    "Name": "NAME",
    "Mode": "MODE",
    "Replicas": "REPLICAS",
    "Image": "IMAGE",
    "Ports": "PORTS",
}
_UINT32 = 0xFFFFFFFF


def mode_name(spec: dict[str, Any]) -> str:
    mode = spec.get("Mode") or {}
    for key, name in (
        ("Global", "global"),
        ("Replicated", "replicated"),
        ("ReplicatedJob", "replicated job"),
        ("GlobalJob", "global job"),
    ):
        if mode.get(key) is not None:
            return name
    return ""


def _range_text(p_start: int, p_end: int, t_start: int, t_end: int, protocol: str) -> str:
    published = f"{p_start}-{p_end}" if p_end > p_start else str(p_start)
    target = f"{t_start}-{t_end}" if t_end > t_start else str(t_start)
    return f"*:{published}->{target}/{protocol}"


def ingress_ports(ports: list[dict[str, Any]] | None) -> str:
    """docker's ``serviceContext.Ports``: ingress ports, consecutive ones grouped in ranges."""
    if ports is None:
        return ""
    ordered = sorted(ports, key=lambda p: (p.get("Protocol", ""), p.get("PublishedPort", 0)))
    out: list[str] = []
    current: list[Any] = [0, 0, 0, 0, ""]  # published start/end, target start/end, protocol
    for port in ordered:
        if port.get("PublishMode") != "ingress":
            continue
        published, target = int(port.get("PublishedPort", 0)), int(port.get("TargetPort", 0))
        protocol = port.get("Protocol", "")
        is_range = current[3] != current[2]
        overlaps = target <= current[3]
        if (
            protocol != current[4]
            or (published - current[1]) & _UINT32 > 1
            or (target - current[3]) & _UINT32 > 1
            or (is_range and overlaps)
        ):
            if current[0] > 0:
                out.append(_range_text(*current))
            current = [published, published, target, target, protocol]
            continue
        current[1], current[3] = published, target
    if current[0] > 0:
        out.append(_range_text(*current))
    return ", ".join(out)


class ServiceRow(Fields):
    """One ``service ls`` row (docker's ``serviceContext``)."""

    field_names = ("ID", "Name", "Mode", "Replicas", "Image", "Ports")
    type_name = "*service.serviceContext"

    def __init__(self, service: dict[str, Any]) -> None:
        self.service = service
        self.spec: dict[str, Any] = service.get("Spec") or {}

    def ID(self) -> str:
        return str(self.service.get("ID", ""))[:12]

    def Name(self) -> str:
        return str(self.spec.get("Name", ""))

    def Mode(self) -> str:
        return mode_name(self.spec)

    def Replicas(self) -> str:
        status = self.service.get("ServiceStatus") or {}
        running = int(status.get("RunningTasks", 0))
        desired = int(status.get("DesiredTasks", 0))
        completed = int(status.get("CompletedTasks", 0))
        mode = self.spec.get("Mode") or {}
        if mode.get("ReplicatedJob") is not None:
            total = (mode["ReplicatedJob"] or {}).get("TotalCompletions", 0)
            return f"{running}/{desired} ({completed}/{total} completed)"
        if mode.get("GlobalJob") is not None:
            return f"{running}/{desired} ({completed}/{desired + completed} completed)"
        per_node = ((self.spec.get("TaskTemplate") or {}).get("Placement") or {}).get(
            "MaxReplicas", 0
        )
        if self.Mode() == "replicated" and per_node:
            return f"{running}/{desired} (max {per_node} per node)"
        return f"{running}/{desired}"

    def Image(self) -> str:
        container = (self.spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
        return display_image(str(container.get("Image", "")))

    def Ports(self) -> str:
        return ingress_ports((self.service.get("Endpoint") or {}).get("Ports"))
