"""``shoal swarm init|join|leave|join-token|update|ca|unlock|unlock-key``: thin wrappers over the
/swarm endpoints (the CA flags are parsed in ``swarm_ca``)."""

from __future__ import annotations

import getpass
import ipaddress
import sys
from typing import Any
from urllib.parse import urlsplit

import click

from shoal.cli import flagtypes as ft
from shoal.cli.app import App
from shoal.cli.client import DaemonError
from shoal.cli.command import BIN, ShoalGroup, changed, pass_app
from shoal.cli.commands.swarm_ca import EXTERNAL_CA, PEM_FILE, merge_ca_flags
from shoal.cli.errors import CliError
from shoal.cli.progress.rotation import root_rotation_progress
from shoal.cli.progress.watch import display_for

__all__ = ["swarm"]

_DEFAULT_LISTEN = "0.0.0.0:2377"
_AVAILABILITIES = ("active", "pause", "drain")


def parse_node_addr(value: str, default: str = _DEFAULT_LISTEN) -> str:
    """docker's ``NodeAddrOption``: fill the host or port of `value` from `default`."""
    text = value if "://" in value else "tcp://" + value
    parts = urlsplit(text)
    if parts.scheme != "tcp":
        raise ValueError(f"unsupported proto '{parts.scheme}'")
    if parts.path not in ("", "/"):
        raise ValueError("should not contain a path element")
    default_host, _, default_port = default.rpartition(":")
    try:
        port = str(parts.port) if parts.port is not None else default_port
    except ValueError as exc:
        raise ValueError(f"invalid port: {exc}") from exc
    host = parts.hostname or default_host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _ip_nets(value: str) -> list[str]:
    nets = []
    for item in value.split(","):
        try:
            nets.append(str(ipaddress.ip_network(item.strip(), strict=False)))
        except ValueError as exc:
            raise ValueError(f"invalid CIDR address: {item.strip()}") from exc
    return nets


NODE_ADDR = ft.GoValue("node-addr", parse_node_addr)
IP_NETS = ft.GoValue("ipNetSlice", _ip_nets)


# Shared by init, update (through _spec_flags) and ca.
_CERT_EXPIRY = click.option(
    "--cert-expiry",
    type=ft.DURATION,
    default="2160h",
    help="Validity period for node certificates (ns|us|ms|s|m|h)  [default: 2160h0m0s]",
)
_EXTERNAL_CAS = click.option(
    "--external-ca",
    type=EXTERNAL_CA,
    multiple=True,
    help="Specifications of one or more certificate signing endpoints",
)


def _spec_flags(func: Any) -> Any:
    """Flags shared by ``init`` and ``update`` (docker's ``addSwarmFlags``)."""
    options = [
        click.option(
            "--task-history-limit",
            type=ft.INT64,
            default=5,
            show_default=True,
            help="Task history retention limit",
        ),
        click.option(
            "--dispatcher-heartbeat",
            type=ft.DURATION,
            default="5s",
            help="Dispatcher heartbeat period (ns|us|ms|s|m|h)  [default: 5s]",
        ),
        click.option(
            "--max-snapshots",
            type=ft.UINT64,
            default=0,
            help="Number of additional Raft snapshots to retain",
        ),
        click.option(
            "--snapshot-interval",
            type=ft.UINT64,
            default=10000,
            show_default=True,
            help="Number of log entries between Raft snapshots",
        ),
        _CERT_EXPIRY,
        _EXTERNAL_CAS,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def merge_spec(spec: dict[str, Any], ctx: click.Context) -> None:
    """docker's ``mergeSwarmSpec``: apply only the flags that were given."""
    params = ctx.params
    if changed(ctx, "task_history_limit"):
        spec.setdefault("Orchestration", {})["TaskHistoryRetentionLimit"] = params[
            "task_history_limit"
        ]
    if changed(ctx, "dispatcher_heartbeat"):
        spec.setdefault("Dispatcher", {})["HeartbeatPeriod"] = params["dispatcher_heartbeat"]
    if changed(ctx, "max_snapshots"):
        spec.setdefault("Raft", {})["KeepOldSnapshots"] = params["max_snapshots"]
    if changed(ctx, "snapshot_interval"):
        spec.setdefault("Raft", {})["SnapshotInterval"] = params["snapshot_interval"]
    if changed(ctx, "autolock"):
        spec.setdefault("EncryptionConfig", {})["AutoLockManagers"] = params["autolock"]
    if changed(ctx, "cert_expiry"):
        spec.setdefault("CAConfig", {})["NodeCertExpiry"] = params["cert_expiry"]
    merge_ca_flags(spec, ctx)


def _availability(ctx: click.Context, value: str) -> str:
    if not changed(ctx, "availability"):
        return ""
    if value.lower() not in _AVAILABILITIES:
        raise CliError(
            f'invalid availability "{value}", only active, pause and drain are supported'
        )
    return value.lower()


@click.group(cls=ShoalGroup)
def swarm() -> None:
    """Manage Swarm"""


@swarm.command("init", use="[OPTIONS]")
@click.option(
    "--advertise-addr", default="", help='Advertised address (format: "<ip|interface>[:port]")'
)
@click.option(
    "--autolock",
    is_flag=True,
    help="Enable manager autolocking (requiring an unlock key to start a stopped manager)",
)
@click.option(
    "--availability",
    default="active",
    show_default=True,
    help='Availability of the node ("active", "pause", "drain")',
)
@click.option(
    "--ca-cert",
    type=PEM_FILE,
    default=None,
    help="Path to the PEM-formatted root CA certificate to use for the new cluster "
    "(with --ca-key, or with --external-ca when the external CA keeps the key)",
)
@click.option(
    "--ca-key",
    type=PEM_FILE,
    default=None,
    help="Path to the PEM-formatted root CA key to use for the new cluster",
)
@click.option(
    "--data-path-addr",
    default="",
    help='Address or interface to use for data path traffic (format: "<ip|interface>")',
)
@click.option(
    "--data-path-port",
    type=ft.UINT32,
    default=0,
    help="Port number to use for data path traffic (1024 - 49151). If no value is set or "
    "is set to 0, the default port (4789) is used.",
)
@click.option(
    "--default-addr-pool", type=IP_NETS, multiple=True, help="default address pool in CIDR format"
)
@click.option(
    "--default-addr-pool-mask-length",
    type=ft.UINT32,
    default=24,
    show_default=True,
    help="default address pool subnet mask length",
)
@click.option(
    "--force-new-cluster", is_flag=True, help="Force create a new cluster from current state"
)
@click.option(
    "--listen-addr",
    type=NODE_ADDR,
    default=_DEFAULT_LISTEN,
    show_default=True,
    help='Listen address (format: "<ip|interface>[:port]")',
)
@_spec_flags
@click.argument("args", nargs=-1)
@click.pass_context
def init(ctx: click.Context, /, **params: Any) -> None:
    """Initialize a swarm"""
    app: App = ctx.obj
    spec: dict[str, Any] = {
        "Labels": None,
        "Orchestration": {},
        "Raft": {"ElectionTick": 0, "HeartbeatTick": 0},
        "Dispatcher": {},
        "CAConfig": {},
        "TaskDefaults": {},
        "EncryptionConfig": {"AutoLockManagers": False},
    }
    merge_spec(spec, ctx)
    request = {
        "ListenAddr": params["listen_addr"],
        "AdvertiseAddr": params["advertise_addr"],
        "DataPathAddr": params["data_path_addr"],
        "DataPathPort": params["data_path_port"],
        "ForceNewCluster": params["force_new_cluster"],
        "Spec": spec,
        "AutoLockManagers": params["autolock"],
        "Availability": _availability(ctx, params["availability"]),
        "DefaultAddrPool": [net for group in params["default_addr_pool"] for net in group],
        "SubnetSize": params["default_addr_pool_mask_length"],
    }
    node_id = app.client.post("/swarm/init", request)
    app.out(f"Swarm initialized: current node ({node_id}) is now a manager.\n\n")
    _print_join_command(app, str(node_id), worker=True, manager=False)
    app.println(
        f"To add a manager to this swarm, run '{BIN} swarm join-token manager' and follow the instructions."
    )
    if request["AutoLockManagers"]:
        _print_unlock_key(app)


@swarm.command("join", use="[OPTIONS] HOST:PORT", arity=(1, 1))
@click.option(
    "--advertise-addr", default="", help='Advertised address (format: "<ip|interface>[:port]")'
)
@click.option(
    "--availability",
    default="active",
    show_default=True,
    help='Availability of the node ("active", "pause", "drain")',
)
@click.option(
    "--data-path-addr",
    default="",
    help='Address or interface to use for data path traffic (format: "<ip|interface>")',
)
@click.option(
    "--listen-addr",
    type=NODE_ADDR,
    default=_DEFAULT_LISTEN,
    show_default=True,
    help='Listen address (format: "<ip|interface>[:port]")',
)
@click.option("--token", default="", help="Token for entry into the swarm")
@click.argument("args", nargs=-1)
@click.pass_context
def join(ctx: click.Context, /, **params: Any) -> None:
    """Join a swarm as a node and/or manager"""
    app: App = ctx.obj
    request = {
        "ListenAddr": params["listen_addr"],
        "AdvertiseAddr": params["advertise_addr"],
        "DataPathAddr": params["data_path_addr"],
        "RemoteAddrs": [params["args"][0]],
        "JoinToken": params["token"],
        "Availability": _availability(ctx, params["availability"]),
    }
    app.client.post("/swarm/join", request)
    info = app.client.get("/info")
    role = "manager" if (info.get("Swarm") or {}).get("ControlAvailable") else "worker"
    app.println(f"This node joined a swarm as a {role}.")


@swarm.command("leave", use="[OPTIONS]")
@click.option(
    "-f", "--force", is_flag=True, help="Force this node to leave the swarm, ignoring warnings"
)
@click.argument("args", nargs=-1)
@pass_app
def leave(app: App, force: bool, args: tuple[str, ...]) -> None:
    """Leave the swarm"""
    app.client.post("/swarm/leave", params={"force": "1"} if force else None)
    app.println("Node left the swarm.")


@swarm.command("join-token", use="[OPTIONS] (worker|manager)", arity=(1, 1))
@click.option("-q", "--quiet", is_flag=True, help="Only display token")
@click.option("--rotate", is_flag=True, help="Rotate join token")
@click.argument("args", nargs=-1)
@pass_app
def join_token(app: App, quiet: bool, rotate: bool, args: tuple[str, ...]) -> None:
    """Manage join tokens"""
    role = args[0]
    if role not in ("worker", "manager"):
        raise CliError(f"unknown role {role}")
    if rotate:
        current = app.client.get("/swarm")
        _update_swarm(app, current, worker=role == "worker", manager=role == "manager")
        if not quiet:
            app.out(f"Successfully rotated {role} join token.\n\n")
    tokens = app.client.get("/swarm").get("JoinTokens") or {}
    if quiet:
        app.println(tokens.get(role.capitalize(), ""))
        return
    info = app.client.get("/info")
    node_id = (info.get("Swarm") or {}).get("NodeID", "")
    _print_join_command(app, node_id, worker=role == "worker", manager=role == "manager")


@swarm.command("update", use="[OPTIONS]")
@click.option("--autolock", is_flag=True, help="Change manager autolocking setting (true|false)")
@_spec_flags
@click.argument("args", nargs=-1)
@click.pass_context
def update(ctx: click.Context, /, **params: Any) -> None:
    """Update the swarm"""
    app: App = ctx.obj
    current = app.client.get("/swarm")
    spec = current.setdefault("Spec", {})
    previous = bool((spec.get("EncryptionConfig") or {}).get("AutoLockManagers"))
    merge_spec(spec, ctx)
    _update_swarm(app, current)
    app.println("Swarm updated.")
    if (spec.get("EncryptionConfig") or {}).get("AutoLockManagers") and not previous:
        _print_unlock_key(app)


@swarm.command("ca", use="[OPTIONS]", arity=(0, 0))
@click.option("--ca-cert", type=PEM_FILE, default=None,
              help="Path to the PEM-formatted root CA certificate to use for the new cluster")
@click.option("--ca-key", type=PEM_FILE, default=None,
              help="Path to the PEM-formatted root CA key to use for the new cluster")
@_CERT_EXPIRY
@click.option("-d", "--detach", is_flag=True,
              help="Exit immediately instead of waiting for the root rotation to converge")
@_EXTERNAL_CAS
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output")
@click.option("--rotate", is_flag=True,
              help="Rotate the swarm CA - if no certificate or key are provided, new ones will be generated")
@click.argument("args", nargs=-1)
@click.pass_context
def ca(ctx: click.Context, /, **params: Any) -> None:
    """Display and rotate the root CA"""
    app: App = ctx.obj
    current = app.client.get("/swarm")
    if not params["rotate"]:
        for flag in ("ca_cert", "ca_key", "cert_expiry", "external_ca"):
            if changed(ctx, flag):
                raise CliError(f"`--{flag.replace('_', '-')}` flag requires the `--rotate` flag to update the CA")
        _print_trust_root(app, current)
        return
    if changed(ctx, "external_ca") and params["external_ca"] and not changed(ctx, "ca_cert"):
        raise CliError("rotating to an external CA requires the `--ca-cert` flag to specify the external "
                       "CA's cert - to add an external CA with the current root CA certificate, use the "
                       "`update` command instead")
    spec = current.setdefault("Spec", {})
    if changed(ctx, "cert_expiry"):
        spec.setdefault("CAConfig", {})["NodeCertExpiry"] = params["cert_expiry"]
    merge_ca_flags(spec, ctx)  # --ca-cert and --ca-key become SigningCACert/SigningCAKey
    config = spec.setdefault("CAConfig", {})
    if not params["ca_cert"] and not params["ca_key"]:
        config["ForceRotate"] = int(config.get("ForceRotate") or 0) + 1  # a new root, generated
    _update_swarm(app, current)
    if params["detach"]:
        return
    root_rotation_progress(app, display_for(app, quiet=params["quiet"]))
    if not params["quiet"]:
        _print_trust_root(app, app.client.get("/swarm"))


def _print_trust_root(app: App, swarm_info: dict[str, Any]) -> None:
    root = str((swarm_info.get("TLSInfo") or {}).get("TrustRoot") or "")
    if not root:
        raise CliError("No CA information available")
    app.println(root.strip())


@swarm.command("unlock", use="", arity=(0, 0))
@click.argument("args", nargs=-1)
@pass_app
def unlock(app: App, args: tuple[str, ...]) -> None:
    """Unlock swarm"""
    state = (app.client.get("/info").get("Swarm") or {}).get("LocalNodeState", "")
    if state == "inactive":
        raise CliError("Error: This node is not part of a swarm")
    if state != "locked":
        raise CliError("Error: swarm is not locked")
    app.client.post("/swarm/unlock", {"UnlockKey": _read_key("Enter unlock key: ")})


def _read_key(prompt: str) -> str:
    """docker's ``readKey``: a terminal is asked without echo; otherwise one line is read."""
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().strip()


@swarm.command("unlock-key", use="[OPTIONS]", arity=(0, 0))
@click.option("--rotate", is_flag=True, help="Rotate unlock key")
@click.option("-q", "--quiet", is_flag=True, help="Only display token")
@click.argument("args", nargs=-1)
@pass_app
def unlock_key(app: App, rotate: bool, quiet: bool, args: tuple[str, ...]) -> None:
    """Manage the unlock key"""
    if rotate:
        current = app.client.get("/swarm")
        if not ((current.get("Spec") or {}).get("EncryptionConfig") or {}).get("AutoLockManagers"):
            raise CliError("cannot rotate because autolock is not turned on")
        _update_swarm(app, current, unlock_key=True)
        if not quiet:
            app.println("Successfully rotated manager unlock key.")
    try:
        key = (app.client.get("/swarm/unlockkey") or {}).get("UnlockKey", "")
    except DaemonError as exc:
        raise CliError(f"could not fetch unlock key: {exc}") from exc
    if not key:
        raise CliError("no unlock key is set")
    if quiet:
        app.println(key)
        return
    _print_unlock_command(app, key)


def _update_swarm(
    app: App, current: dict[str, Any], *, worker: bool = False, manager: bool = False,
    unlock_key: bool = False,
) -> None:
    version = (current.get("Version") or {}).get("Index", 0)
    query = {
        "rotateManagerToken": str(manager).lower(),
        "rotateManagerUnlockKey": str(unlock_key).lower(),
        "rotateWorkerToken": str(worker).lower(),
        "version": str(version),
    }
    app.client.post("/swarm/update", current.get("Spec") or {}, params=query)


def _print_join_command(app: App, node_id: str, *, worker: bool, manager: bool) -> None:
    node = app.client.get(f"/nodes/{node_id}")
    tokens = app.client.get("/swarm").get("JoinTokens") or {}
    manager_status = node.get("ManagerStatus")
    if not manager_status:
        return
    addr = manager_status.get("Addr", "")
    for role, wanted in (("worker", worker), ("manager", manager)):
        if wanted:
            token = tokens.get(role.capitalize(), "")
            app.out(
                f"To add a {role} to this swarm, run the following command:\n\n"
                f"    {BIN} swarm join --token {token} {addr}\n\n"
            )


def _print_unlock_key(app: App) -> None:
    try:
        key = (app.client.get("/swarm/unlockkey") or {}).get("UnlockKey", "")
    except Exception as exc:
        raise CliError(f"could not fetch unlock key: {exc}") from exc
    _print_unlock_command(app, key)


def _print_unlock_command(app: App, key: str) -> None:
    if key:
        app.out(
            f"To unlock a swarm manager after it restarts, run the `{BIN} swarm unlock`\n"
            f"command and provide the following key:\n\n    {key}\n\n"
            "Remember to store this key in a password manager, since without it you\n"
            "will not be able to restart the manager.\n"
        )
