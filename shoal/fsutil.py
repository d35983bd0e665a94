"""Files replaced in one step: written to a temporary file beside the target, then renamed over
it, so a crash leaves the old content or the new, never a torn file. Every layer may use it
(below the model in the import order, like ``aio``); stdlib only."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["fsync_dir", "temp_path", "write_atomic", "write_temp", "write_together"]


def temp_path(path: Path) -> Path:
    """Where ``write_temp`` puts ``path``'s new content before the rename."""
    return path.with_name(f".{path.name}.tmp")


def write_temp(path: Path, data: bytes | str, *, mode: int | None = None,
               durable: bool = False) -> Path:
    """Write ``data`` to ``.<name>.tmp`` beside ``path`` (the same filesystem, so the rename is
    atomic) and return it. ``mode`` is set before any byte is written (a key is never readable
    by others); ``durable`` fsyncs the data, to survive a power cut, not only a crash."""
    tmp = temp_path(path)
    raw = data.encode() if isinstance(data, str) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666 if mode is None else mode)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)  # the umask, or a file left by a crash, could differ
            f.write(raw)
            if durable:
                f.flush()
                os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def write_atomic(path: Path, data: bytes | str, *, mode: int | None = None,
                 durable: bool = False) -> None:
    """Replace ``path`` with ``data`` in one step (``mode``, ``durable``: see ``write_temp``)."""
    os.replace(write_temp(path, data, mode=mode, durable=durable), path)


def write_together(directory: Path, files: Sequence[tuple[str, bytes | str, int | None]], *,
                   durable: bool = False) -> None:
    """Replace several files of ``directory`` (name, data, mode): every one is written before
    any is renamed, then they are renamed in the order given. A crash between two renames leaves
    the later files' new content in their ``temp_path``, for the reader to finish the job
    (``shoal.pki.keypair``); any other failure removes the temporary files."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    temps: list[tuple[Path, Path]] = []
    try:
        for name, data, mode in files:
            temps.append((write_temp(directory / name, data, mode=mode, durable=durable),
                          directory / name))
        for tmp, final in temps:
            os.replace(tmp, final)
    finally:
        for tmp, _ in temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    if durable:
        fsync_dir(directory)


def fsync_dir(directory: Path) -> None:
    """Make the renames in ``directory`` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
