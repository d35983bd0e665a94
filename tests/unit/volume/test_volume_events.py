"""The volume events a node publishes (moby volume/service, daemon/volumes_unix.go): create and
destroy with the driver, prune with the space reclaimed, mount and unmount naming the
container."""

from __future__ import annotations

from pathlib import Path

from shoal.events import EventLog
from shoal.volume import VolumeService


def seen(log: EventLog) -> list[tuple[str, str, dict[str, str]]]:
    return [(e.action, e.actor_id, dict(e.attributes)) for e in log.replay(0) if e.type == "volume"]


def test_create_mount_unmount_remove_prune(tmp_path: Path) -> None:
    log = EventLog()
    used: dict[str, list[str]] = {}
    volumes = VolumeService(tmp_path / "volumes", users=lambda: used, events=log)
    volumes.create("data")
    volumes.create("data")  # exists: no second create
    volumes.mount("data", container="c1", destination="/srv", read_write=False)
    volumes.mount("data")  # no container named: no event
    volumes.release("data", container="c1")
    volumes.remove("data")
    volumes.create("old")
    (tmp_path / "volumes" / "old" / "_data" / "f").write_bytes(b"x" * 10)
    volumes.prune(keep=lambda v: False)
    assert seen(log) == [
        ("create", "data", {"driver": "local"}),
        ("mount", "data", {"driver": "local", "container": "c1", "destination": "/srv",
                           "read/write": "false", "propagation": ""}),
        ("unmount", "data", {"driver": "local", "container": "c1"}),
        ("destroy", "data", {"driver": "local"}),
        ("create", "old", {"driver": "local"}),
        ("destroy", "old", {"driver": "local"}),
        ("prune", "", {"reclaimed": "10"}),
    ]
