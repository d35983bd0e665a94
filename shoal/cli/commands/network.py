"""``shoal network create|ls|inspect|rm``."""

from __future__ import annotations

import ipaddress
import sys
from typing import Any

import click

from shoal.cli import flagtypes as ft
from shoal.cli.app import App
from shoal.cli.client import DaemonError
from shoal.cli.command import ShoalGroup, changed, pass_app
from shoal.cli.errors import CliError
from shoal.cli.format.natsort import natural_sorted
from shoal.cli.format.timefmt import go_time_string, parse_timestamp
from shoal.cli.formatting import list_format, print_inspect, render_list
from shoal.cli.options import filter_option, inspect_format_option, list_format_option
from shoal.gotemplate import Fields

__all__ = ["NetworkRow", "ipam_config", "network"]

_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
_RAW = "network_id: {{.ID}}\\nname: {{.Name}}\\ndriver: {{.Driver}}\\nscope: {{.Scope}}\\n"
_HEADER = {
    "ID": "NETWORK ID",
    "Name": "NAME",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "IPv4": "IPV4",
    "IPv6": "IPV6",
    "Internal": "INTERNAL",
    "Labels": "LABELS",
    "CreatedAt": "CREATED AT",
}
_INGRESS_WARNING = (
    "WARNING! Before removing the routing-mesh network, make sure all the nodes in your swarm "
    "run the same docker engine version. Otherwise, removal may not be effective and "
    "functionality of newly create ingress networks will be impaired.\n"
    "Are you sure you want to continue?"
)


class NetworkRow(Fields):
    """One ``network ls`` row (docker's ``networkContext``)."""

    field_names = (
        "ID",
        "Name",
        "Driver",
        "Scope",
        "IPv4",
        "IPv6",
        "Internal",
        "Labels",
        "CreatedAt",
    )
    type_name = "*network.networkContext"

    def __init__(self, net: dict[str, Any], trunc: bool) -> None:
        self.net, self.trunc = net, trunc

    def ID(self) -> str:
        ident = str(self.net.get("Id", ""))
        return ident[:12] if self.trunc else ident

    def Name(self) -> str:
        return str(self.net.get("Name", ""))

    def Driver(self) -> str:
        return str(self.net.get("Driver", ""))

    def Scope(self) -> str:
        return str(self.net.get("Scope", ""))

    def IPv4(self) -> str:
        return "true" if self.net.get("EnableIPv4") else "false"

    def IPv6(self) -> str:
        return "true" if self.net.get("EnableIPv6") else "false"

    def Internal(self) -> str:
        return "true" if self.net.get("Internal") else "false"

    def Labels(self) -> str:
        labels = self.net.get("Labels")
        return ",".join(f"{k}={v}" for k, v in labels.items()) if labels else ""

    def Label(self, name: str) -> str:
        return str((self.net.get("Labels") or {}).get(name, ""))

    def CreatedAt(self) -> str:
        return go_time_string(parse_timestamp(self.net.get("Created")) or 0)


def _contains(subnet: str, data: str) -> bool:
    try:
        net = ipaddress.ip_network(subnet, strict=False)
    except ValueError as exc:
        raise CliError(f"invalid subnet: invalid CIDR address: {subnet}") from exc
    try:
        ip = ipaddress.ip_interface(data).ip if "/" in data else ipaddress.ip_address(data)
    except ValueError as exc:
        raise CliError(
            f"invalid CIDR address: {data}" if "/" in data else f"invalid IP: {data}"
        ) from exc
    return ip in net


def ipam_config(subnets: list[str], ranges: list[str], gateways: list[str]) -> list[dict[str, Any]]:
    """docker's ``createIPAMConfig``: attach each range and gateway to its subnet."""
    if len(subnets) < len(ranges) or len(subnets) < len(gateways):
        raise CliError("every ip-range or gateway must have a corresponding subnet")
    configs: dict[str, dict[str, Any]] = {}
    for subnet in subnets:
        for other in configs:
            if _contains(subnet, other) or _contains(other, subnet):
                raise CliError("multiple overlapping subnet configuration is not supported")
        configs[subnet] = {"Subnet": subnet}
    for key, values in (("IPRange", ranges), ("Gateway", gateways)):
        label = "range" if key == "IPRange" else "gateway"
        for value in values:
            matched = False
            for subnet in subnets:
                if not _contains(subnet, value):
                    continue
                if configs[subnet].get(key):
                    plural = "ranges" if key == "IPRange" else "gateways"
                    raise CliError(
                        f"cannot configure multiple {plural} ({value}, {configs[subnet][key]}) "
                        f"{'on' if key == 'IPRange' else 'for'} the same subnet ({subnet})"
                    )
                configs[subnet][key] = value
                matched = True
            if not matched:
                raise CliError(f"no matching subnet for {label} {value}")
    return list(configs.values())


def _kv(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        out[key] = value
    return out


def _csv(values: tuple[str, ...]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


@click.group(cls=ShoalGroup)
def network() -> None:
    """Manage networks"""


network.alias("list", "ls")
network.alias("remove", "rm")


@network.command("create", use="[OPTIONS] NETWORK", arity=(1, 1))
@click.option("--attachable", is_flag=True, help="Enable manual container attachment")
@click.option(
    "-d", "--driver", default="bridge", show_default=True, help="Driver to manage the Network"
)
@click.option("--gateway", multiple=True, help="IPv4 or IPv6 Gateway for the master subnet")
@click.option("--ingress", is_flag=True, help="Create swarm routing-mesh network")
@click.option("--internal", is_flag=True, help="Restrict external access to the network")
@click.option("--ip-range", multiple=True, help="Allocate container ip from a sub-range")
@click.option(
    "--ipam-driver", default="default", show_default=True, help="IP Address Management Driver"
)
@click.option("--ipam-opt", multiple=True, help="Set IPAM driver specific options")
@click.option(
    "--ipv4", is_flag=True, default=True, help="Enable or disable IPv4 address assignment"
)
@click.option("--ipv6", is_flag=True, help="Enable or disable IPv6 address assignment")
@click.option("--label", type=ft.LABEL, multiple=True, help="Set metadata on a network")
@click.option("-o", "--opt", multiple=True, help="Set driver specific options")
@click.option("--scope", default="", help="Control the network's scope")
@click.option(
    "--subnet", multiple=True, help="Subnet in CIDR format that represents a network segment"
)
@click.argument("args", nargs=-1)
@click.pass_context
def create(ctx: click.Context, /, **params: Any) -> None:
    """Create a network"""
    app: App = ctx.obj
    configs = ipam_config(_csv(params["subnet"]), _csv(params["ip_range"]), _csv(params["gateway"]))
    request: dict[str, Any] = {"Driver": params["driver"], "Scope": params["scope"]}
    if changed(ctx, "ipv4"):
        request["EnableIPv4"] = params["ipv4"]
    if changed(ctx, "ipv6"):
        request["EnableIPv6"] = params["ipv6"]
    request.update(
        {
            "IPAM": {
                "Driver": params["ipam_driver"],
                "Options": _kv(params["ipam_opt"]),
                "Config": configs,
            },
            "Internal": params["internal"],
            "Attachable": params["attachable"],
            "Ingress": params["ingress"],
            "ConfigOnly": False,
            "ConfigFrom": None,
            "Options": _kv(params["opt"]),
            "Labels": _kv(params["label"]),
            "Name": params["args"][0],
        }
    )
    response = app.client.post("/networks/create", request) or {}
    app.println(str(response.get("Id", "")))


@network.command("ls", use="[OPTIONS]")
@filter_option('Provide filter values (e.g. "driver=bridge")')
@list_format_option()
@click.option("--no-trunc", is_flag=True, help="Do not truncate the output")
@click.option("-q", "--quiet", is_flag=True, help="Only display network IDs")
@click.argument("args", nargs=-1)
@pass_app
def ls(
    app: App, filters: tuple[Any, ...], fmt: str, no_trunc: bool, quiet: bool, args: tuple[str, ...]
) -> None:
    """List networks"""
    networks = app.client.get("/networks", ft.filter_query(ft.filters_from(filters))) or []
    ordered = natural_sorted(networks, key=lambda n: str(n.get("Name", "")))
    source = list_format(
        fmt or "table", default_table=_TABLE, quiet=quiet, raw=_RAW, raw_quiet="network_id: {{.ID}}"
    )
    app.out(render_list(source, [NetworkRow(n, not no_trunc) for n in ordered], _HEADER))


@network.command("inspect", use="[OPTIONS] NETWORK [NETWORK...]", arity=(1, None))
@inspect_format_option()
@click.option("-v", "--verbose", is_flag=True, help="Verbose output for diagnostics")
@click.argument("args", nargs=-1)
@pass_app
def inspect(app: App, fmt: str, verbose: bool, args: tuple[str, ...]) -> None:
    """Display detailed information on one or more networks"""
    params = {"verbose": "true"} if verbose else None
    print_inspect(app.out, args, lambda ref: app.client.get(f"/networks/{ref}", params), fmt)


@network.command("rm", use="NETWORK [NETWORK...]", arity=(1, None))
@click.option("-f", "--force", is_flag=True, help="Do not error if the network does not exist")
@click.argument("args", nargs=-1)
@pass_app
def rm(app: App, force: bool, args: tuple[str, ...]) -> None:
    """Remove one or more networks"""
    failed = False
    for name in args:
        try:
            current = app.client.get(f"/networks/{name}")
        except DaemonError:
            current = None
        if current and current.get("Ingress") and not _confirm(app, _INGRESS_WARNING):
            continue
        try:
            app.client.delete(f"/networks/{name}")
        except DaemonError as exc:
            if force and exc.not_found:
                continue
            app.eprintln(str(exc))
            failed = True
            continue
        app.println(name)
    if failed:
        raise CliError("exit status 1")


def _confirm(app: App, message: str) -> bool:
    app.out(message + " [y/N] ")
    answer = sys.stdin.readline()
    return answer.strip().lower() == "y"
