"""The demo images of ``shoal dev``, built in Python from this machine's static busybox.

Every image is an OCI image: a shared base layer (``/bin/busybox``, its applets as symlinks to
it as ``busybox --install -s`` makes them, ``/etc/passwd`` with root and nobody, ``/etc/group``,
``/tmp`` 1777) plus one small layer of its own. Builds are deterministic (sorted entries, fixed
owners and mtimes, gzip mtime 0, canonical JSON), so the digests stay the same from run to run
and a re-push uploads nothing.

* ``shoal/web``       ``busybox httpd`` on ``$PORT`` (80) serving an index page that names the
                      container's hostname; HEALTHCHECK fetches it; EXPOSE 80/tcp.
* ``shoal/kv``        a TCP key-value toy on ``$KV_PORT`` (7000): ``SET k v``, ``GET k``, ``DEL k``,
                      ``KEYS``, ``PING``, ``QUIT``, one command a line, keys stored as files under
                      ``/data``; EXPOSE 7000/tcp.
* ``shoal/fail``      prints "failing", exits 3 after a second.
* ``shoal/unhealthy`` keeps running, and its HEALTHCHECK always fails (1 s interval, 3 retries).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "BUSYBOX",
    "CONFIG_TYPE",
    "KV_SERVER_SH",
    "KV_SH",
    "LAYER_TYPE",
    "MANIFEST_TYPE",
    "PATH_ENV",
    "DemoImage",
    "build_all",
    "build_base_layer",
    "demo_images",
    "docker_archive",
    "image",
    "layer",
    "regular",
]

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"

BUSYBOX = Path("/bin/busybox")
MTIME = 946684800  # 2000-01-01T00:00:00Z: every entry's mtime, so digests never drift
CREATED = "2000-01-01T00:00:00Z"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SECOND = 1_000_000_000  # health check durations are nanoseconds in an image config

PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = b"root:x:0:\nnogroup:x:65534:\n"

WEB_SH = b"""#!/bin/sh
# shoal/web: write an index page naming this container, then serve /www with busybox httpd.
PORT="${PORT:-80}"
mkdir -p /www
cat > /www/index.html <<EOF
<!doctype html>
<html><head><title>shoal/web on $(hostname)</title></head>
<body><h1>Hello from $(hostname)</h1><p>shoal/web, busybox httpd on port $PORT</p></body></html>
EOF
echo "shoal/web: serving /www on port $PORT as $(hostname)"
busybox httpd -f -p "$PORT" -h /www &
pid=$!
trap 'kill $pid 2>/dev/null; exit 0' TERM INT
wait $pid
"""

KV_SERVER_SH = b"""#!/bin/sh
# shoal/kv: one /kv.sh per connection (busybox nc -ll -e), on port $KV_PORT, keys in $KV_DATA.
KV_PORT="${KV_PORT:-7000}"
mkdir -p "${KV_DATA:-/data}"
echo "shoal/kv: listening on port $KV_PORT"
busybox nc -ll -p "$KV_PORT" -e /kv.sh &
pid=$!
trap 'kill $pid 2>/dev/null; exit 0' TERM INT
wait $pid
"""

KV_SH = b"""#!/bin/sh
# One connection of shoal/kv: SET k v | GET k | DEL k | KEYS | PING | QUIT, one a line.
# Keys are files under $KV_DATA (/data; no '/', no leading '.'); a value is the rest of the line.
CR=$(printf '\\r')
cd "${KV_DATA:-/data}" || exit 1
while read -r cmd key value; do
  cmd="${cmd%"$CR"}"; key="${key%"$CR"}"; value="${value%"$CR"}"
  case "$cmd" in
    SET|GET|DEL|set|get|del)
      case "$key" in
        ""|*/*|.*) echo "ERR bad key"; continue ;;
      esac ;;
  esac
  case "$cmd" in
    SET|set) printf '%s' "$value" > "$key" && echo OK ;;
    GET|get) if [ -f "$key" ]; then cat "$key"; echo; else echo NIL; fi ;;
    DEL|del) rm -f "$key"; echo OK ;;
    KEYS|keys) ls ;;
    PING|ping) echo PONG ;;
    QUIT|quit) exit 0 ;;
    "") ;;
    *) echo "ERR unknown command" ;;
  esac
done
"""

FAIL_SH = b"""#!/bin/sh
# shoal/fail: a task that fails, for restart-policy tests.
echo failing
sleep "${FAIL_AFTER:-1}"
exit "${EXIT_CODE:-3}"
"""

UNHEALTHY_SH = b"""#!/bin/sh
# shoal/unhealthy: keeps running while its health check always fails.
echo "running, never healthy"
trap 'exit 0' TERM INT
while :; do sleep 1 & wait $!; done
"""


@dataclass(frozen=True)
class DemoImage:
    """One built image: its name and tag, config and layer blobs, and OCI manifest."""

    name: str  # "shoal/web"
    tag: str
    config: bytes
    layers: tuple[bytes, ...]  # gzip-compressed tars, base first
    manifest: bytes

    @property
    def manifest_digest(self) -> str:
        return _digest(self.manifest)

    @property
    def config_digest(self) -> str:
        return _digest(self.config)

    @property
    def blobs(self) -> dict[str, bytes]:
        """Config and layers by digest (what a registry or an archive stores besides the
        manifest)."""
        out = {self.config_digest: self.config}
        out.update((_digest(data), data) for data in self.layers)
        return out

    def reference(self, registry: str = "") -> str:
        """``[registry/]name:tag``."""
        return f"{registry}/{self.name}:{self.tag}" if registry else f"{self.name}:{self.tag}"

    def config_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.config)
        return doc


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class _Entry:
    name: str
    kind: bytes  # tarfile.DIRTYPE, REGTYPE or SYMTYPE
    mode: int
    data: bytes = b""
    target: str = ""


def _dir(name: str, mode: int = 0o755) -> _Entry:
    return _Entry(name, tarfile.DIRTYPE, mode)


def regular(name: str, data: bytes, mode: int = 0o644) -> _Entry:
    return _Entry(name, tarfile.REGTYPE, mode, data=data)


def _link(name: str, target: str) -> _Entry:
    return _Entry(name, tarfile.SYMTYPE, 0o777, target=target)


def layer(entries: Iterable[_Entry]) -> tuple[bytes, bytes]:
    """(gzip blob, uncompressed tar) of ``entries``: sorted by name, parents made first, root
    owned, fixed mtime, gzip header mtime 0."""
    by_name = {e.name.strip("/"): e for e in entries}
    for name in list(by_name):
        parent = name.rpartition("/")[0]
        while parent and parent not in by_name:
            by_name[parent] = _dir(parent)
            parent = parent.rpartition("/")[0]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(by_name):
            e = by_name[name]
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = e.kind, e.mode, MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if e.kind == tarfile.SYMTYPE:
                info.linkname = e.target
            info.size = len(e.data) if e.kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(e.data) if e.kind == tarfile.REGTYPE else None)
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, compresslevel=6, mtime=0), tar_bytes


def _applets(busybox: Path) -> list[str]:
    """Where ``busybox --install -s`` would put each applet (``bin/sh``, ``usr/bin/wget``...)."""
    out = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True, check=True,
                         timeout=10).stdout.split()
    return sorted(p for p in out if p.count("/") >= 1 and p != "bin/busybox")


@lru_cache(maxsize=2)
def build_base_layer(busybox: Path = BUSYBOX) -> tuple[bytes, bytes]:
    """(gzip blob, tar) of the shared base layer."""
    entries = [regular("bin/busybox", busybox.read_bytes(), 0o755),
               regular("etc/passwd", PASSWD), regular("etc/group", GROUP),
               regular("etc/hostname", b""), regular("etc/hosts", b""), regular("etc/resolv.conf", b""),
               _dir("tmp", 0o1777), _dir("root", 0o700), _dir("proc"), _dir("sys"), _dir("dev"),
               _dir("www", 0o1777), _dir("data", 0o1777)]  # any --user may write them
    entries += [_link(path, "/bin/busybox") for path in _applets(busybox)]
    return layer(entries)


def image(name: str, base: tuple[bytes, bytes], own: list[_Entry], config: dict[str, Any],
          comment: str, tag: str = "latest") -> DemoImage:
    """``name:tag``: ``base`` plus a layer of ``own`` files, with ``config`` (Env defaults to
    PATH, WorkingDir to /)."""
    top = layer(own)
    blobs = [base, top]
    cfg = {"Env": [PATH_ENV], "WorkingDir": "/", **config}
    doc = {"architecture": "amd64", "os": "linux", "created": CREATED, "config": cfg,
           "rootfs": {"type": "layers", "diff_ids": [_digest(raw) for _, raw in blobs]},
           "history": [{"created": CREATED, "created_by": "shoal dev: busybox base layer"},
                       {"created": CREATED, "created_by": comment}]}
    config_bytes = _canonical(doc)
    manifest = _canonical({
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": _digest(config_bytes),
                   "size": len(config_bytes)},
        "layers": [{"mediaType": LAYER_TYPE, "digest": _digest(gz), "size": len(gz)}
                   for gz, _ in blobs]})
    return DemoImage(name, tag, config_bytes, tuple(gz for gz, _ in blobs), manifest)


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def _health(test: str, interval: int, timeout: int, retries: int) -> dict[str, Any]:
    return {"Test": ["CMD-SHELL", test], "Interval": interval * SECOND,
            "Timeout": timeout * SECOND, "Retries": retries}


def build_all(busybox: Path = BUSYBOX) -> list[DemoImage]:
    """Every demo image, built from ``busybox`` (a static binary)."""
    base = build_base_layer(busybox)
    label = {"org.opencontainers.image.vendor": "shoal dev"}
    return [
        image("shoal/web", base, [regular("web.sh", WEB_SH, 0o755)], {
            "Env": [PATH_ENV, "PORT=80"], "Cmd": ["/web.sh"], "ExposedPorts": {"80/tcp": {}},
            "Healthcheck": _health(
                'timeout 3 busybox wget -q -O - "http://127.0.0.1:${PORT:-80}/" >/dev/null',
                interval=2, timeout=3, retries=3),
            "Labels": {**label, "org.opencontainers.image.title": "shoal/web"}},
            "web.sh: busybox httpd on $PORT with an index page naming the hostname"),
        image("shoal/kv", base, [regular("kv-server.sh", KV_SERVER_SH, 0o755),
                                  regular("kv.sh", KV_SH, 0o755)], {
            "Env": [PATH_ENV, "KV_PORT=7000"], "Cmd": ["/kv-server.sh"],
            "ExposedPorts": {"7000/tcp": {}},
            "Healthcheck": _health(
                "printf 'PING\\nQUIT\\n' | timeout 3 busybox nc 127.0.0.1 \"${KV_PORT:-7000}\""
                " | grep -q PONG", interval=2, timeout=3, retries=3),
            "Labels": {**label, "org.opencontainers.image.title": "shoal/kv"}},
            "kv-server.sh: a key-value toy on $KV_PORT (busybox nc -ll -e /kv.sh)"),
        image("shoal/fail", base, [regular("fail.sh", FAIL_SH, 0o755)], {
            "Cmd": ["/fail.sh"],
            "Labels": {**label, "org.opencontainers.image.title": "shoal/fail"}},
            "fail.sh: prints failing, exits 3 after a second"),
        image("shoal/unhealthy", base, [regular("unhealthy.sh", UNHEALTHY_SH, 0o755)], {
            "Cmd": ["/unhealthy.sh"],
            "Healthcheck": _health("exit 1", interval=1, timeout=1, retries=3),
            "Labels": {**label, "org.opencontainers.image.title": "shoal/unhealthy"}},
            "unhealthy.sh: runs forever, its health check always fails"),
    ]


def demo_images() -> dict[str, DemoImage]:
    """The demo images by name."""
    return {image.name: image for image in build_all()}


def docker_archive(images: Iterable[DemoImage], registry: str = "") -> bytes:
    """A tar that is both a ``docker save`` archive (``manifest.json``) and an OCI image layout
    (``oci-layout``, ``index.json``), blobs under ``blobs/sha256/``; tags are
    ``[registry/]name:tag``."""
    files: dict[str, bytes] = {}
    entries, index = [], []
    for image in images:
        for digest, data in {**image.blobs, image.manifest_digest: image.manifest}.items():
            files[f"blobs/sha256/{digest.removeprefix('sha256:')}"] = data
        ref = image.reference(registry)
        entries.append({"Config": f"blobs/sha256/{image.config_digest.removeprefix('sha256:')}",
                        "RepoTags": [ref],
                        "Layers": [f"blobs/sha256/{_digest(gz).removeprefix('sha256:')}"
                                   for gz in image.layers]})
        index.append({"mediaType": MANIFEST_TYPE, "digest": image.manifest_digest,
                      "size": len(image.manifest),
                      "annotations": {"org.opencontainers.image.ref.name": image.tag,
                                      "io.containerd.image.name": ref}})
    files["manifest.json"] = json.dumps(entries, separators=(",", ":")).encode()
    files["oci-layout"] = b'{"imageLayoutVersion":"1.0.0"}'
    files["index.json"] = _canonical({"schemaVersion": 2, "mediaType":
                                      "application/vnd.oci.image.index.v1+json",
                                      "manifests": index})
    _, tar_bytes = layer([regular(name, data) for name, data in files.items()])
    return tar_bytes
