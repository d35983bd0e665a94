"""``shoal version`` and a short ``shoal info`` (the swarm part of ``docker info``)."""

from __future__ import annotations

import platform
from typing import Any

import click

from shoal import __version__
from shoal.cli.app import App
from shoal.cli.client import MAX_API_VERSION, DaemonError, DaemonUnreachable
from shoal.cli.command import ShoalCommand, pass_app
from shoal.cli.errors import CliError
from shoal.cli.format.tabwriter import TabWriter
from shoal.cli.format.timefmt import ansic, human_duration, parse_timestamp
from shoal.cli.format.units import bytes_size
from shoal.cli.formatting import parse_template
from shoal.cli.options import inspect_format_option
from shoal.gotemplate import TemplateError

__all__ = ["info", "version"]

_VERSION_TEMPLATE = """{{with .Client -}}
Client:
 Version:\t{{.Version}}
 API version:\t{{.ApiVersion}}{{if ne .ApiVersion .DefaultAPIVersion}} (downgraded from {{.DefaultAPIVersion}}){{end}}
 Python version:\t{{.PythonVersion}}
 OS/Arch:\t{{.Os}}/{{.Arch}}
 Context:\t{{.Context}}
{{- end}}

{{- if ne .Server nil}}{{with .Server}}

Server:{{if .Platform}}{{if .Platform.Name}} {{.Platform.Name}}{{end}}{{end}}
 {{- range $component := .Components}}
 {{$component.Name}}:
  Version:\t{{$component.Version}}
  {{- if eq $component.Name "Engine" }}
  API version:\t{{index .Details "ApiVersion"}} (minimum version {{index .Details "MinAPIVersion"}})
  Go version:\t{{index .Details "GoVersion"}}
  Git commit:\t{{index .Details "GitCommit"}}
  Built:\t{{index .Details "BuildTime"}}
  OS/Arch:\t{{index .Details "Os"}}/{{index .Details "Arch"}}
  Experimental:\t{{index .Details "Experimental"}}
  {{- end}}
 {{- end}}
 {{- end}}{{- end}}"""

_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def _reformat(build_time: str) -> str:
    stamp = parse_timestamp(build_time)
    return ansic(stamp) if stamp is not None else build_time


def _server_version(server: dict[str, Any]) -> dict[str, Any]:
    components = server.setdefault("Components", []) or []
    server["Components"] = components
    engine = next((c for c in components if c.get("Name") == "Engine"), None)
    if engine is None:
        components.append(
            {
                "Name": "Engine",
                "Version": server.get("Version", ""),
                "Details": {
                    "ApiVersion": server.get("ApiVersion", ""),
                    "MinAPIVersion": server.get("MinAPIVersion", ""),
                    "GitCommit": server.get("GitCommit", ""),
                    "GoVersion": server.get("GoVersion", ""),
                    "Os": server.get("Os", ""),
                    "Arch": server.get("Arch", ""),
                    "BuildTime": _reformat(server.get("BuildTime", "")),
                    "Experimental": "true" if server.get("Experimental") else "false",
                },
            }
        )
    elif isinstance(engine.get("Details"), dict) and "BuildTime" in engine["Details"]:
        engine["Details"]["BuildTime"] = _reformat(engine["Details"]["BuildTime"])
    return server


@click.command("version", cls=ShoalCommand, use="[OPTIONS]")
@inspect_format_option()
@click.argument("args", nargs=-1)
@pass_app
def version(app: App, fmt: str, args: tuple[str, ...]) -> None:
    """Show the Shoal version information"""
    template = parse_template(
        {"": _VERSION_TEMPLATE, "json": "{{json .}}"}.get(fmt, fmt), status=64
    )
    failure: Exception | None = None
    data: dict[str, Any] = {
        "Client": {
            "Version": __version__,
            "DefaultAPIVersion": MAX_API_VERSION,
            "PythonVersion": platform.python_version(),
            "Os": platform.system().lower(),
            "Arch": _ARCH.get(platform.machine(), platform.machine()),
            "Context": "default",
        },
        "Server": None,
    }
    try:
        data["Client"]["ApiVersion"] = app.client.version
        data["Server"] = _server_version(app.client.get("/version") or {})
    except (DaemonError, DaemonUnreachable) as exc:
        data["Client"]["ApiVersion"] = MAX_API_VERSION
        failure = exc
    writer = TabWriter(minwidth=20, tabwidth=1, padding=1)
    try:
        writer.write(template.execute(data))
    except TemplateError as exc:
        raise CliError(f"template: {exc}") from exc
    writer.write("\n")
    app.out(writer.flush())
    if failure is not None:
        raise CliError(str(failure))


def _swarm_lines(swarm: dict[str, Any]) -> list[str]:
    """docker's ``printSwarmInfo``."""
    state = swarm.get("LocalNodeState", "")
    lines = [f" Swarm: {state}"]
    if state in ("inactive", "locked"):
        return lines
    lines.append(f"  NodeID: {swarm.get('NodeID', '')}")
    if swarm.get("Error"):
        lines.append(f"  Error: {swarm['Error']}")
    lines.append(f"  Is Manager: {'true' if swarm.get('ControlAvailable') else 'false'}")
    cluster = swarm.get("Cluster")
    if cluster and swarm.get("ControlAvailable") and not swarm.get("Error") and state != "error":
        spec = cluster.get("Spec") or {}
        lines += [
            f"  ClusterID: {cluster.get('ID', '')}",
            f"  Managers: {swarm.get('Managers', 0)}",
            f"  Nodes: {swarm.get('Nodes', 0)}",
        ]
        if cluster.get("DefaultAddrPool") is not None:
            pools = "".join(p + "  " for p in cluster["DefaultAddrPool"])
            lines += [
                f"  Default Address Pool: {pools}",
                f"  SubnetSize: {cluster.get('SubnetSize', 0)}",
            ]
        if cluster.get("DataPathPort"):
            lines.append(f"  Data Path Port: {cluster['DataPathPort']}")
        raft = spec.get("Raft") or {}
        lines += [
            "  Orchestration:",
            f"   Task History Retention Limit: {(spec.get('Orchestration') or {}).get('TaskHistoryRetentionLimit') or 0}",
            "  Raft:",
            f"   Snapshot Interval: {raft.get('SnapshotInterval', 0)}",
        ]
        if raft.get("KeepOldSnapshots") is not None:
            lines.append(f"   Number of Old Snapshots to Retain: {raft['KeepOldSnapshots']}")
        lines += [
            f"   Heartbeat Tick: {raft.get('HeartbeatTick', 0)}",
            f"   Election Tick: {raft.get('ElectionTick', 0)}",
            "  Dispatcher:",
            f"   Heartbeat Period: {human_duration((spec.get('Dispatcher') or {}).get('HeartbeatPeriod') or 0)}",
            "  CA Configuration:",
            f"   Expiry Duration: {human_duration((spec.get('CAConfig') or {}).get('NodeCertExpiry') or 0)}",
            f"   Force Rotate: {(spec.get('CAConfig') or {}).get('ForceRotate') or 0}",
            *_external_cas(spec.get("CAConfig") or {}),
            f"  Autolock Managers: {'true' if (spec.get('EncryptionConfig') or {}).get('AutoLockManagers') else 'false'}",
            f"  Root Rotation In Progress: {'true' if cluster.get('RootRotationInProgress') else 'false'}",
        ]
    lines.append(f"  Node Address: {swarm.get('NodeAddr', '')}")
    managers = sorted(m.get("Addr", "") for m in swarm.get("RemoteManagers") or [])
    if managers:
        lines.append("  Manager Addresses:")
        lines += [f"   {addr}" for addr in managers]
    return lines


def _external_cas(ca_config: dict[str, Any]) -> list[str]:
    """docker info's lines for the swarm's external CAs (none: no lines)."""
    cas = ca_config.get("ExternalCAs") or []
    if not cas:
        return []
    return ["   External CAs:", *(f"     {ca.get('Protocol', '')}: {ca.get('URL', '')}" for ca in cas)]


@click.command("info", cls=ShoalCommand, use="[OPTIONS]")
@inspect_format_option()
@click.argument("args", nargs=-1)
@pass_app
def info(app: App, fmt: str, args: tuple[str, ...]) -> None:
    """Display system-wide information"""
    data = app.client.get("/info") or {}
    if fmt:
        template = parse_template("{{json .}}" if fmt == "json" else fmt, status=64)
        try:
            app.println(template.execute(data))
        except TemplateError as exc:
            raise CliError(f"template: {exc}") from exc
        return
    lines = ["Client:", f" Version:    {__version__}", " Context:    default", "", "Server:"]
    if data.get("ServerVersion"):
        lines.append(f" Server Version: {data['ServerVersion']}")
    lines += _swarm_lines(data.get("Swarm") or {})
    for label, key in (
        ("Kernel Version", "KernelVersion"),
        ("Operating System", "OperatingSystem"),
        ("OSType", "OSType"),
        ("Architecture", "Architecture"),
    ):
        if data.get(key):
            lines.append(f" {label}: {data[key]}")
    lines += [
        f" CPUs: {data.get('NCPU', 0)}",
        f" Total Memory: {bytes_size(float(data.get('MemTotal') or 0))}",
    ]
    for label, key in (("Name", "Name"), ("ID", "ID")):
        if data.get(key):
            lines.append(f" {label}: {data[key]}")
    app.out("\n".join(lines) + "\n")
