"""Fixtures for the image tests: an image service on a temporary root, a docker-registry on
loopback (where it is installed), and a service holding images in two repositories."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.image.service import ImageService
from tests.integration.registry_helper import docker_save_archive, registry_server, tar_bytes


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    with registry_server(tmp_path / "registry") as addr:
        yield addr


@pytest.fixture
def service(tmp_path: Path) -> ImageService:
    return ImageService(tmp_path / "image")


@pytest.fixture
def loaded(service: ImageService) -> ImageService:
    """``shoaltest/a:1`` and ``shoaltest/a:2`` (one image, labelled ``tier=web``) and
    ``shoaltest/b:1``, which shares its bottom layer."""
    shared = tar_bytes({"bin/busybox": b"\x7fELF"})
    service.load(io.BytesIO(docker_save_archive([shared], ["shoaltest/a:1", "shoaltest/a:2"],
                                                config={"Labels": {"tier": "web"}})))
    service.load(io.BytesIO(docker_save_archive([shared, tar_bytes({"b": b"only b"})], ["shoaltest/b:1"])))
    return service
