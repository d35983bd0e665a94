"""``docker import``: a compressed rootfs tar as a one-layer image with ``--change``s applied,
named or dangling; a refused change or a broken tar leaves nothing behind."""

from __future__ import annotations

import asyncio
import gzip
import io

import pytest

from shoal.errors import InvalidArgument
from shoal.image.service import ImageService
from shoal.image.store import digest_of
from tests.integration.registry_helper import blob_count, busybox_rootfs, tar_bytes


def test_import_rootfs_with_changes(service: ImageService) -> None:
    rootfs = gzip.compress(busybox_rootfs())
    ident = service.import_rootfs(io.BytesIO(rootfs), "shoaltest/imp:1",
                                  ['CMD ["sh"]', "ENV A=1", "WORKDIR /srv", "EXPOSE 80",
                                   "HEALTHCHECK --interval=5s CMD true"], "from a test")
    info = service.inspect("shoaltest/imp:1")
    assert info["Id"] == ident and info["Comment"] == "from a test" and info["RepoTags"] == ["shoaltest/imp:1"]
    assert info["Config"] == {"Cmd": ["sh"], "Env": ["A=1"], "WorkingDir": "/srv",
                              "ExposedPorts": {"80/tcp": {}},
                              "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000}}
    assert info["RootFS"]["Layers"] == [digest_of(busybox_rootfs())]  # stored uncompressed
    assert info["Os"] == "linux" and info["Architecture"]
    image = asyncio.run(service.ensure("shoaltest/imp:1"))
    assert (image.layer_dirs[0] / "bin/sh").is_symlink()
    untagged = service.import_rootfs(io.BytesIO(tar_bytes({"x": b"y"})))
    assert [i["Id"] for i in service.list({"dangling": ["true"]})] == [untagged]


def test_a_failed_import_leaves_nothing(service: ImageService) -> None:
    with pytest.raises(InvalidArgument, match="run is not a valid change command"):
        service.import_rootfs(io.BytesIO(tar_bytes({"a": b"1"})), "shoaltest/x:1", ["RUN true"])
    with pytest.raises(InvalidArgument, match="invalid tar header"):
        service.import_rootfs(io.BytesIO(b"this is not a tar" * 100), "shoaltest/x:1")
    assert blob_count(service.root) == 0 and service.list() == []
