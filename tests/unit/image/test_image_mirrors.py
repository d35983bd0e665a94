"""Registry mirrors: dockerd's validation of ``--registry-mirror``, and pulls of Docker Hub names
that go to the mirrors in order (a mirror that is down or lacks the image is skipped), from real
docker-registries on loopback; other registries are never mirrored."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.errors import InvalidArgument
from shoal.image.mirrors import endpoints, validate_mirror
from shoal.image.reference import parse
from shoal.image.service import ImageService
from shoal.image.store import digest_of
from shoal.store.etcd.testing import free_port
from tests.integration.registry_helper import HAVE_REGISTRY, push_image, registry_server, tar_bytes


@pytest.mark.parametrize(("value", "kept"), [
    ("https://mirror.gcr.io", "https://mirror.gcr.io/"),
    ("http://127.0.0.1:5000/", "http://127.0.0.1:5000/"),
    ("https://example.com/hub/", "https://example.com/hub/"),
])
def test_valid_mirrors_are_kept_as_dockerd_keeps_them(value: str, kept: str) -> None:
    assert validate_mirror(value) == kept


@pytest.mark.parametrize(("value", "message"), [
    ("mirror.gcr.io", "unsupported scheme ''"),
    ("ftp://mirror", "unsupported scheme 'ftp'"),
    ("https://mirror/?x=1", "query or fragment"),
    ("https://user:pw@mirror", "username/password not allowed"),
    ("http://", "no host"),
])
def test_invalid_mirrors_are_refused(value: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        validate_mirror(value)


def test_only_docker_hub_names_are_mirrored() -> None:
    mirrors = ["http://a/", "http://b/"]
    assert endpoints(parse("redis:alpine"), mirrors) == ["http://a/", "http://b/", ""]
    assert endpoints(parse("dockersamples/examplevotingapp_vote"), mirrors)[0] == "http://a/"
    assert endpoints(parse("127.0.0.1:5000/redis"), mirrors) == [""]
    assert endpoints(parse("quay.io/x/y"), mirrors) == [""]


@pytest.mark.skipif(not HAVE_REGISTRY, reason="docker-registry is not installed")
async def test_a_hub_name_is_pulled_from_the_first_mirror_that_has_it(tmp_path: Path) -> None:
    with registry_server(tmp_path / "empty") as empty, registry_server(tmp_path / "full") as full:
        manifest = push_image(full, "library/shoaltest-redis", "alpine", [tar_bytes({"x": b"1"})])
        down = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
        service = ImageService(tmp_path / "image",
                               registry_mirrors=[down, f"http://{empty}/", f"http://{full}/"])
        events: list[dict[str, object]] = []
        image = await service.pull("shoaltest-redis:alpine", progress=events.append)
        assert image.record.manifest == digest_of(manifest)
        assert events[-1]["status"] == "Status: Downloaded newer image for shoaltest-redis:alpine"
        described = await service.distribution("docker.io/library/shoaltest-redis:alpine")
        assert described["Descriptor"]["digest"] == digest_of(manifest)
        ready = await service.ensure("shoaltest-redis:alpine")  # by its Hub name, now local
        assert ready.record.manifest == digest_of(manifest)
