"""Spec validation shared by the control API calls (swarmkit manager/controlapi/common.go, service.go)."""

from __future__ import annotations

import base64
import binascii
import re

from shoal.errors import InvalidArgument
from shoal.manager import constraint
from shoal.manager.controlapi.refs import validate_refs
from shoal.manager.controlapi.status import invalid
from shoal.model.containeropts import container_options
from shoal.model.logdriver import log_config
from shoal.model.mountopts import check_mounts
from shoal.model.privileges import sandbox
from shoal.model.specs import MAX_REPLICAS, Driver, ServiceSpec, TaskSpec

__all__ = ["decode_data", "validate_name", "validate_object_name", "validate_service_spec",
           "validate_templating"]

_NAME = re.compile(r"^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$")
# Secrets' and configs' names (swarmkit controlapi/common.go isValidConfigOrSecretName).
_OBJECT_NAME = re.compile(r"^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$")
_MIN_CPU = 1_000_000  # 0.001 CPU
_MIN_MEMORY = 4 * 1024 * 1024


def validate_name(name: str, *, what: str = "name") -> None:
    if not name:
        raise InvalidArgument(f"{what} must be provided")
    if len(name) > 63 or not _NAME.match(name):
        raise InvalidArgument(
            f"rpc error: code = InvalidArgument desc = {what} must be valid as a DNS name component"
        )


def validate_object_name(name: str) -> None:
    """A secret's or config's name (swarmkit validateConfigOrSecretAnnotations)."""
    if not name:
        raise invalid("name must be provided")
    if len(name) > 64 or not _OBJECT_NAME.match(name):
        raise invalid("invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start "
                      "and end character must be [a-zA-Z0-9]")


def decode_data(data: str | None) -> bytes:
    """A spec's ``Data`` (Go []byte: standard base64) as bytes; absent is empty."""
    try:
        return base64.b64decode(data or "", validate=True)
    except (binascii.Error, ValueError) as exc:
        message = f"invalid JSON in request body: Data: illegal base64 data: {exc}"
        raise InvalidArgument(message) from None


def validate_templating(templating: Driver | None, what: str) -> Driver | None:
    """The template driver: "golang" (the only one swarmkit knows; the nodes expand the data
    per task, shoal.exec.templating). Any other is refused here rather than failing every task
    that uses it once placed, as it would in swarmkit. An empty one means none."""
    if templating is None or not templating.name:
        return None
    if templating.name == "golang":
        return templating
    raise invalid(f"template driver {templating.name!r} is not supported: the only template "
                  f"driver is 'golang' (create the {what} with --template-driver golang, or "
                  f"without it)")


def _check_duration(value: int | None, what: str, minimum: int = 0) -> None:
    if value is not None and value < minimum:
        raise InvalidArgument(f"rpc error: code = InvalidArgument desc = {what} must be at least {minimum}ns")


def _check_task_options(tt: TaskSpec) -> None:
    """Every option of the task the nodes honour, or refused here naming it (issue 15: no
    option stored and then ignored); the table is in docs/design/service-options.md."""
    cs = tt.container_spec or {}
    sandbox(cs)  # caps and Privileges
    container_options(cs)
    check_mounts(cs.get("Mounts"))
    log_config(tt.log_driver)
    if tt.plugin_spec or tt.network_attachment_spec or tt.runtime not in ("", "container"):
        raise InvalidArgument(f"task runtime {tt.runtime or 'plugin'!r} is not supported by "
                              "Shoal: services run containers only")
    reservations = tt.resources.reservations if tt.resources else None
    if reservations is not None and reservations.generic_resources:
        raise InvalidArgument("Resources.Reservations.GenericResources: no node of the swarm "
                              "advertises generic resources (Shoal's nodes have none: dockerd's "
                              "--node-generic-resource is not supported)")


def _check_count(value: int | None, what: str) -> None:
    """A count of tasks a service asks for: at most ``MAX_REPLICAS`` (issue 16: one call asking
    for 2^63 replicas used to fill the manager)."""
    if value is not None and value > MAX_REPLICAS:
        raise InvalidArgument(f"rpc error: code = InvalidArgument desc = {what} must be at most "
                              f"{MAX_REPLICAS} (Shoal's limit of tasks per service), not {value}")


def validate_service_spec(spec: ServiceSpec) -> None:
    validate_name(spec.name)
    mode = spec.mode
    if mode.replicated is not None:
        if (mode.replicated.replicas or 0) < 0:
            raise InvalidArgument("rpc error: code = InvalidArgument desc = replicas must be non-negative")
        _check_count(mode.replicated.replicas, "replicas")
    if mode.replicated_job is not None:  # swarmkit's validateMode and validateJob
        job = mode.replicated_job
        if (job.max_concurrent or 0) < 0:
            raise InvalidArgument("rpc error: code = InvalidArgument desc = Maximum concurrent jobs must not be negative")
        if (job.total_completions or 0) < 0:
            raise InvalidArgument("rpc error: code = InvalidArgument desc = Total completed jobs must not be negative")
        _check_count(job.max_concurrent, "Maximum concurrent jobs")
        _check_count(job.total_completions, "Total completed jobs")
    if (mode.replicated_job is not None or mode.global_job is not None) and spec.update_config is not None:
        raise InvalidArgument("rpc error: code = InvalidArgument desc = Jobs may not have an update config")
    tt = spec.task_template
    if not tt.image:
        raise InvalidArgument("rpc error: code = InvalidArgument desc = ContainerSpec: image reference must be provided")
    if tt.placement is not None:
        constraint.parse(tt.placement.constraints)
        # Any spread descriptor is accepted, as swarmkit does: the scheduler skips one it
        # cannot split on (shoal.manager.scheduler.spread).
        if tt.placement.max_replicas < 0:
            raise InvalidArgument("rpc error: code = InvalidArgument desc = max replicas must be non-negative")
        _check_count(tt.placement.max_replicas, "max replicas")
    res = tt.resources
    for part in (res.limits, res.reservations) if res else ():
        if part is None:
            continue
        if part.nano_cpus and part.nano_cpus < _MIN_CPU:
            raise InvalidArgument("rpc error: code = InvalidArgument desc = invalid cpu value: must be at least 0.001")
        if part.memory_bytes and part.memory_bytes < _MIN_MEMORY:
            raise InvalidArgument("rpc error: code = InvalidArgument desc = invalid memory value: must be at least 4MiB")
    rp = tt.restart_policy
    if rp is not None:
        if rp.condition not in (None, "", "none", "on-failure", "any"):
            raise InvalidArgument(f"invalid restart condition {rp.condition!r}")
        _check_duration(rp.delay, "restart delay")
        _check_duration(rp.window, "restart window")
        if (rp.max_attempts or 0) < 0:
            raise InvalidArgument("rpc error: code = InvalidArgument desc = restart max attempts must be non-negative")
    validate_refs(tt.container_spec or {})
    _check_task_options(tt)
    for att in [*(tt.networks or []), *(spec.networks or [])]:
        if att.driver_opts:
            raise InvalidArgument(f"network {att.target!r}: driver-opt "
                                  f"{min(att.driver_opts)!r} is not supported by Shoal: its "
                                  "overlay endpoints take no driver options")
    health = (tt.container_spec or {}).get("Healthcheck") or {}
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
        value = health.get(key)
        if value:
            _check_duration(int(value), f"Healthcheck {key}", 1_000_000)
    if int(health.get("Retries") or 0) < 0:
        raise InvalidArgument("rpc error: code = InvalidArgument desc = Healthcheck Retries must be non-negative")
    for cfg in (spec.update_config, spec.rollback_config):
        if cfg is None:
            continue
        if cfg.failure_action not in ("", "pause", "continue", "rollback"):
            raise InvalidArgument(f"invalid failure action {cfg.failure_action!r}")
        if cfg.order not in ("", "stop-first", "start-first"):
            raise InvalidArgument(f"invalid update order {cfg.order!r}")
        if not 0 <= cfg.max_failure_ratio <= 1:
            raise InvalidArgument("rpc error: code = InvalidArgument desc = max failure ratio must be between 0 and 1")
        _check_duration(cfg.delay, "update delay")
        _check_duration(cfg.monitor, "update monitor")
    ep = spec.endpoint_spec
    if ep is not None:
        if ep.mode not in ("", "vip", "dnsrr"):
            raise InvalidArgument(f"invalid endpoint mode {ep.mode!r}")
        seen: set[tuple[int, str]] = set()
        for port in ep.ports or []:
            if port.protocol not in ("tcp", "udp", "sctp"):
                raise InvalidArgument(f"invalid protocol {port.protocol!r}")
            if not 0 < port.target_port < 65536 or not 0 <= port.published_port < 65536:
                raise InvalidArgument("rpc error: code = InvalidArgument desc = port out of range")
            if port.publish_mode not in ("ingress", "host"):
                raise InvalidArgument(f"invalid publish mode {port.publish_mode!r}")
            if port.publish_mode == "ingress" and ep.mode == "dnsrr":
                raise InvalidArgument(
                    "rpc error: code = InvalidArgument desc = EndpointSpec: port published with ingress mode can't be used with dnsrr mode"
                )
            if port.published_port:
                published = (port.published_port, port.protocol)
                if published in seen:
                    raise InvalidArgument(
                        "rpc error: code = InvalidArgument desc = EndpointSpec: duplicate published ports provided"
                    )
                seen.add(published)

