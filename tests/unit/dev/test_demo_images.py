"""The demo images of ``shoal dev``: stable digests, what the layers hold, what the configs say,
an archive that ``image load`` accepts, and (as root) the images' scripts run in a chroot with a
private network namespace: the web page and its health check, the kv protocol, the failing and
the never-healthy images."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from shoal.dev import images
from shoal.dev.images import MTIME, DemoImage, build_all, build_base_layer, docker_archive
from shoal.image.archive import load_docker_archive
from shoal.image.store import ImageStore


def _members(blob: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def _read(blob: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


@pytest.fixture(scope="module")
def built() -> dict[str, DemoImage]:
    return {i.name: i for i in build_all()}


def test_digests_are_stable_across_builds(built: dict[str, DemoImage]) -> None:
    build_base_layer.cache_clear()  # build the base layer again, from scratch
    again = {i.name: i for i in build_all()}
    assert sorted(built) == ["shoal/fail", "shoal/kv", "shoal/unhealthy", "shoal/web"]
    for name, image in built.items():
        assert again[name].manifest_digest == image.manifest_digest
        assert again[name].manifest == image.manifest
    # every image shares the one base layer
    assert len({i.layers[0] for i in built.values()}) == 1
    assert all(len(i.layers) == 2 for i in built.values())


def test_base_layer_is_busybox_with_its_applets(built: dict[str, DemoImage]) -> None:
    base = built["shoal/web"].layers[0]
    assert base[4:8] == b"\0\0\0\0"  # gzip header mtime 0
    members = _members(base)
    assert list(members) == sorted(members)
    assert all(m.mtime == MTIME and m.uid == 0 and m.gid == 0 for m in members.values())
    assert _read(base, "bin/busybox") == Path("/bin/busybox").read_bytes()
    assert members["bin/busybox"].mode == 0o755
    for applet in ("bin/sh", "usr/bin/wget", "usr/bin/timeout", "usr/bin/nc", "sbin/ip"):
        assert members[applet].issym() and members[applet].linkname == "/bin/busybox", applet
    passwd = _read(base, "etc/passwd").decode()
    assert passwd.startswith("root:x:0:0:") and "nobody:x:65534:65534:" in passwd
    assert "nogroup:x:65534:" in _read(base, "etc/group").decode()
    assert members["tmp"].isdir() and members["tmp"].mode == 0o1777


def test_configs_and_manifests(built: dict[str, DemoImage]) -> None:
    for image in built.values():
        doc = image.config_doc()
        assert doc["os"] == "linux" and doc["architecture"] == "amd64"
        diff_ids = ["sha256:" + hashlib.sha256(gzip.decompress(gz)).hexdigest()
                    for gz in image.layers]
        assert doc["rootfs"] == {"type": "layers", "diff_ids": diff_ids}
        manifest = json.loads(image.manifest)
        assert manifest["mediaType"] == images.MANIFEST_TYPE
        assert manifest["config"]["digest"] == image.config_digest
        assert [(x["digest"], x["size"]) for x in manifest["layers"]] == [
            ("sha256:" + hashlib.sha256(gz).hexdigest(), len(gz)) for gz in image.layers]
        assert set(image.blobs) == {image.config_digest, *(x["digest"] for x in manifest["layers"])}
    web = built["shoal/web"].config_doc()["config"]
    assert web["Cmd"] == ["/web.sh"] and "PORT=80" in web["Env"]
    assert web["ExposedPorts"] == {"80/tcp": {}}
    assert web["Healthcheck"]["Test"][0] == "CMD-SHELL"
    assert "timeout 3 busybox wget" in web["Healthcheck"]["Test"][1]
    assert (web["Healthcheck"]["Interval"], web["Healthcheck"]["Timeout"],
            web["Healthcheck"]["Retries"]) == (2_000_000_000, 3_000_000_000, 3)
    assert _members(built["shoal/web"].layers[1])["web.sh"].mode == 0o755
    kv = built["shoal/kv"].config_doc()["config"]
    assert kv["ExposedPorts"] == {"7000/tcp": {}} and kv["Cmd"] == ["/kv-server.sh"]
    assert set(_members(built["shoal/kv"].layers[1])) == {"kv-server.sh", "kv.sh"}
    assert built["shoal/fail"].config_doc()["config"]["Cmd"] == ["/fail.sh"]
    assert "Healthcheck" not in built["shoal/fail"].config_doc()["config"]
    sick = built["shoal/unhealthy"].config_doc()["config"]["Healthcheck"]
    assert (sick["Test"], sick["Interval"], sick["Retries"]) == (["CMD-SHELL", "exit 1"],
                                                                 1_000_000_000, 3)


def test_the_archive_loads_into_an_image_store(built: dict[str, DemoImage], tmp_path: Path) -> None:
    archive = docker_archive(built.values(), registry="127.0.0.1:5000")
    loaded = load_docker_archive(ImageStore(tmp_path / "images"), io.BytesIO(archive))
    by_name = {ref.familiar: rec for ref, rec in loaded}
    assert sorted(by_name) == sorted(f"127.0.0.1:5000/{name}" for name in built)
    assert by_name["127.0.0.1:5000/shoal/web"].config == built["shoal/web"].config_digest


needs_root = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None
                                or shutil.which("tar") is None,
                                reason="needs root, unshare and tar")

SCRIPT = r"""
set -u
hostname shoaltest-ctr
ip link set lo up
PORT=8080 /web.sh >/tmp/web.log 2>&1 &
/kv-server.sh >/tmp/kv.log 2>&1 &
i=0
until timeout 3 busybox wget -q -O - http://127.0.0.1:8080/ >/tmp/page 2>/dev/null \
      && printf 'PING\nQUIT\n' | timeout 3 nc 127.0.0.1 7000 | grep -q PONG; do
  i=$((i+1)); [ $i -lt 100 ] || { echo "servers did not start"; exit 1; }; sleep 0.1
done
echo "page: $(cat /tmp/page | tr -d '\n')"
PORT=8080 sh -c "$WEB_HEALTH"; echo "web health: $?"
sh -c "$KV_HEALTH"; echo "kv health: $?"
printf 'SET greeting hello world\r\nGET greeting\nGET nope\nSET ../x y\nKEYS\nDEL greeting\nGET greeting\nQUIT\n' \
  | timeout 5 nc 127.0.0.1 7000 | sed 's/^/kv: /'
sh -c "$SICK_HEALTH"; echo "unhealthy health: $?"
FAIL_AFTER=0 /fail.sh; echo "fail exit: $?"
kill %1 %2; wait
"""


@needs_root
def test_the_images_behave(built: dict[str, DemoImage], tmp_path: Path) -> None:
    rootfs = tmp_path / "shoaltest-rootfs"
    rootfs.mkdir()
    for name in ("shoal/web", "shoal/kv", "shoal/fail", "shoal/unhealthy"):
        for gz in built[name].layers[1 if name != "shoal/web" else 0:]:
            subprocess.run(["tar", "-xzf", "-", "-C", str(rootfs)], input=gz, check=True,
                           timeout=60)
    os.mknod(rootfs / "dev/null", 0o666 | 0o020000, os.makedev(1, 3))
    health = {key: built[name].config_doc()["config"]["Healthcheck"]["Test"][1]
              for key, name in (("WEB_HEALTH", "shoal/web"), ("KV_HEALTH", "shoal/kv"),
                                ("SICK_HEALTH", "shoal/unhealthy"))}
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **health}
    # a network namespace and a UTS namespace of its own: the host's are not touched
    out = subprocess.run(["timeout", "60", "unshare", "--net", "--uts", "chroot", str(rootfs),
                          "/bin/sh", "-c", SCRIPT], env=env, capture_output=True, text=True,
                         timeout=90, check=False)
    lines = out.stdout.splitlines()
    assert out.returncode == 0, out.stdout + out.stderr
    page = next(line for line in lines if line.startswith("page: "))
    assert "Hello from shoaltest-ctr" in page
    assert "web health: 0" in lines and "kv health: 0" in lines
    assert [line for line in lines if line.startswith("kv: ")] == [
        "kv: OK", "kv: hello world", "kv: NIL", "kv: ERR bad key", "kv: greeting", "kv: OK",
        "kv: NIL"]
    assert "unhealthy health: 1" in lines
    assert lines[lines.index("fail exit: 3") - 1] == "failing"
