"""The agent's state on disk: one JSON file per assigned task, and the manager list.

    <state_dir>/worker/<task_id>.json   the Task as last known, with the agent's latest status
    <state_dir>/state.json              {"Managers": [{"NodeID": ..., "Addr": ...}], ...}

Every write goes to a temporary file that replaces the old one (os.replace), so a crash leaves
either the old or the new content. Unreadable task files are skipped with a warning. Other
keys in state.json are kept as they are.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import msgspec

from shoal.model.dispatch import ManagerAddr
from shoal.model.objects import Task

__all__ = ["TaskStorage", "atomic_write", "load_managers", "save_managers"]

log = logging.getLogger(__name__)


def atomic_write(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Replace ``path`` with ``data`` in one step; ``durable`` also survives a power cut
    (fsync: too slow for every task status in a scale run, so only for state.json)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


class TaskStorage:
    """Tasks of this node, one file each under ``<state_dir>/worker/``."""

    def __init__(self, state_dir: Path) -> None:
        self._dir = Path(state_dir) / "worker"

    def _path(self, task_id: str) -> Path:
        if not task_id or "/" in task_id or task_id.startswith("."):
            raise ValueError(f"invalid task id {task_id!r}")
        return self._dir / f"{task_id}.json"

    def save(self, task: Task) -> None:
        atomic_write(self._path(task.id), msgspec.json.encode(task))

    def delete(self, task_id: str) -> None:
        self._path(task_id).unlink(missing_ok=True)

    def load_all(self) -> list[Task]:
        if not self._dir.is_dir():
            return []
        tasks = []
        for path in sorted(self._dir.glob("*.json")):
            try:
                tasks.append(msgspec.json.decode(path.read_bytes(), type=Task))
            except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
                log.warning("skipping unreadable task file %s: %s", path, exc)
        return tasks


def _read_state(state_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((Path(state_dir) / "state.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_managers(state_dir: Path) -> list[ManagerAddr]:
    raw = _read_state(state_dir).get("Managers") or []
    try:
        return msgspec.convert(raw, list[ManagerAddr])
    except msgspec.ValidationError:
        return []


def save_managers(state_dir: Path, managers: list[ManagerAddr]) -> None:
    state = _read_state(state_dir)
    state["Managers"] = msgspec.to_builtins(managers)
    atomic_write(Path(state_dir) / "state.json", json.dumps(state, indent=2).encode(),
                 durable=True)
