"""The catalog of names: a tag moved to another image leaves the old one dangling, as Docker's
``<none>:<none>``, still found by its ID."""

from __future__ import annotations

import io

from shoal.image.service import ImageService
from tests.integration.registry_helper import docker_save_archive, tar_bytes


def test_a_moved_tag_leaves_the_old_image_dangling(service: ImageService) -> None:
    service.load(io.BytesIO(docker_save_archive([tar_bytes({"v": b"1"})], ["shoaltest/m:1"])))
    old = service.inspect("shoaltest/m:1")["Id"]
    service.load(io.BytesIO(docker_save_archive([tar_bytes({"v": b"2"})], ["shoaltest/m:1"])))
    assert service.inspect("shoaltest/m:1")["Id"] != old
    assert [i["Id"] for i in service.list({"dangling": ["true"]})] == [old]
    assert service.remove(old) == [{"Deleted": old}]
