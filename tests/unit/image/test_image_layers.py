"""Layer extraction: files, modes and links as the image has them, OCI whiteouts converted for
overlayfs, and layers that try to escape their directory refused with nothing left behind."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from shoal.image.layers import LayerError, extract_layer


def _tar(*entries: tarfile.TarInfo | tuple[tarfile.TarInfo, bytes], gz: bool = False) -> io.BytesIO:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz" if gz else "w") as tar:
        for entry in entries:
            info, data = entry if isinstance(entry, tuple) else (entry, b"")
            tar.addfile(info, io.BytesIO(data) if data else None)
    out.seek(0)
    return out


def _file(name: str, data: bytes, mode: int = 0o644, uid: int = 0) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.uid, info.gid = len(data), mode, uid, uid
    return info, data


def _dir(name: str, mode: int = 0o755) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, mode
    return info


def _link(name: str, target: str, *, hard: bool = False, uid: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = (tarfile.LNKTYPE if hard else tarfile.SYMTYPE), target
    info.uid = info.gid = uid  # a hard link's entry carries its inode's owner, as docker writes it
    return info


def test_files_modes_links_and_owners_are_kept(tmp_path: Path) -> None:
    layer = _tar(_dir("bin"), _file("bin/busybox", b"\x7fELF", 0o4755), _link("bin/ls", "/bin/busybox"),
                 _dir("tmp", 0o1777), _file("etc/passwd", b"root:x:0:0\n", 0o644, uid=1000),
                 _link("etc/passwd.bak", "etc/passwd", hard=True, uid=1000), gz=True)
    dest = tmp_path / "layer"
    extract_layer(layer, dest)
    assert stat.S_IMODE((dest / "bin/busybox").stat().st_mode) == 0o4755  # setuid kept
    assert stat.S_IMODE((dest / "tmp").stat().st_mode) == 0o1777
    assert os.readlink(dest / "bin/ls") == "/bin/busybox"  # absolute: resolved in the container
    assert (dest / "etc/passwd").stat().st_uid == 1000
    assert (dest / "etc/passwd.bak").stat().st_ino == (dest / "etc/passwd").stat().st_ino
    assert not (tmp_path / "layer.partial").exists()


def test_whiteouts_become_overlayfs_ones(tmp_path: Path) -> None:
    layer = _tar(_dir("bin"), _file("bin/.wh.vi", b""), _dir("data"), _file("data/.wh..wh..opq", b""),
                 _file("data/new", b"x"))
    dest = tmp_path / "layer"
    extract_layer(layer, dest)
    vi = (dest / "bin/vi").lstat()
    assert stat.S_ISCHR(vi.st_mode) and vi.st_rdev == os.makedev(0, 0)
    assert not (dest / "bin/.wh.vi").exists()
    assert os.getxattr(dest / "data", "trusted.overlay.opaque") == b"y"
    assert (dest / "data/new").read_bytes() == b"x"


@pytest.mark.parametrize("entries", [
    pytest.param([_file("../escape", b"x")], id="dot-dot"),
    pytest.param([_link("evil", "/etc"), _file("evil/passwd", b"x")], id="write-through-absolute-symlink"),
    pytest.param([_link("evil", "../../.."), _file("evil/x", b"x")], id="write-through-relative-symlink"),
    pytest.param([_link("shadow", "../../../../etc/shadow", hard=True)], id="hard-link-outside"),
    pytest.param([_link("evil", "/"), _file("evil/.wh.x", b"")], id="whiteout-through-symlink"),
])
def test_escaping_layers_are_refused_and_leave_nothing(tmp_path: Path,
                                                      entries: list[tarfile.TarInfo]) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "a" / "b" / "layer"
    with pytest.raises(LayerError, match="refused"):
        extract_layer(_tar(_file("ok", b"fine"), *entries), dest)
    assert not dest.exists() and not (dest.parent / "layer.partial").exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b", "outside"]


def test_a_broken_tar_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="not a valid tar"):
        extract_layer(io.BytesIO(b"\x1f\x8b garbage, not gzip at all" * 40), tmp_path / "layer")
    assert not (tmp_path / "layer").exists() and not (tmp_path / "layer.partial").exists()


def test_an_existing_layer_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "layer").mkdir()
    with pytest.raises(LayerError, match="exists already"):
        extract_layer(_tar(_file("a", b"1")), tmp_path / "layer")


def test_an_absolute_hard_link_is_taken_inside_the_layer(tmp_path: Path) -> None:
    """tarfile joins a hard link's target to the destination, so ``/abs/path`` would link a host
    file into the layer: the leading slash is stripped, as for names."""
    secret = tmp_path / "secret"
    secret.write_bytes(b"host only")
    dest = tmp_path / "layer"
    extract_layer(_tar(_dir(str(tmp_path).lstrip("/")), _file(str(secret).lstrip("/"), b"layer's"),
                       _link("copy", str(secret), hard=True)), dest)
    assert (dest / "copy").read_bytes() == b"layer's"
    assert secret.stat().st_nlink == 1
