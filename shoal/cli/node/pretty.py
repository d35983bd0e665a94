"""The context the ``node inspect --pretty`` page (`shoal.cli.node.pretty_page`) calls."""

from __future__ import annotations

import base64
from typing import Any

from shoal.cli.format.fields import dig, pretty_print
from shoal.cli.format.timefmt import go_time_string, parse_timestamp
from shoal.cli.format.units import bytes_size
from shoal.gotemplate import Fields

__all__ = ["NodePretty"]


class NodePretty(Fields):
    """docker's ``nodeInspectContext``: the methods the pretty page calls."""

    type_name = "*node.nodeInspectContext"

    def __init__(self, node: dict[str, Any]) -> None:
        self.node = node

    def embedded(self) -> dict[str, Any]:
        return self.node

    def _get(self, *keys: str) -> Any:
        return dig(self.node, *keys)

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
