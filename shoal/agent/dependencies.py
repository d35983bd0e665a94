"""The secrets' and configs' data the manager sent (swarmkit agent/secrets, agent/configs):
in memory only, never in the task files the worker writes. Each task's references are kept
apart from the data, so an ID is forgotten once no task the agent holds references it, and a
task's controller sees only what its own spec references."""

from __future__ import annotations

from collections.abc import Iterable

from shoal.model.dispatch import SecretData
from shoal.model.objects import Task
from shoal.model.references import config_ids, secret_ids

__all__ = ["Dependencies"]


class Dependencies:
    def __init__(self) -> None:
        self._secrets: dict[str, SecretData] = {}
        self._configs: dict[str, SecretData] = {}
        self._refs: dict[str, tuple[frozenset[str], frozenset[str]]] = {}  # task ID -> IDs

    def __len__(self) -> int:
        return len(self._secrets) + len(self._configs)

    def ids(self) -> tuple[set[str], set[str]]:
        """The secret and config IDs whose data is held (for tests and logs; never the data)."""
        return set(self._secrets), set(self._configs)

    def held_tasks(self) -> set[str]:
        return set(self._refs)

    def add(self, secrets: Iterable[SecretData], configs: Iterable[SecretData], *,
            reset: bool = False) -> None:
        """Data from an Assignments; ``reset`` (a full one) first drops all held data."""
        if reset:
            self._secrets.clear()
            self._configs.clear()
        self._secrets.update((d.id, d) for d in secrets)
        self._configs.update((d.id, d) for d in configs)

    def hold(self, task: Task) -> None:
        self._refs[task.id] = (frozenset(secret_ids(task)), frozenset(config_ids(task)))

    def release(self, task_id: str) -> None:
        """The task is gone: forget the data no other held task references."""
        if self._refs.pop(task_id, None) is not None:
            self.prune()

    def prune(self) -> None:
        """Forget the data no held task references."""
        used_s = set().union(*(s for s, _ in self._refs.values()))
        used_c = set().union(*(c for _, c in self._refs.values()))
        for i in [i for i in self._secrets if i not in used_s]:
            del self._secrets[i]
        for i in [i for i in self._configs if i not in used_c]:
            del self._configs[i]

    def files(self, task: Task) -> TaskFilesOf:
        return TaskFilesOf(self, frozenset(secret_ids(task)), frozenset(config_ids(task)))

    def _secret(self, secret_id: str) -> SecretData | None:
        return self._secrets.get(secret_id)

    def _config(self, config_id: str) -> SecretData | None:
        return self._configs.get(config_id)


class TaskFilesOf:
    """shoal.exec.TaskFiles for one task: only the IDs its spec references (swarmkit's
    Restrict), read at the time of asking (data that arrives later is seen)."""

    def __init__(self, deps: Dependencies, secrets: frozenset[str],
                 configs: frozenset[str]) -> None:
        self._deps = deps
        self._secrets = secrets
        self._configs = configs

    def _get(self, kind: str, ref_id: str) -> SecretData | None:
        if kind == "secret":
            return self._deps._secret(ref_id) if ref_id in self._secrets else None
        return self._deps._config(ref_id) if ref_id in self._configs else None

    def secret(self, secret_id: str) -> bytes | None:
        d = self._get("secret", secret_id)
        return None if d is None else d.data

    def config(self, config_id: str) -> bytes | None:
        d = self._get("config", config_id)
        return None if d is None else d.data

    def templating(self, kind: str, ref_id: str) -> str:
        d = self._get(kind, ref_id)
        return "" if d is None else d.templating
