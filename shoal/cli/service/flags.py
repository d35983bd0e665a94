"""The click flags of ``service create`` and ``service update``, named and described as docker's.

`create_flags` and `update_flags` decorate the commands; both include docker's shared
``addServiceFlags`` set (`_shared`), the first with create's defaults in the help text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from shoal.cli import flagtypes as ft
from shoal.cli.service import opts as so
from shoal.cli.service.mounts import MOUNT

__all__ = [
    "HEALTH_FLAGS",
    "RESTART_FLAGS",
    "ROLLBACK_FLAGS",
    "UPDATE_FLAGS",
    "create_flags",
    "update_flags",
]

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

UPDATE_FLAGS = (
    "update_parallelism",
    "update_delay",
    "update_monitor",
    "update_failure_action",
    "update_max_failure_ratio",
    "update_order",
)
ROLLBACK_FLAGS = tuple(name.replace("update_", "rollback_") for name in UPDATE_FLAGS)
RESTART_FLAGS = ("restart_delay", "restart_max_attempts", "restart_window", "restart_condition")
HEALTH_FLAGS = (
    "health_cmd",
    "health_interval",
    "health_timeout",
    "health_retries",
    "health_start_period",
    "health_start_interval",
)


def _opt(*decls: str, **kwargs: Any) -> Decorator:
    return click.option(*decls, **kwargs)


def _list(*decls: str, help: str, type: click.ParamType[Any] | None = None) -> Decorator:
    return click.option(*decls, multiple=True, type=type or ft.STRING, metavar="list", help=help)


def _shared(create: bool) -> list[Decorator]:
    """docker's ``addServiceFlags`` (with create's defaults shown when `create`)."""

    def desc(text: str, default: str) -> str:
        return f"{text} (default {default})" if create else text

    return [
        _opt(
            "-d",
            "--detach",
            is_flag=True,
            help="Exit immediately instead of waiting for the service to converge",
        ),
        _opt("-q", "--quiet", is_flag=True, help="Suppress progress output"),
        _opt("-w", "--workdir", default="", help="Working directory inside the container"),
        _opt("-u", "--user", default="", help="Username or UID (format: <name|uid>[:<group|gid>])"),
        _opt("--hostname", default="", help="Container hostname"),
        _opt(
            "--entrypoint",
            type=ft.COMMAND,
            metavar="command",
            help="Overwrite the default ENTRYPOINT of the image",
        ),
        _list("--cap-add", help="Add Linux capabilities"),
        _list("--cap-drop", help="Drop Linux capabilities"),
        _opt("--limit-cpu", type=ft.NANO_CPUS, metavar="decimal", help="Limit CPUs"),
        _opt("--limit-memory", type=ft.MEM_BYTES, metavar="bytes", help="Limit Memory"),
        _opt("--reserve-cpu", type=ft.NANO_CPUS, metavar="decimal", help="Reserve CPUs"),
        _opt("--reserve-memory", type=ft.MEM_BYTES, metavar="bytes", help="Reserve Memory"),
        _opt(
            "--limit-pids",
            type=ft.INT64,
            default=0,
            metavar="int",
            help="Limit maximum number of processes (default 0 = unlimited)",
        ),
        _opt(
            "--stop-grace-period",
            type=ft.DURATION,
            metavar="duration",
            help=desc("Time to wait before force killing a container (ns|us|ms|s|m|h)", "10s"),
        ),
        _opt("--replicas", type=ft.UINT64, metavar="uint", help="Number of tasks"),
        _opt(
            "--max-concurrent",
            type=ft.UINT64,
            metavar="uint",
            help="Number of job tasks to run concurrently (default equal to --replicas)",
        ),
        _opt(
            "--replicas-max-per-node",
            type=ft.UINT64,
            default=0,
            metavar="uint",
            help="Maximum number of tasks per node (default 0 = unlimited)",
        ),
        _opt(
            "--restart-condition",
            default="",
            help=desc('Restart when condition is met ("none", "on-failure", "any")', '"any"'),
        ),
        _opt(
            "--restart-delay",
            type=ft.DURATION,
            metavar="duration",
            help=desc("Delay between restart attempts (ns|us|ms|s|m|h)", "5s"),
        ),
        _opt(
            "--restart-max-attempts",
            type=ft.UINT64,
            metavar="uint",
            help="Maximum number of restarts before giving up",
        ),
        _opt(
            "--restart-window",
            type=ft.DURATION,
            metavar="duration",
            help="Window used to evaluate the restart policy (ns|us|ms|s|m|h)",
        ),
        *_update_config_flags("update", "updated", "update", create),
        *_update_config_flags("rollback", "rolled back", "rollback", create),
        _opt(
            "--endpoint-mode", default="vip" if create else "", help="Endpoint mode (vip or dnsrr)"
        ),
        _opt(
            "--with-registry-auth",
            is_flag=True,
            help="Send registry authentication details to swarm agents",
        ),
        _opt(
            "--no-resolve-image",
            is_flag=True,
            help="Do not query the registry to resolve image digest and supported platforms",
        ),
        _opt("--log-driver", default="", help="Logging driver for service"),
        _list("--log-opt", help="Logging driver options"),
        _opt("--health-cmd", default="", help="Command to run to check health"),
        _opt(
            "--health-interval",
            type=ft.POSITIVE_DURATION,
            metavar="duration",
            help="Time between running the check (ms|s|m|h)",
        ),
        _opt(
            "--health-timeout",
            type=ft.POSITIVE_DURATION,
            metavar="duration",
            help="Maximum time to allow one check to run (ms|s|m|h)",
        ),
        _opt(
            "--health-retries",
            type=ft.INT,
            default=0,
            metavar="int",
            help="Consecutive failures needed to report unhealthy",
        ),
        _opt(
            "--health-start-period",
            type=ft.POSITIVE_DURATION,
            metavar="duration",
            help="Start period for the container to initialize before counting retries towards unstable (ms|s|m|h)",
        ),
        _opt(
            "--health-start-interval",
            type=ft.POSITIVE_DURATION,
            metavar="duration",
            help="Time between running the check during the start period (ms|s|m|h)",
        ),
        _opt("--no-healthcheck", is_flag=True, help="Disable any container-specified HEALTHCHECK"),
        _opt("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY"),
        _opt(
            "--read-only", is_flag=True, help="Mount the container's root filesystem as read only"
        ),
        _opt("--stop-signal", default="", help="Signal to stop the container"),
        _opt("--isolation", default="", help="Service container isolation mode"),
        _opt(
            "--init",
            is_flag=True,
            help="Use an init inside each service container to forward signals and reap processes",
        ),
        _opt(
            "--oom-score-adj",
            type=ft.INT64,
            default=0,
            metavar="int",
            help="Tune host's OOM preferences (-1000 to 1000) ",
        ),
    ]


def _update_config_flags(prefix: str, done: str, noun: str, create: bool) -> list[Decorator]:
    def desc(text: str, default: str) -> str:
        return f"{text} (default {default})" if create else text

    actions = '("pause", "continue", "rollback")' if prefix == "update" else '("pause", "continue")'
    order_noun = "Update" if prefix == "update" else "Rollback"
    return [
        _opt(
            f"--{prefix}-parallelism",
            type=ft.UINT64,
            default=1 if create else 0,
            metavar="uint",
            help=desc(
                f"Maximum number of tasks {done} simultaneously (0 to {noun} all at once)", "1"
            )
            if prefix == "update"
            else desc(
                "Maximum number of tasks rolled back simultaneously (0 to roll back all at once)",
                "1",
            ),
        ),
        _opt(
            f"--{prefix}-delay",
            type=ft.DURATION,
            default=0,
            metavar="duration",
            help=desc(
                "Delay between updates (ns|us|ms|s|m|h)"
                if prefix == "update"
                else "Delay between task rollbacks (ns|us|ms|s|m|h)",
                "0s",
            ),
        ),
        _opt(
            f"--{prefix}-monitor",
            type=ft.DURATION,
            default=0,
            metavar="duration",
            help=desc(
                f"Duration after each task {'update' if prefix == 'update' else 'rollback'} to "
                "monitor for failure (ns|us|ms|s|m|h)",
                "5s",
            ),
        ),
        _opt(
            f"--{prefix}-failure-action",
            default="",
            help=desc(
                f"Action on {'update' if prefix == 'update' else 'rollback'} failure {actions}",
                '"pause"',
            ),
        ),
        _opt(
            f"--{prefix}-max-failure-ratio",
            type=ft.FLOAT32,
            default=0.0,
            metavar="float",
            help=desc(
                f"Failure rate to tolerate during {'an update' if prefix == 'update' else 'a rollback'}",
                "0",
            ),
        ),
        _opt(
            f"--{prefix}-order",
            default="",
            help=desc(f'{order_noun} order ("start-first", "stop-first")', '"stop-first"'),
        ),
    ]


def _create_only() -> list[Decorator]:
    return [
        _opt(
            "--mode",
            default="replicated",
            help='Service mode ("replicated", "global", "replicated-job", "global-job") (default "replicated")',
        ),
        _opt("--name", default="", help="Service name"),
        _list("-l", "--label", type=ft.LABEL, help="Service labels"),
        _list("--container-label", type=ft.LABEL, help="Container labels"),
        _list("-e", "--env", type=ft.ENV, help="Set environment variables"),
        _list("--env-file", help="Read in a file of environment variables"),
        _opt("--mount", type=MOUNT, multiple=True, help="Attach a filesystem mount to the service"),
        _list("--constraint", help="Placement constraints"),
        _opt(
            "--placement-pref",
            type=so.PLACEMENT_PREF,
            multiple=True,
            help="Add a placement preference",
        ),
        _opt("--network", type=so.NETWORK, multiple=True, help="Network attachments"),
        _opt(
            "--secret",
            type=so.SECRET,
            multiple=True,
            help="Specify secrets to expose to the service",
        ),
        _opt(
            "--config",
            type=so.CONFIG,
            multiple=True,
            help="Specify configurations to expose to the service",
        ),
        _opt("-p", "--publish", type=so.PORTS, multiple=True, help="Publish a port as a node port"),
        _list("--group", help="Set one or more supplementary user groups for the container"),
        _list("--dns", help="Set custom DNS servers"),
        _list("--dns-option", help="Set DNS options"),
        _list("--dns-search", help="Set custom DNS search domains"),
        _list("--host", help="Set one or more custom host-to-IP mappings (host:ip)"),
        _list("--sysctl", help="Sysctl options"),
    ]


def _update_only() -> list[Decorator]:
    return [
        _opt("--image", default="", help="Service image tag"),
        _opt(
            "--args",
            "container_args",
            type=ft.COMMAND,
            metavar="command",
            help="Service command args",
        ),
        _opt("--rollback", is_flag=True, help="Rollback to previous specification"),
        _opt("--force", is_flag=True, help="Force update even if no changes require it"),
        _list("--env-add", type=ft.ENV, help="Add or update an environment variable"),
        _list("--env-rm", help="Remove an environment variable"),
        _list("--label-add", type=ft.LABEL, help="Add or update a service label"),
        _list("--label-rm", help="Remove a label by its key"),
        _list("--container-label-add", type=ft.LABEL, help="Add or update a container label"),
        _list("--container-label-rm", help="Remove a container label by its key"),
        _list("--constraint-add", help="Add or update a placement constraint"),
        _list("--constraint-rm", help="Remove a constraint"),
        _opt(
            "--placement-pref-add",
            type=so.PLACEMENT_PREF,
            multiple=True,
            help="Add a placement preference",
        ),
        _opt(
            "--placement-pref-rm",
            type=so.PLACEMENT_PREF,
            multiple=True,
            help="Remove a placement preference",
        ),
        _opt("--publish-add", type=so.PORTS, multiple=True, help="Add or update a published port"),
        _opt(
            "--publish-rm",
            type=so.PORTS,
            multiple=True,
            help="Remove a published port by its target port",
        ),
        _opt("--mount-add", type=MOUNT, multiple=True, help="Add or update a mount on a service"),
        _list("--mount-rm", help="Remove a mount by its target path"),
        _opt("--network-add", type=so.NETWORK, multiple=True, help="Add a network"),
        _list("--network-rm", help="Remove a network"),
        _opt(
            "--secret-add",
            type=so.SECRET,
            multiple=True,
            help="Add or update a secret on a service",
        ),
        _list("--secret-rm", help="Remove a secret"),
        _opt(
            "--config-add",
            type=so.CONFIG,
            multiple=True,
            help="Add or update a config file on a service",
        ),
        _list("--config-rm", help="Remove a configuration file"),
        _list("--group-add", help="Add an additional supplementary user group to the container"),
        _list(
            "--group-rm",
            help="Remove a previously added supplementary user group from the container",
        ),
        _list("--sysctl-add", help="Add or update a Sysctl option"),
        _list("--sysctl-rm", help="Remove a Sysctl option"),
    ]


def _apply(decorators: list[Decorator]) -> Decorator:
    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return decorate


def create_flags(func: Callable[..., Any]) -> Callable[..., Any]:
    """All ``service create`` flags."""
    return _apply(_shared(create=True) + _create_only())(func)


def update_flags(func: Callable[..., Any]) -> Callable[..., Any]:
    """All ``service update`` flags."""
    return _apply(_shared(create=False) + _update_only())(func)
