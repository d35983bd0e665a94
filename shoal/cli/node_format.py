"""How nodes print: the ``node ls`` row fields and the ``node inspect --pretty`` page."""

from __future__ import annotations

import base64
from typing import Any

from shoal.cli.templates import Fields
from shoal.cli.timefmt import go_time_string, parse_timestamp
from shoal.cli.units import bytes_size

__all__ = ["NODE_HEADER", "NODE_RAW", "NODE_TABLE", "NodePretty", "NodeRow", "pretty_print"]

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


def pretty_print(value: Any) -> str:
    """docker's ``PrettyPrint``: capitalise the first letter, lower-case the rest."""
    text = "None" if value is None else str(value)
    if len(text) <= 1:
        return text.lower()
    return text[0].upper() + text[1:].lower()


def _dig(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


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
        return self.ID() == (_dig(self.info, "Swarm", "NodeID") or "")

    def Hostname(self) -> str:
        return str(_dig(self.node, "Description", "Hostname") or "")

    def Status(self) -> str:
        return pretty_print(_dig(self.node, "Status", "State") or "")

    def Availability(self) -> str:
        return pretty_print(_dig(self.node, "Spec", "Availability") or "")

    def ManagerStatus(self) -> str:
        status = self.node.get("ManagerStatus")
        if not status:
            return ""
        return pretty_print("Leader" if status.get("Leader") else status.get("Reachability") or "")

    def TLSStatus(self) -> str:
        cluster_tls = _dig(self.info, "Swarm", "Cluster", "TLSInfo") or {}
        node_tls = _dig(self.node, "Description", "TLSInfo") or {}
        if not cluster_tls or not node_tls:
            return "Unknown"
        return "Ready" if node_tls == cluster_tls else "Needs Rotation"

    def EngineVersion(self) -> str:
        return str(_dig(self.node, "Description", "Engine", "EngineVersion") or "")


class NodePretty(Fields):
    """docker's ``nodeInspectContext``: the methods the pretty page calls."""

    type_name = "*node.nodeInspectContext"

    def __init__(self, node: dict[str, Any]) -> None:
        self.node = node

    def embedded(self) -> dict[str, Any]:
        return self.node

    def _get(self, *keys: str) -> Any:
        return _dig(self.node, *keys)

    def ID(self) -> str:
        return str(self.node.get("ID", ""))

    def Name(self) -> str:
        return str(self._get("Spec", "Name") or "")

    def Labels(self) -> dict[str, str]:
        return self._get("Spec", "Labels") or {}

    def Hostname(self) -> str:
        return str(self._get("Description", "Hostname") or "")

    def CreatedAt(self) -> str:
        stamp = parse_timestamp(self.node.get("CreatedAt"))
        return pretty_print(go_time_string(stamp if stamp is not None else 0))

    def StatusState(self) -> str:
        return pretty_print(self._get("Status", "State") or "")

    def HasStatusMessage(self) -> bool:
        return bool(self._get("Status", "Message"))

    def StatusMessage(self) -> str:
        return pretty_print(self._get("Status", "Message") or "")

    def SpecAvailability(self) -> str:
        return pretty_print(self._get("Spec", "Availability") or "")

    def StatusAddr(self) -> str:
        return str(self._get("Status", "Addr") or "")

    def HasManagerStatus(self) -> bool:
        return bool(self.node.get("ManagerStatus"))

    def ManagerStatusAddr(self) -> str:
        return str(self._get("ManagerStatus", "Addr") or "")

    def ManagerStatusReachability(self) -> str:
        return pretty_print(self._get("ManagerStatus", "Reachability") or "")

    def IsManagerStatusLeader(self) -> bool:
        return bool(self._get("ManagerStatus", "Leader"))

    def PlatformOS(self) -> str:
        return str(self._get("Description", "Platform", "OS") or "")

    def PlatformArchitecture(self) -> str:
        return str(self._get("Description", "Platform", "Architecture") or "")

    def ResourceNanoCPUs(self) -> int:
        return int((self._get("Description", "Resources", "NanoCPUs") or 0) // 1_000_000_000)

    def ResourceMemory(self) -> str:
        memory = self._get("Description", "Resources", "MemoryBytes") or 0
        return bytes_size(float(memory)) if memory else ""

    def HasEnginePlugins(self) -> bool:
        return bool(self._get("Description", "Engine", "Plugins"))

    def EnginePlugins(self) -> dict[str, str]:
        by_type: dict[str, list[str]] = {}
        for plugin in self._get("Description", "Engine", "Plugins") or []:
            by_type.setdefault(plugin.get("Type", ""), []).append(plugin.get("Name", ""))
        return {kind: ", ".join(names) for kind, names in by_type.items()}

    def EngineLabels(self) -> dict[str, str]:
        return self._get("Description", "Engine", "Labels") or {}

    def EngineVersion(self) -> str:
        return str(self._get("Description", "Engine", "EngineVersion") or "")

    def HasTLSInfo(self) -> bool:
        return bool(self._get("Description", "TLSInfo"))

    def TLSInfoTrustRoot(self) -> str:
        return str(self._get("Description", "TLSInfo", "TrustRoot") or "")

    def TLSInfoCertIssuerSubject(self) -> str:
        return str(self._get("Description", "TLSInfo", "CertIssuerSubject") or "")

    def TLSInfoCertIssuerPublicKey(self) -> str:
        value = self._get("Description", "TLSInfo", "CertIssuerPublicKey") or ""
        return str(value) if value else base64.b64encode(b"").decode()
