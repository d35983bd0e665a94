"""Container logs in Docker's json-file format, written by the shim and read by ``logs()``.

One JSON object a line: ``{"log":"hello\\n","stream":"stdout","time":"2026-11-26T01:02:03.123456789Z"}``.
The file ``<cid>-json.log`` rotates at ``max_size`` bytes into ``.1`` (newest) ... ``.N-1``, so
``max_files`` counts the current file too, as Docker's ``max-file``. A line longer than 16 KiB
is cut into pieces without a newline, like Docker's. Stdlib only: the shim imports it by path,
and the writer's side imports as little as it can (the shim starts once per container): no
``typing``, ``json`` or ``calendar`` until a reader needs them.
"""

from __future__ import annotations

import os
import time
from _json import encode_basestring  # json.dumps(ensure_ascii=False)'s own, without json's re
from collections import deque, namedtuple

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (mypy reads it by name)
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import IO, NamedTuple

    class Entry(NamedTuple):
        stream: str
        time: int  # unix nanoseconds
        data: bytes
else:
    Entry = namedtuple("Entry", "stream time data")

__all__ = [
    "MAX_LINE",
    "Entry",
    "Follower",
    "LineSplitter",
    "LogWriter",
    "format_time",
    "history",
    "parse_line",
    "parse_time",
    "paths",
    "read_entries",
    "select",
    "wanted",
]

MAX_LINE = 16 * 1024


def format_time(ns: int) -> str:
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


def parse_time(text: str) -> int:
    """RFC 3339 in UTC with up to 9 fraction digits, as this module and Docker write it."""
    import calendar  # the reader's side only

    main, _, frac = text.rstrip("Z").partition(".")
    seconds = calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S"))
    return seconds * 1_000_000_000 + int((frac + "000000000")[:9] or 0)


def encode(entry: Entry) -> bytes:
    """As ``json.dumps({"log", "stream", "time"}, ensure_ascii=False, separators=(",", ":"))``."""
    text = entry.data.decode("utf-8", "replace")
    return (f'{{"log":{encode_basestring(text)},"stream":{encode_basestring(entry.stream)},'
            f'"time":"{format_time(entry.time)}"}}\n').encode()


def parse_line(line: bytes) -> Entry | None:
    import json  # the reader's side only

    try:
        obj = json.loads(line)
        return Entry(str(obj["stream"]), parse_time(str(obj["time"])), str(obj["log"]).encode())
    except (ValueError, KeyError, TypeError):
        return None  # a torn or foreign line


class LineSplitter:
    """Cuts a stream's chunks into lines (and pieces of at most MAX_LINE bytes)."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buf += chunk
        out = []
        while True:
            nl = self._buf.find(b"\n", 0, MAX_LINE)
            if nl >= 0:
                out.append(self._buf[:nl + 1])
                self._buf = self._buf[nl + 1:]
            elif len(self._buf) >= MAX_LINE:
                out.append(self._buf[:MAX_LINE])
                self._buf = self._buf[MAX_LINE:]
            else:
                return out

    def flush(self) -> list[bytes]:
        rest, self._buf = self._buf, b""
        return [rest] if rest else []


class LogWriter:
    """Appends entries to ``path``, rotating it at ``max_size`` bytes (0 = never)."""

    def __init__(self, path: str, max_size: int, max_files: int) -> None:
        self.path = path
        self.max_size = max_size
        self.max_files = max(1, max_files)
        self._f: IO[bytes] = open(path, "ab")  # noqa: SIM115 - kept open for the shim's life
        self._size = self._f.tell()

    def write(self, entry: Entry) -> None:
        line = encode(entry)
        if self.max_size and self._size and self._size + len(line) > self.max_size:
            self._rotate()
        self._f.write(line)
        self._f.flush()
        self._size += len(line)

    def _rotate(self) -> None:
        self._f.close()
        if self.max_files <= 1:
            os.truncate(self.path, 0)
        else:
            for n in range(self.max_files - 1, 1, -1):
                older = f"{self.path}.{n - 1}"
                if os.path.exists(older):
                    os.replace(older, f"{self.path}.{n}")
            os.replace(self.path, f"{self.path}.1")
        self._f = open(self.path, "ab")  # noqa: SIM115
        self._size = 0

    def close(self) -> None:
        self._f.close()


def paths(path: str) -> list[str]:
    """The log files that exist, oldest first (``.N`` ... ``.1``, then the current one)."""
    rotated = []
    n = 1
    while os.path.exists(f"{path}.{n}"):
        rotated.append(f"{path}.{n}")
        n += 1
    return [*reversed(rotated), *([path] if os.path.exists(path) else [])]


def read_entries(path: str, *, rotated_only: bool = False) -> Iterator[Entry]:
    """Every complete entry of the rotated files and the current one, oldest first."""
    for p in paths(path)[:-1] if rotated_only and os.path.exists(path) else paths(path):
        try:
            with open(p, "rb") as f:
                for line in f:
                    if line.endswith(b"\n") and (entry := parse_line(line)) is not None:
                        yield entry
        except FileNotFoundError:
            continue  # rotated away while we read


class Follower:
    """Reads the current file from its start, then what is appended to it, across rotations
    (after a rotation: the rest of the old file, then the new one)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._f: IO[bytes] | None = None
        self._rest = b""

    def _open(self) -> None:
        try:
            self._f = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        except FileNotFoundError:
            self._f = None
        self._rest = b""

    def read_new(self) -> list[Entry]:
        if self._f is None:
            self._open()
            if self._f is None:
                return []
        out = self._drain()
        try:
            rotated = os.stat(self.path).st_ino != os.fstat(self._f.fileno()).st_ino
        except FileNotFoundError:
            rotated = False
        if rotated:
            out += self._drain()  # lines written just before the rename
            self._f.close()
            self._open()
            out += self._drain()
        return out

    def _drain(self) -> list[Entry]:
        if self._f is None:
            return []
        data = self._rest + self._f.read()
        complete, _, self._rest = data.rpartition(b"\n")
        if not complete and not _:
            return []
        return [e for line in complete.split(b"\n") if (e := parse_line(line)) is not None]

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def history(path: str, follower: Follower, *, since: int = 0, until: int = 0,
            stdout: bool = True, stderr: bool = True, tail: int | None = None,
            chunk: int = 1000) -> Iterator[list[Entry]]:
    """The entries written so far that pass the filters, oldest first: the rotated files, then
    the current one through ``follower`` (which goes on from there), in lists of at most
    ``chunk``; with ``tail``, one list of the last ``tail``. Slow (up to max-file files of
    max-size): ``logs()`` takes each list in a worker thread, off the daemon's event loop."""

    def every() -> Iterator[Entry]:
        yield from read_entries(path, rotated_only=True)
        yield from follower.read_new()

    if tail is not None and tail >= 0:
        yield select(every(), since=since, until=until, stdout=stdout, stderr=stderr, tail=tail)
        return
    batch: list[Entry] = []
    for e in every():
        if wanted(e, since=since, until=until, stdout=stdout, stderr=stderr):
            batch.append(e)
            if len(batch) >= chunk:
                yield batch
                batch = []
    if batch:
        yield batch


def wanted(entry: Entry, *, since: int = 0, until: int = 0, stdout: bool = True,
           stderr: bool = True) -> bool:
    if entry.stream == "stdout" and not stdout or entry.stream == "stderr" and not stderr:
        return False
    return entry.time >= since and (not until or entry.time <= until)


def select(entries: Iterable[Entry], *, since: int = 0, until: int = 0, stdout: bool = True,
           stderr: bool = True, tail: int | None = None) -> list[Entry]:
    """The entries that pass the filters; the last ``tail`` of them when given."""
    keep: deque[Entry] = deque(maxlen=tail if tail is not None and tail >= 0 else None)
    for e in entries:
        if wanted(e, since=since, until=until, stdout=stdout, stderr=stderr):
            keep.append(e)
    return list(keep)
