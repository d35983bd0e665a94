"""The secrets and configs a task references, read from its ContainerSpec (Docker's wire shape):

    "Secrets": [{"File": {"Name": "db_pw", "UID": "0", "GID": "0", "Mode": 292},
                 "SecretID": "...", "SecretName": "db_pw"}]
    "Configs": [{"File": {...}, "ConfigID": "...", "ConfigName": "..."}]

The dispatcher sends a node the data of what its tasks reference, the agent forgets what none
of its tasks references any more, and an executor mounts each as a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from shoal.model.objects import Task

__all__ = ["FileRef", "config_ids", "file_refs", "secret_ids"]

Kind = Literal["secret", "config"]


@dataclass(frozen=True, slots=True)
class FileRef:
    """One secret or config as a file in the container (``name``: File.Name, as given)."""

    kind: Kind
    id: str
    name: str
    uid: int = 0
    gid: int = 0
    mode: int = 0o444

    @property
    def target(self) -> str:
        """Where the file appears: an absolute File.Name as is; else a secret under
        /run/secrets, a config at the root (Docker's)."""
        if self.name.startswith("/"):
            return self.name
        return f"/run/secrets/{self.name}" if self.kind == "secret" else f"/{self.name}"


def _refs(container_spec: dict[str, Any], kind: Kind) -> list[FileRef]:
    key, id_key, name_key = (("Secrets", "SecretID", "SecretName") if kind == "secret"
                             else ("Configs", "ConfigID", "ConfigName"))
    out = []
    for ref in container_spec.get(key) or []:
        if not isinstance(ref, dict) or not ref.get(id_key):
            continue
        f = ref.get("File")
        if not isinstance(f, dict):
            continue  # a config without File is a runtime (CredentialSpec) one: no file
        mode = f.get("Mode")
        out.append(FileRef(kind=kind, id=str(ref[id_key]),
                           name=str(f.get("Name") or ref.get(name_key) or ref[id_key]),
                           uid=int(f.get("UID") or 0), gid=int(f.get("GID") or 0),
                           mode=int(mode) if mode is not None else 0o444))
    return out


def file_refs(task: Task) -> list[FileRef]:
    """The task's secrets, then its configs, as files."""
    cs = task.spec.container_spec or {}
    return [*_refs(cs, "secret"), *_refs(cs, "config")]


def secret_ids(task: Task) -> set[str]:
    refs = (task.spec.container_spec or {}).get("Secrets") or []
    return {str(r["SecretID"]) for r in refs if isinstance(r, dict) and r.get("SecretID")}


def config_ids(task: Task) -> set[str]:
    refs = (task.spec.container_spec or {}).get("Configs") or []
    return {str(r["ConfigID"]) for r in refs if isinstance(r, dict) and r.get("ConfigID")}
