"""Service create, update, remove: validate, normalise, resolve, then one store transaction.

Called by the API. Normalisation follows what the docker clients depend on (engine-api.md 5.5):
Replicas defaults to 1, network targets are stored as IDs, Runtime is "container", published
ingress ports are allocated here (explicit ones must be free, 0 takes one from 30000-32767).
Create and update return once the allocator has written the service's VIPs (bounded): that write
changes the service's version, which a client reading right after must see to update it.
"""

from __future__ import annotations

import contextlib
import random

from shoal import aio
from shoal.errors import (
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    SequenceConflict,
    Unimplemented,
)
from shoal.manager.controlapi.refs import check_refs_exist
from shoal.manager.controlapi.validate import validate_service_spec
from shoal.model.ids import new_id
from shoal.model.objects import Endpoint, JobStatus, Network, Service, UpdateStatus, Version, now
from shoal.model.specs import EndpointSpec, PortConfig, Replicated, ServiceSpec
from shoal.store.store import Store, Tx, copy
from shoal.store.tables import Tables
from shoal.store.watch import SubscriptionOverflow

__all__ = ["create_service", "random_name", "remove_service", "update_service"]

DYNAMIC_PORTS = range(30000, 32768)
VIP_WAIT = 2.0  # seconds create/update wait for the allocator's VIPs (none free: return anyway)
_LEFT = ["admiring", "brave", "clever", "eager", "festive", "gallant", "happy", "jolly", "keen", "lucid", "merry", "nifty", "quirky", "serene", "vibrant"]
_RIGHT = ["babbage", "curie", "darwin", "euler", "fermi", "gauss", "hopper", "knuth", "lovelace", "noether", "pascal", "ritchie", "shannon", "turing", "wozniak"]


def random_name() -> str:
    return f"{random.choice(_LEFT)}_{random.choice(_RIGHT)}"


def _normalise(view: Tables, spec: ServiceSpec) -> None:
    mode = spec.mode
    if mode.replicated is None and mode.global_ is None and mode.replicated_job is None and mode.global_job is None:
        mode.replicated = Replicated(replicas=1)
    if mode.replicated is not None and mode.replicated.replicas is None:
        mode.replicated.replicas = 1
    if mode.replicated_job is not None:
        job = mode.replicated_job  # moby's defaults: only absent counts (0 is a job with no task)
        job.max_concurrent = 1 if job.max_concurrent is None else job.max_concurrent
        if job.total_completions is None:
            job.total_completions = job.max_concurrent
    tt = spec.task_template
    tt.runtime = tt.runtime or "container"
    if spec.labels is None:
        spec.labels = {}
    # Networks given at the service level (deprecated) move into the task template, as dockerd does.
    if spec.networks and not tt.networks:
        tt.networks, spec.networks = spec.networks, None
    for att in tt.networks or []:
        try:
            net = view.resolve(Network, att.target, what="network")
        except NotFound:
            raise NotFound(f"network {att.target} not found") from None
        if net.spec.scope != "swarm":
            raise InvalidArgument(f"network {att.target} is not a swarm-scoped network")
        att.target = net.id
    if spec.endpoint_spec is None:
        spec.endpoint_spec = EndpointSpec(mode="vip")
    spec.endpoint_spec.mode = spec.endpoint_spec.mode or "vip"


def _ingress_ports_in_use(view: Tables, except_id: str) -> dict[tuple[int, str], Service]:
    used: dict[tuple[int, str], Service] = {}
    for svc in view.all(Service):
        if svc.id == except_id:
            continue
        for port in svc.endpoint.ports or []:
            if port.publish_mode == "ingress" and port.published_port:
                used[(port.published_port, port.protocol)] = svc
    return used


def _allocate_ports(view: Tables, service_id: str, spec: EndpointSpec, old: Endpoint | None) -> list[PortConfig]:
    used = _ingress_ports_in_use(view, service_id)
    previous = {(p.target_port, p.protocol): p.published_port for p in (old.ports if old and old.ports else [])}
    out: list[PortConfig] = []
    for port in spec.ports or []:
        p = PortConfig(name=port.name, protocol=port.protocol, target_port=port.target_port,
                       published_port=port.published_port, publish_mode=port.publish_mode)
        if p.publish_mode == "ingress":
            if p.published_port:
                owner = used.get((p.published_port, p.protocol))
                if owner is not None:
                    raise InvalidArgument(
                        f"port '{p.published_port}' is already in use by service '{owner.spec.name}' "
                        f"({owner.id}) as an ingress port"
                    )
            else:
                prior = previous.get((p.target_port, p.protocol), 0)
                if prior and (prior, p.protocol) not in used:
                    p.published_port = prior
                else:
                    free = next((n for n in DYNAMIC_PORTS if (n, p.protocol) not in used), None)
                    if free is None:
                        raise InvalidArgument("no free port in the dynamic range 30000-32767")
                    p.published_port = free
            used[(p.published_port, p.protocol)] = Service(id=service_id)
        out.append(p)
    return out


def _check_name_free(view: Tables, name: str, service_id: str) -> None:
    for other in view.by_name(Service, name):
        if other.id != service_id:
            raise Conflict(
                f"rpc error: code = AlreadyExists desc = name conflicts with an existing object: "
                f"service {name} already exists"
            )


async def create_service(store: Store, spec: ServiceSpec) -> Service:
    if not spec.name:
        spec.name = random_name()
    validate_service_spec(spec)

    def fn(tx: Tx) -> Service:
        _normalise(tx.view, spec)
        check_refs_exist(tx.view, spec.task_template.container_spec or {})
        _check_name_free(tx.view, spec.name, "")
        svc = Service(id=new_id(), spec=spec, pending_allocation=True)
        assert spec.endpoint_spec is not None
        svc.endpoint = Endpoint(spec=spec.endpoint_spec, ports=_allocate_ports(tx.view, svc.id, spec.endpoint_spec, None))
        if spec.mode.replicated_job is not None or spec.mode.global_job is not None:
            svc.job_status = JobStatus(job_iteration=Version(index=0), last_execution=now())
        tx.create(svc)
        return svc

    svc = await store.update(fn, retries=1)  # a name taken meanwhile: Conflict on retry
    await _await_allocation(store, svc.id)
    return svc


async def _await_allocation(store: Store, service_id: str, timeout: float = VIP_WAIT) -> None:
    """Until the allocator (on the leader) has given the stored service what its spec needs,
    or ``timeout`` (no VIP free: the call returns anyway, as before)."""

    def done() -> bool:
        svc = store.view().get(Service, service_id)
        return svc is None or not svc.pending_allocation

    with store.subscribe([Service]) as changes:  # subscribe, then look: nothing is missed
        try:
            async with aio.timeout(timeout):
                while not done():
                    with contextlib.suppress(SubscriptionOverflow):  # the view is read again
                        await changes.next()
        except TimeoutError:
            pass


async def update_service(
    store: Store, ref: str, version: int, spec: ServiceSpec, *, rollback: bool = False
) -> Service:
    def fn(tx: Tx) -> Service:
        current = tx.view.resolve(Service, ref)
        if current.version.index != version:
            raise SequenceConflict()
        svc = copy(current)
        if rollback:
            if svc.previous_spec is None:
                raise FailedPrecondition(
                    f"rpc error: code = FailedPrecondition desc = service {svc.id} does not have a previous spec"
                )
            new_spec, svc.previous_spec = svc.previous_spec, svc.spec
            svc.update_status = UpdateStatus(state="rollback_started", started_at=now(),
                                             message="manually requested rollback")
        else:
            new_spec = spec
            validate_service_spec(new_spec)
            _normalise(tx.view, new_spec)
            if new_spec.name != svc.spec.name:
                raise Unimplemented("renaming services is not supported")
            if new_spec.mode.name != svc.spec.mode.name:
                raise Unimplemented("service mode change is not allowed")
            svc.previous_spec = svc.spec
            svc.update_status = None
        # A rollback too: its secrets or configs may have been removed since.
        check_refs_exist(tx.view, new_spec.task_template.container_spec or {})
        svc.spec = new_spec  # normalised: the stored previous spec, or just above
        assert new_spec.endpoint_spec is not None
        svc.endpoint = Endpoint(spec=new_spec.endpoint_spec,
                                ports=_allocate_ports(tx.view, svc.id, new_spec.endpoint_spec, current.endpoint),
                                virtual_ips=current.endpoint.virtual_ips)
        if svc.job_status is not None:
            svc.job_status = JobStatus(job_iteration=Version(index=svc.job_status.job_iteration.index + 1),
                                       last_execution=now())
        svc.pending_allocation = True
        tx.update(svc)
        return svc

    svc = await store.update(fn)
    await _await_allocation(store, svc.id)
    return svc


async def remove_service(store: Store, ref: str) -> None:
    def fn(tx: Tx) -> None:
        tx.delete(tx.view.resolve(Service, ref))

    await store.update(fn, retries=3)
