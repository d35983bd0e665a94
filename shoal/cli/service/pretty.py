"""``service inspect --pretty``: docker's page template and the context methods it calls."""

from __future__ import annotations

from typing import Any

from shoal.cli.format.fields import dig
from shoal.cli.format.timefmt import human_duration, parse_timestamp, since
from shoal.cli.format.units import bytes_size, format_duration
from shoal.gotemplate import Fields

__all__ = ["ServicePretty"]


class ServicePretty(Fields):
    """docker's ``serviceInspectContext``; `network_names` maps network IDs to names."""

    type_name = "*service.serviceInspectContext"

    def __init__(self, service: dict[str, Any], network_names: dict[str, str], now_ns: int) -> None:
        self.service, self.network_names, self.now_ns = service, network_names, now_ns
        self.spec: dict[str, Any] = service.get("Spec") or {}
        self.task: dict[str, Any] = self.spec.get("TaskTemplate") or {}
        self.container: dict[str, Any] = self.task.get("ContainerSpec") or {}

    def embedded(self) -> dict[str, Any]:
        return self.service

    def ID(self) -> str:
        return str(self.service.get("ID", ""))

    def Name(self) -> str:
        return str(self.spec.get("Name", ""))

    def Labels(self) -> dict[str, str]:
        return self.spec.get("Labels") or {}

    def IsModeGlobal(self) -> bool:
        return dig(self.spec, "Mode", "Global") is not None

    def IsModeReplicated(self) -> bool:
        return dig(self.spec, "Mode", "Replicated") is not None

    def ModeReplicatedReplicas(self) -> Any:
        return dig(self.spec, "Mode", "Replicated", "Replicas")

    def HasUpdateStatus(self) -> bool:
        return bool(dig(self.service, "UpdateStatus", "State"))

    def UpdateStatusState(self) -> str:
        return str(dig(self.service, "UpdateStatus", "State") or "")

    def HasUpdateStatusStarted(self) -> bool:
        return dig(self.service, "UpdateStatus", "StartedAt") is not None

    def _ago(self, key: str) -> str:
        stamp = parse_timestamp(dig(self.service, "UpdateStatus", key))
        return human_duration(since(stamp, self.now_ns)) + " ago"

    def UpdateStatusStarted(self) -> str:
        return self._ago("StartedAt")

    def UpdateIsCompleted(self) -> bool:
        status = self.service.get("UpdateStatus") or {}
        return status.get("State") == "completed" and status.get("CompletedAt") is not None

    def UpdateStatusCompleted(self) -> str:
        return self._ago("CompletedAt")

    def UpdateStatusMessage(self) -> str:
        return str(dig(self.service, "UpdateStatus", "Message") or "")

    def TaskPlacementConstraints(self) -> list[str]:
        return list(dig(self.task, "Placement", "Constraints") or [])

    def TaskPlacementPreferences(self) -> list[str]:
        prefs = dig(self.task, "Placement", "Preferences") or []
        return [
            f"spread={p['Spread'].get('SpreadDescriptor', '')}" for p in prefs if p.get("Spread")
        ]

    def MaxReplicas(self) -> int:
        return int(dig(self.task, "Placement", "MaxReplicas") or 0)

    def _config(self, key: str) -> dict[str, Any]:
        return self.spec.get(key) or {}

    def HasUpdateConfig(self) -> bool:
        return self.spec.get("UpdateConfig") is not None

    def HasRollbackConfig(self) -> bool:
        return self.spec.get("RollbackConfig") is not None

    def UpdateParallelism(self) -> int:
        return int(self._config("UpdateConfig").get("Parallelism", 0))

    def HasUpdateDelay(self) -> bool:
        return int(self._config("UpdateConfig").get("Delay", 0)) > 0

    def UpdateDelay(self) -> str:
        return format_duration(int(self._config("UpdateConfig").get("Delay", 0)))

    def UpdateOnFailure(self) -> str:
        return str(self._config("UpdateConfig").get("FailureAction", ""))

    def UpdateOrder(self) -> str:
        return str(self._config("UpdateConfig").get("Order", ""))

    def HasUpdateMonitor(self) -> bool:
        return int(self._config("UpdateConfig").get("Monitor", 0)) > 0

    def UpdateMonitor(self) -> str:
        return format_duration(int(self._config("UpdateConfig").get("Monitor", 0)))

    def UpdateMaxFailureRatio(self) -> float:
        return float(self._config("UpdateConfig").get("MaxFailureRatio", 0))

    def RollbackParallelism(self) -> int:
        return int(self._config("RollbackConfig").get("Parallelism", 0))

    def HasRollbackDelay(self) -> bool:
        return int(self._config("RollbackConfig").get("Delay", 0)) > 0

    def RollbackDelay(self) -> str:
        return format_duration(int(self._config("RollbackConfig").get("Delay", 0)))

    def RollbackOnFailure(self) -> str:
        return str(self._config("RollbackConfig").get("FailureAction", ""))

    def HasRollbackMonitor(self) -> bool:
        return int(self._config("RollbackConfig").get("Monitor", 0)) > 0

    def RollbackMonitor(self) -> str:
        return format_duration(int(self._config("RollbackConfig").get("Monitor", 0)))

    def RollbackMaxFailureRatio(self) -> float:
        return float(self._config("RollbackConfig").get("MaxFailureRatio", 0))

    def RollbackOrder(self) -> str:
        return str(self._config("RollbackConfig").get("Order", ""))

    def ContainerImage(self) -> str:
        return str(self.container.get("Image", ""))

    def ContainerArgs(self) -> list[str]:
        return list(self.container.get("Args") or [])

    def ContainerEnv(self) -> list[str]:
        return list(self.container.get("Env") or [])

    def ContainerWorkDir(self) -> str:
        return str(self.container.get("Dir", ""))

    def ContainerUser(self) -> str:
        return str(self.container.get("User", ""))

    def HasContainerInit(self) -> bool:
        return self.container.get("Init") is not None

    def ContainerInit(self) -> bool:
        return bool(self.container.get("Init"))

    def ContainerMounts(self) -> list[dict[str, Any]]:
        return [
            {
                "Target": m.get("Target", ""),
                "Source": m.get("Source", ""),
                "ReadOnly": bool(m.get("ReadOnly")),
                "Type": m.get("Type", ""),
            }
            for m in self.container.get("Mounts") or []
        ]

    def ContainerSysCtls(self) -> dict[str, str]:
        return self.container.get("Sysctls") or {}

    def HasCapabilities(self) -> bool:
        return self.HasCapabilityAdd() or self.HasCapabilityDrop()

    def HasCapabilityAdd(self) -> bool:
        return bool(self.container.get("CapabilityAdd"))

    def HasCapabilityDrop(self) -> bool:
        return bool(self.container.get("CapabilityDrop"))

    def CapabilityAdd(self) -> str:
        return ", ".join(self.container.get("CapabilityAdd") or [])

    def CapabilityDrop(self) -> str:
        return ", ".join(self.container.get("CapabilityDrop") or [])

    def Configs(self) -> list[dict[str, Any]]:
        return list(self.container.get("Configs") or [])

    def Secrets(self) -> list[dict[str, Any]]:
        return list(self.container.get("Secrets") or [])

    def HasLogDriver(self) -> bool:
        return self.task.get("LogDriver") is not None

    def HasLogDriverName(self) -> bool:
        return bool(dig(self.task, "LogDriver", "Name"))

    def LogDriverName(self) -> str:
        return str(dig(self.task, "LogDriver", "Name") or "")

    def LogOpts(self) -> dict[str, str]:
        return dig(self.task, "LogDriver", "Options") or {}

    def _resources(self, key: str) -> dict[str, Any]:
        return dig(self.task, "Resources", key) or {}

    def HasResources(self) -> bool:
        return self.task.get("Resources") is not None

    def HasResourceReservations(self) -> bool:
        res = self._resources("Reservations")
        return int(res.get("NanoCPUs", 0)) > 0 or int(res.get("MemoryBytes", 0)) > 0

    def ResourceReservationNanoCPUs(self) -> float:
        return int(self._resources("Reservations").get("NanoCPUs", 0)) / 1e9

    def ResourceReservationMemory(self) -> str:
        memory = int(self._resources("Reservations").get("MemoryBytes", 0))
        return bytes_size(memory) if memory else ""

    def HasResourceLimits(self) -> bool:
        res = self._resources("Limits")
        return any(int(res.get(k, 0)) > 0 for k in ("NanoCPUs", "MemoryBytes", "Pids"))

    def ResourceLimitsNanoCPUs(self) -> float:
        return int(self._resources("Limits").get("NanoCPUs", 0)) / 1e9

    def ResourceLimitMemory(self) -> str:
        memory = int(self._resources("Limits").get("MemoryBytes", 0))
        return bytes_size(memory) if memory else ""

    def ResourceLimitPids(self) -> int:
        return int(self._resources("Limits").get("Pids", 0))

    def Networks(self) -> list[str]:
        return [
            self.network_names.get(n.get("Target", ""), n.get("Target", ""))
            for n in self.task.get("Networks") or []
        ]

    def EndpointMode(self) -> str:
        return str(dig(self.spec, "EndpointSpec", "Mode") or "")

    def Ports(self) -> list[dict[str, Any]]:
        return [
            {
                "PublishedPort": p.get("PublishedPort", 0),
                "Protocol": p.get("Protocol", ""),
                "TargetPort": p.get("TargetPort", 0),
                "PublishMode": p.get("PublishMode", ""),
            }
            for p in dig(self.service, "Endpoint", "Ports") or []
        ]

    def Healthcheck(self) -> dict[str, Any] | None:
        health = self.container.get("Healthcheck")
        if health is None:
            return None
        return {
            "Interval": format_duration(int(health.get("Interval") or 0)),
            "Retries": int(health.get("Retries") or 0),
            "StartPeriod": format_duration(int(health.get("StartPeriod") or 0)),
            "Timeout": format_duration(int(health.get("Timeout") or 0)),
            "Test": list(health.get("Test") or []),
        }
