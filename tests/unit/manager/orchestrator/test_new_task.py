"""What a new task carries of its service for the node: the name and the labels (swarmkit's
ServiceAnnotations, for container names and templated secrets and configs), never shown by
the API."""

from __future__ import annotations

from shoal.api.render import task_json
from shoal.manager.orchestrator.common import new_task
from shoal.model.objects import Service
from shoal.model.specs import ServiceSpec


def test_new_task_carries_the_service_name_and_labels_the_api_hides() -> None:
    svc = Service(id="s1", spec=ServiceSpec(name="web", labels={"tier": "front"}))
    task = new_task(svc, slot=2)
    assert task.service_name == "web" and task.service_labels == {"tier": "front"}
    assert task.full_name == f"web.2.{task.id}"
    out = task_json(task)
    assert "ServiceLabels" not in out and "ServiceName" not in out
    assert new_task(Service(id="s2", spec=ServiceSpec(name="x"))).service_labels is None
