"""The image events a node publishes, as moby's LogImageEvent callers: pull (a real
docker-registry on loopback), tag, untag, delete, load and import, with the image's labels."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from shoal.events import Event, EventLog
from shoal.image.service import ImageService
from tests.integration.registry_helper import (
    HAVE_REGISTRY,
    busybox_rootfs,
    docker_save_archive,
    push_image,
    tar_bytes,
)


def seen(log: EventLog) -> list[tuple[str, str, dict[str, str]]]:
    return [(e.action, e.actor_id, dict(e.attributes)) for e in log.replay(0) if _image(e)]


def _image(e: Event) -> bool:
    return e.type == "image" and e.scope == "local"


def test_load_tag_untag_delete(tmp_path: Path) -> None:
    log = EventLog()
    service = ImageService(tmp_path / "image", events=log)
    service.load(io.BytesIO(docker_save_archive([tar_bytes({"a": b"1"})], ["shoaltest/a:1", "shoaltest/a:2"],
                                                config={"Labels": {"tier": "web"}})))
    ident = service.inspect("shoaltest/a:1")["Id"]
    assert seen(log) == [("load", ident, {"tier": "web", "name": ident})]  # one per image
    service.tag("shoaltest/a:1", "docker.io/library/other:3")
    assert seen(log)[-1] == ("tag", ident, {"tier": "web", "name": "other:3"})
    service.remove("shoaltest/a:2")
    assert seen(log)[-1] == ("untag", ident, {"tier": "web", "name": ident})
    service.remove(ident, force=True)
    assert [a for a, _, _ in seen(log)] == ["load", "tag", "untag", "untag", "untag", "delete"]
    assert seen(log)[-1] == ("delete", ident, {"name": ident})  # the image is gone: no labels


def test_import_tags_then_imports(tmp_path: Path) -> None:
    log = EventLog()
    service = ImageService(tmp_path / "image", events=log)
    ident = service.import_rootfs(io.BytesIO(tar_bytes({"etc/x": b"y"})), "shoaltest/imp:1",
                                  ['LABEL team="a"'])
    assert seen(log) == [("tag", ident, {"team": "a", "name": "shoaltest/imp:1"}),
                         ("import", ident, {"team": "a", "name": ident})]


def test_no_log_no_events(tmp_path: Path) -> None:
    service = ImageService(tmp_path / "image")
    service.import_rootfs(io.BytesIO(tar_bytes({"etc/x": b"y"})), "shoaltest/imp:1")  # nothing to fail


@pytest.mark.skipif(not HAVE_REGISTRY, reason="docker-registry is not installed")
async def test_pull_and_a_tasks_pull(registry: str, tmp_path: Path) -> None:
    push_image(registry, "shoaltest/web", "1", [busybox_rootfs()], config={"Labels": {"v": "1"}})
    log = EventLog()
    service = ImageService(tmp_path / "image", events=log)
    await service.pull(f"{registry}/shoaltest/web:1")
    assert seen(log) == [("pull", f"{registry}/shoaltest/web:1", {"v": "1", "name": f"{registry}/shoaltest/web"})]
    other = ImageService(tmp_path / "image2", events=log)
    await other.ensure(f"{registry}/shoaltest/web:1")
    await other.ensure(f"{registry}/shoaltest/web:1")  # local now: no second pull
    assert [a for a, _, _ in seen(log)] == ["pull", "pull"]
