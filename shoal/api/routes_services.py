"""/services and /tasks: create, list (with ServiceStatus), inspect, update, remove; task queries."""

from __future__ import annotations

from aiohttp import web

from shoal.api.common import param, read, reply, store
from shoal.api.params import filters, label_match, parse_bool, version_param
from shoal.api.render import down_nodes, service_json, task_json
from shoal.api.server import Router
from shoal.errors import NotFound
from shoal.manager.controlapi.service import create_service, remove_service, update_service
from shoal.model.objects import Node, Service, Task
from shoal.model.specs import ServiceSpec
from shoal.store.tables import Tables

__all__ = ["register"]

_SERVICE_FILTERS = {"id", "label", "mode", "name", "runtime"}
_TASK_FILTERS = {"desired-state", "id", "label", "name", "node", "service", "_up-to-date", "runtime"}


def _service_matches(svc: Service, f: dict[str, list[str]]) -> bool:
    if "id" in f and not any(svc.id.startswith(v) for v in f["id"]):
        return False
    if "name" in f and not any(svc.spec.name.startswith(v) for v in f["name"]):
        return False
    if "mode" in f and svc.spec.mode.name not in f["mode"]:
        return False
    if "label" in f and not label_match(svc.spec.labels, f["label"]):
        return False
    return "runtime" not in f or (svc.spec.task_template.runtime or "container") in f["runtime"]


async def list_services(request: web.Request) -> web.StreamResponse:
    view = store(request).view()
    f = filters(request, _SERVICE_FILTERS)
    status = parse_bool(request, "status")
    services = sorted(view.all(Service), key=lambda s: s.spec.name)
    down = down_nodes(view) if status else frozenset()
    return reply([service_json(view, s, status=status, down=down) for s in services if _service_matches(s, f)])


def _with_registry_auth(request: web.Request, spec: ServiceSpec, current: Service | None) -> None:
    """``--with-registry-auth``: the X-Registry-Auth header goes to the nodes in the spec; an
    update without it keeps the credentials the service had (as moby's ServiceUpdate)."""
    cs = spec.task_template.container_spec
    if cs is None:
        return
    auth = request.headers.get("X-Registry-Auth", "")
    if auth:
        cs["PullOptions"] = {"RegistryAuth": auth}
    elif current is not None:
        kept = (current.spec.task_template.container_spec or {}).get("PullOptions")
        if kept:
            cs["PullOptions"] = kept


async def create(request: web.Request) -> web.StreamResponse:
    spec = await read(request, ServiceSpec)
    _with_registry_auth(request, spec, None)
    svc = await create_service(store(request), spec)
    return reply({"ID": svc.id, "Warnings": None}, status=201)


async def inspect(request: web.Request) -> web.StreamResponse:
    view = store(request).view()
    svc = view.resolve(Service, param(request, "id"))
    return reply(service_json(view, svc, insert_defaults=parse_bool(request, "insertDefaults")))


async def update(request: web.Request) -> web.StreamResponse:
    st = store(request)
    version = version_param(request, what="service version")
    spec = await read(request, ServiceSpec)
    try:
        current: Service | None = st.view().resolve(Service, param(request, "id"))
    except NotFound:
        current = None  # update_service says so
    _with_registry_auth(request, spec, current)
    rollback = request.query.get("rollback", "") == "previous"
    await update_service(st, param(request, "id"), version, spec, rollback=rollback)
    return reply({"Warnings": None})


async def remove(request: web.Request) -> web.StreamResponse:
    await remove_service(store(request), param(request, "id"))
    return reply(None)


def task_name(view: Tables, task: Task) -> str:
    svc = view.get(Service, task.service_id)
    name = svc.spec.name if svc else task.service_id
    return f"{name}.{task.slot or task.node_id}.{task.id}"


def _resolve_ids(view: Tables, cls: type[Service | Node], refs: list[str]) -> set[str]:
    ids: set[str] = set()
    for ref in refs:
        try:
            ids.add(view.resolve(cls, ref).id)
        except NotFound:
            continue
    return ids


def _task_matches(view: Tables, task: Task, f: dict[str, list[str]], services: set[str] | None, nodes: set[str] | None) -> bool:
    if "id" in f and not any(task.id.startswith(v) for v in f["id"]):
        return False
    if services is not None and task.service_id not in services:
        return False
    if nodes is not None and task.node_id not in nodes:
        return False
    if "desired-state" in f and task.desired_state not in f["desired-state"]:
        return False
    if "name" in f and not any(task_name(view, task).startswith(v) for v in f["name"]):
        return False
    if "label" in f:
        svc = view.get(Service, task.service_id)
        if svc is None or not label_match(svc.spec.labels, f["label"]):
            return False
    if "_up-to-date" in f:
        svc = view.get(Service, task.service_id)
        if svc is None or task.spec != svc.spec.task_template or task.endpoint_spec != svc.spec.endpoint_spec:
            return False
    return True


async def list_tasks(request: web.Request) -> web.StreamResponse:
    view = store(request).view()
    f = filters(request, _TASK_FILTERS)
    services = _resolve_ids(view, Service, f["service"]) if "service" in f else None
    nodes = _resolve_ids(view, Node, f["node"]) if "node" in f else None
    if services is not None and len(services) == 1:
        candidates = view.tasks_of_service(next(iter(services)))
    elif nodes is not None and len(nodes) == 1:
        candidates = view.tasks_of_node(next(iter(nodes)))
    else:
        candidates = view.all(Task)
    tasks = [t for t in candidates if _task_matches(view, t, f, services, nodes)]
    tasks.sort(key=lambda t: (t.service_id, t.slot, t.node_id, t.created_at))
    return reply([task_json(t) for t in tasks])


async def inspect_task(request: web.Request) -> web.StreamResponse:
    view = store(request).view()
    return reply(task_json(view.resolve(Task, param(request, "id"))))


def register(router: Router) -> None:
    router.add("GET", "/services", list_services)
    router.add("POST", "/services/create", create)
    router.add("GET", "/services/{id}", inspect)
    router.add("POST", "/services/{id}/update", update)
    router.add("DELETE", "/services/{id}", remove)
    router.add("GET", "/tasks", list_tasks)
    router.add("GET", "/tasks/{id}", inspect_task)
