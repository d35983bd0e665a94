"""The ``node ls`` row fields and its table, raw and header formats."""

from __future__ import annotations

from typing import Any

from shoal.cli.format.fields import dig, pretty_print
from shoal.gotemplate import Fields

__all__ = ["NODE_HEADER", "NODE_RAW", "NODE_TABLE", "NodeRow"]

NODE_TABLE = (
    "table {{.ID}} {{if .Self}}*{{else}} {{ end }}\t{{.Hostname}}\t{{.Status}}\t{{.Availability}}"
    "\t{{.ManagerStatus}}\t{{.EngineVersion}}"
)
NODE_RAW = (
    "node_id: {{.ID}}\\nhostname: {{.Hostname}}\\nstatus: {{.Status}}\\navailability: "
    "{{.Availability}}\\nmanager_status: {{.ManagerStatus}}\\n"
)
NODE_HEADER = {
    "ID": "ID",
    "Self": "",
    "Hostname": "HOSTNAME",
    "Status": "STATUS",
    "Availability": "AVAILABILITY",
    "ManagerStatus": "MANAGER STATUS",
    "EngineVersion": "ENGINE VERSION",
    "TLSStatus": "TLS STATUS",
}


class NodeRow(Fields):
    """One ``node ls`` row (docker's ``nodeContext``)."""

    field_names = (
        "ID",
        "Self",
        "Hostname",
        "Status",
        "Availability",
        "ManagerStatus",
        "TLSStatus",
        "EngineVersion",
    )
    type_name = "*node.nodeContext"

    def __init__(self, node: dict[str, Any], info: dict[str, Any]) -> None:
        self.node, self.info = node, info

    def ID(self) -> str:
        return str(self.node.get("ID", ""))

    def Self(self) -> bool:
        return self.ID() == (dig(self.info, "Swarm", "NodeID") or "")

    def Hostname(self) -> str:
        return str(dig(self.node, "Description", "Hostname") or "")

    def Status(self) -> str:
        return pretty_print(dig(self.node, "Status", "State") or "")

    def Availability(self) -> str:
        return pretty_print(dig(self.node, "Spec", "Availability") or "")

    def ManagerStatus(self) -> str:
        status = self.node.get("ManagerStatus")
        if not status:
            return ""
        return pretty_print("Leader" if status.get("Leader") else status.get("Reachability") or "")

    def TLSStatus(self) -> str:
        cluster_tls = dig(self.info, "Swarm", "Cluster", "TLSInfo") or {}
        node_tls = dig(self.node, "Description", "TLSInfo") or {}
        if not cluster_tls or not node_tls:
            return "Unknown"
        return "Ready" if node_tls == cluster_tls else "Needs Rotation"

    def EngineVersion(self) -> str:
        return str(dig(self.node, "Description", "Engine", "EngineVersion") or "")
