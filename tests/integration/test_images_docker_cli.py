"""A real shoald driven by the real docker CLI 28: pull from a docker-registry on loopback,
images, image inspect, load, import with --change, rmi, and service create pinning the
registry's digest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from shoal.dev.local import Swarm
from shoal.image.store import digest_of
from tests.integration.registry_helper import (
    HAVE_REGISTRY,
    busybox_rootfs,
    docker_save_archive,
    push_image,
    registry_server,
    tar_bytes,
)

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not HAVE_REGISTRY, reason="docker-registry is not installed")]


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    with registry_server(tmp_path / "registry") as addr:
        yield addr


def test_docker_cli_images(swarm: Swarm, registry: str, tmp_path: Path) -> None:
    rootfs = busybox_rootfs()
    manifest = push_image(registry, "shoaltest/bb", "1", [rootfs], config={"Cmd": ["sh"], "Env": ["A=1"]})
    d = swarm.add()
    name = f"{registry}/shoaltest/bb:1"

    pulled = d.docker("pull", name)
    lines = pulled.stdout.splitlines()
    assert f"Digest: {digest_of(manifest)}" in lines
    assert f"Status: Downloaded newer image for {name}" in lines and lines[-1] == name
    again = d.docker("pull", name).stdout
    assert f"Status: Image is up to date for {name}" in again

    table = d.docker("images").stdout.splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert table[1].split()[:2] == [f"{registry}/shoaltest/bb", "1"]
    info = json.loads(d.docker("image", "inspect", name).stdout)[0]
    assert info["RepoDigests"] == [f"{registry}/shoaltest/bb@{digest_of(manifest)}"]
    assert info["Config"]["Env"] == ["A=1"] and info["Os"] == "linux"
    missing = d.docker("image", "inspect", "shoaltest/nosuch:1", check=False)
    assert missing.returncode == 1 and "No such image: shoaltest/nosuch:1" in missing.stderr
    nosuch = d.docker("pull", f"{registry}/shoaltest/bb:nope", check=False)
    assert nosuch.returncode == 1 and "not found" in nosuch.stderr

    archive = tmp_path / "shoaltest-saved.tar"
    archive.write_bytes(docker_save_archive([tar_bytes({"etc/saved": b"yes"})], ["shoaltest/saved:1"]))
    assert "Loaded image: shoaltest/saved:1" in d.docker("load", "-i", str(archive)).stdout
    bad = tmp_path / "shoaltest-bad.tar"
    bad.write_bytes(b"not an archive" * 100)
    refused = d.docker("load", "-i", str(bad), check=False)
    assert refused.returncode == 1 and "invalid archive" in refused.stderr

    tarball = tmp_path / "shoaltest-rootfs.tar"
    tarball.write_bytes(rootfs)
    ident = d.docker("import", "--change", 'CMD ["sh"]', "--change", "ENV B=2", "-m", "imported",
                     str(tarball), "shoaltest/imp:1").stdout.strip()
    assert ident.startswith("sha256:")
    imported = json.loads(d.docker("image", "inspect", "shoaltest/imp:1").stdout)[0]
    assert imported["Id"] == ident and imported["Config"]["Cmd"] == ["sh"]
    assert imported["Config"]["Env"] == ["B=2"] and imported["Comment"] == "imported"
    bad_change = d.docker("import", "--change", "RUN true", str(tarball), "shoaltest/imp:2", check=False)
    assert bad_change.returncode == 1 and "run is not a valid change command" in bad_change.stderr
    removed = d.docker("rmi", "shoaltest/imp:1").stdout.splitlines()
    assert removed == ["Untagged: shoaltest/imp:1", f"Deleted: {ident}"]
    assert "shoaltest/imp" not in d.docker("images").stdout

    client = docker.DockerClient(base_url=d.host, timeout=30)
    try:
        image = client.images.pull(f"{registry}/shoaltest/bb", tag="1")
        assert image.id == info["Id"] and name in image.tags
        assert [i.id for i in client.images.list(name=f"{registry}/shoaltest/bb")] == [info["Id"]]
        assert client.api.inspect_distribution(name)["Descriptor"]["digest"] == digest_of(manifest)
    finally:
        client.close()

    d.docker("swarm", "init", "--advertise-addr", d.ip)
    d.docker("service", "create", "--detach", "--name", "shoaltest-pinned", name)
    image = d.docker("service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
                     "shoaltest-pinned").stdout.strip()
    assert image == f"{name}@{digest_of(manifest)}"
    d.docker("service", "rm", "shoaltest-pinned")
