"""VolumeService: this node's named volumes (moby ``volume/service``), for the ``/volumes`` API
and for the executor that mounts them into task containers.

Who uses a volume is never bookkept here: ``users`` (the daemon passes the executor's) reads it
from the containers on disk, running or not, as dockerd counts references: so ``rm`` of a volume
a container uses is refused with moby's words, ``dangling`` means no container uses it, and a
restarted daemon knows as much as before. Only the ``local`` driver exists (no plugins).
Blocking; one call at a time (a lock), as the API runs it in a thread.

Events (moby volume/service and daemon/volumes_unix.go), when given the node's event log:
``create`` and ``destroy`` (``driver``), ``prune`` (no ID, ``reclaimed``), and ``mount`` /
``unmount`` when the caller names the container (``driver``, ``container``, and for a mount
``destination``, ``read/write``, ``propagation``).
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from shoal.errors import Conflict, InvalidArgument, NotFound
from shoal.events import EventLog
from shoal.fsutil import write_atomic
from shoal.model.volumes import ANONYMOUS_LABEL, Volume
from shoal.volume.local import DRIVER, LocalDriver, validate_name, validate_options

__all__ = ["PruneReport", "Users", "VolumeService"]

Users = Callable[[], Mapping[str, Sequence[str]]]  # volume name -> IDs of the containers using it
_META = "volume.json"


@dataclass(frozen=True, slots=True)
class PruneReport:
    deleted: list[str]
    space: int


def _no_users() -> Mapping[str, Sequence[str]]:
    return {}


def _plugin_missing(name: str, driver: str) -> NotFound:
    return NotFound(f'create {name}: error looking up volume plugin {driver}: plugin "{driver}" not found')


class VolumeService:
    """Implements shoal.exec.executor.VolumeProvider."""

    def __init__(self, root: Path, *, users: Users = _no_users, events: EventLog | None = None) -> None:
        self.root = Path(root)
        self._events = events  # the node's event log (None: no events)
        self._local = LocalDriver(self.root)
        self.users = users
        self._lock = threading.RLock()

    # -- the API ---------------------------------------------------------------------------
    def create(self, name: str = "", *, driver: str = "", options: dict[str, str] | None = None,
               labels: dict[str, str] | None = None) -> Volume:
        """``docker volume create``: an existing volume of that name is returned as it is (its
        labels and options unchanged), as dockerd does; no name makes an anonymous one."""
        driver = driver or DRIVER
        if not name:
            name = secrets.token_hex(32)
            labels = {**(labels or {}), ANONYMOUS_LABEL: ""}
        with self._lock:
            if self._exists(name):
                if driver != DRIVER:
                    raise Conflict(f"create {name}: driver '{DRIVER}' already has volume '{name}': "
                                   "volume name must be unique")
                return self._volume(name)
            if driver != DRIVER:
                raise _plugin_missing(name, driver)
            try:
                validate_name(name)
                validate_options(options)
            except InvalidArgument as exc:  # moby's OpErr: the operation and the name first
                raise InvalidArgument(f"create {name}: {exc.message}") from exc
            self._local.create(name)
            meta = {"Driver": DRIVER, "Labels": labels, "Options": options,
                    "CreatedAt": _now()}
            write_atomic(self.root / name / _META, json.dumps(meta).encode(), durable=True)
            self._event(name, "create", {"driver": DRIVER})
            return self._volume(name)

    def get(self, name: str) -> Volume:
        with self._lock:
            if not self._exists(name):
                raise NotFound(f"get {name}: no such volume")
            return self._volume(name)

    def list(self) -> list[Volume]:
        with self._lock:
            return [self._volume(n) for n in self._local.names()]

    def remove(self, name: str, *, force: bool = False) -> None:
        """``docker volume rm``: refused while a container uses it; ``force`` only forgives a
        missing volume (moby's PurgeOnError)."""
        with self._lock:
            if not self._exists(name):
                if force:
                    return
                raise NotFound(f"get {name}: no such volume")
            refs = list(self.users().get(name, ()))
            if refs:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(refs)}]")
            self._local.remove(name)
            self._event(name, "destroy", {"driver": DRIVER})

    def prune(self, *, keep: Callable[[Volume], bool]) -> PruneReport:
        """Remove every volume no container uses, but those ``keep`` keeps (the API's filters:
        anonymous ones only unless ``all``, labels)."""
        with self._lock:
            used = self.users()
            deleted, space = [], 0
            for name in self._local.names():
                vol = self._volume(name)
                if used.get(name) or keep(vol):
                    continue
                size = self._local.size(name)
                self._local.remove(name)
                self._event(name, "destroy", {"driver": DRIVER})
                deleted.append(name)
                space += size
            self._event("", "prune", {"reclaimed": str(space)})
            return PruneReport(deleted, space)

    def usage(self) -> Sequence[tuple[Volume, int, int]]:
        """Each volume with its size in bytes and how many containers use it (``/system/df``)."""
        with self._lock:
            used = self.users()
            return [(self._volume(n), self._local.size(n), len(used.get(n, ())))
                    for n in self._local.names()]

    # -- for the executor ------------------------------------------------------------------
    def mount(self, name: str, *, driver: str = "", options: dict[str, str] | None = None,
              labels: dict[str, str] | None = None, container: str = "", destination: str = "",
              read_write: bool = True, propagation: str = "") -> Path:
        """The data directory a container binds: the volume created if missing (a service
        mount's driver, options and labels, as swarm's executor asks dockerd), its device
        mounted if it has one; a ``mount`` event when ``container`` names who mounts it."""
        with self._lock:
            self.create(name, driver=driver, options=options, labels=labels)
            self._local.mount(name, self._volume(name).options)
            if container:
                self._event(name, "mount", {"driver": DRIVER, "container": container,
                                            "destination": destination,
                                            "read/write": str(read_write).lower(),
                                            "propagation": propagation})
            return self._local.path(name)

    def release(self, name: str, *, container: str = "") -> None:
        """A container using the volume is gone: unmount its device once no container uses it
        (moby's reference count reaching zero); an ``unmount`` event when ``container`` names
        it."""
        with self._lock:
            if self._exists(name) and not self.users().get(name):
                self._local.unmount(name)
            if container and self._exists(name):
                self._event(name, "unmount", {"driver": DRIVER, "container": container})

    # -- internals -------------------------------------------------------------------------
    def _event(self, name: str, action: str, attributes: dict[str, str]) -> None:
        if self._events is not None:
            self._events.publish_threadsafe("volume", action, name, attributes)

    def _exists(self, name: str) -> bool:
        if not name or "/" in name or name in (".", ".."):
            return False
        try:
            return self._local.path(name).is_dir()
        except OSError:  # a name no volume can have (too long for a file name): none such
            return False

    def _meta(self, name: str) -> dict[str, object]:
        try:
            data = json.loads((self.root / name / _META).read_bytes())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _volume(self, name: str) -> Volume:
        meta = self._meta(name)
        created = meta.get("CreatedAt")
        if not isinstance(created, str) or not created:
            created = _stamp(os.stat(self.root / name).st_mtime)
        labels, options = meta.get("Labels"), meta.get("Options")
        return Volume(name=name, driver=DRIVER, mountpoint=str(self._local.path(name)),
                      created_at=created,
                      labels=dict(labels) if isinstance(labels, dict) else None,
                      options=dict(options) if isinstance(options, dict) else None)


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> str:
    return _stamp(datetime.now(UTC).timestamp())
