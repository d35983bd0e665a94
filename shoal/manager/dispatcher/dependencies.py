"""Which secrets' and configs' data a session sends with its assignments (swarmkit's
dispatcher/assignments.go, simplified): the data of what the node's tasks reference, each once
per session. The plain bytes exist only while an Assignments message is built; the secrets key
that opens them is opened with the manager's store DEK (shoal.manager.deks)."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterable

from shoal.errors import ShoalError
from shoal.manager.deks import ClusterKeys
from shoal.manager.secretbox import open_sealed
from shoal.model.dispatch import SecretData
from shoal.model.objects import Config, Secret, Task
from shoal.model.references import config_ids, secret_ids
from shoal.model.states import TaskState
from shoal.store.tables import Tables

__all__ = ["SentData"]

log = logging.getLogger(__name__)


class SentData:
    """The IDs a session's node has been sent the data of; never more than its tasks reference,
    so data the agent forgot (its last referencing task went) is sent again when needed."""

    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self.configs: set[str] = set()

    def collect(self, view: Tables, sending: Iterable[Task], node_tasks: Iterable[Task], *,
                full: bool, keys: ClusterKeys) -> tuple[list[SecretData], list[SecretData]]:
        """The data to send with ``sending`` (the tasks in this Assignments) for those that may
        still run; ``node_tasks``: every task assigned to the node now, which bounds what
        counts as sent."""
        if full:
            self.secrets.clear()
            self.configs.clear()
        held_s: set[str] = set()
        held_c: set[str] = set()
        for task in node_tasks:
            held_s |= secret_ids(task)
            held_c |= config_ids(task)
        self.secrets &= held_s
        self.configs &= held_c
        want_s: set[str] = set()
        want_c: set[str] = set()
        for task in filter(_will_run, sending):
            want_s |= secret_ids(task)
            want_c |= config_ids(task)
        missing = sorted(want_s - self.secrets)
        key = _secrets_key(view, keys) if missing else ""
        secrets = [d for i in missing if (d := _secret(view, key, i)) is not None]
        configs = [d for i in sorted(want_c - self.configs) if (d := _config(view, i)) is not None]
        self.secrets |= {d.id for d in secrets}
        self.configs |= {d.id for d in configs}
        return secrets, configs


def _will_run(task: Task) -> bool:
    """A task that may still start needs its files; one that ended or is being stopped does not
    (swarmkit adds a task's dependencies only while it is at most RUNNING; a job's task is
    desired COMPLETE)."""
    return task.state <= TaskState.RUNNING and task.desired_state <= TaskState.COMPLETE


def _secrets_key(view: Tables, keys: ClusterKeys) -> str:
    cluster = view.cluster()
    try:
        return keys.secrets_key(cluster) if cluster is not None else ""
    except ShoalError as exc:
        log.error("no secret can be sent: %s", exc.message)
        return ""


def _secret(view: Tables, key: str, secret_id: str) -> SecretData | None:
    secret = view.get(Secret, secret_id)
    if secret is None:
        log.warning("secret %s is referenced by a task but not in the store", secret_id)
        return None
    try:
        data = open_sealed(key, secret.sealed, secret_id=secret.id)
    except ShoalError as exc:
        log.error("%s", exc.message)
        return None
    templating = secret.spec.templating.name if secret.spec.templating else ""
    return SecretData(id=secret.id, name=secret.spec.name, data=data, templating=templating)


def _config(view: Tables, config_id: str) -> SecretData | None:
    config = view.get(Config, config_id)
    if config is None:
        log.warning("config %s is referenced by a task but not in the store", config_id)
        return None
    try:
        data = base64.b64decode(config.spec.data or "", validate=True)
    except (binascii.Error, ValueError):
        log.error("config %s: its data is not base64", config_id)
        return None
    templating = config.spec.templating.name if config.spec.templating else ""
    return SecretData(id=config.id, name=config.spec.name, data=data, templating=templating)
