"""A standalone container's stdin and terminal size, from the daemon to its shim (``docker run
-i``/``-it``, ``docker attach``): the shim listens on an abstract unix socket named after the
container (``@shoal-attach-<cid>``, in the daemon's network namespace; nothing to clean up) and
reads frames ``[kind, len BE32] payload``: DATA for the container's stdin (the pipe it keeps
open, or the terminal's master), EOF to close that pipe, RESIZE ("rows cols"). Output needs no
channel: it is read from the log file. Stdlib only: the shim imports it by path.
"""

from __future__ import annotations

import os
import socket
import struct

__all__ = ["DATA", "EOF", "RESIZE", "AttachServer", "address", "send_frame", "send_frame_quiet",
           "send_stdin"]

DATA, EOF, RESIZE = 0, 1, 2
_HEADER = struct.Struct(">BL")


def address(cid: str) -> str:
    return "\0shoal-attach-" + cid[:48]


def send_frame(cid: str, kind: int, payload: bytes = b"") -> None:
    """One frame on a connection of its own (OSError: the shim is not there)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5.0)
        s.connect(address(cid))
        s.sendall(_HEADER.pack(kind, len(payload)) + payload)


def send_frame_quiet(cid: str, kind: int, payload: bytes = b"") -> None:
    try:
        send_frame(cid, kind, payload)
    except OSError:
        pass


def send_stdin(cid: str, data: bytes) -> None:
    """The client's bytes to the container's stdin; b"" closes it. Lost if it is not running."""
    try:
        send_frame(cid, DATA if data else EOF, data)
    except OSError:
        pass


class AttachServer:
    """The shim's end: ``fds()`` to poll, ``ready(fd)`` when one is readable."""

    def __init__(self, cid: str, stdin_fd: int, tty_fd: int) -> None:
        self.stdin_fd = stdin_fd  # the pipe's write end (-1: none)
        self.tty_fd = tty_fd  # the terminal's master (-1: none)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(address(cid))
        self.sock.listen(8)
        self.sock.setblocking(False)
        self.conns: dict[int, tuple[socket.socket, bytearray]] = {}

    def fds(self) -> list[int]:
        return [self.sock.fileno(), *self.conns]

    def ready(self, fd: int) -> list[int]:
        """Handles a readable fd; returns fds that are new (to poll) as positive, gone as
        negative numbers."""
        if fd == self.sock.fileno():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return []
            conn.setblocking(False)
            self.conns[conn.fileno()] = (conn, bytearray())
            return [conn.fileno()]
        conn, buf = self.conns[fd]
        try:
            chunk = conn.recv(65536)
        except BlockingIOError:
            return []
        except OSError:
            chunk = b""
        buf += chunk
        while len(buf) >= _HEADER.size:
            kind, size = _HEADER.unpack_from(buf)
            if len(buf) < _HEADER.size + size:
                break
            payload = bytes(buf[_HEADER.size:_HEADER.size + size])
            del buf[:_HEADER.size + size]
            self._apply(kind, payload)
        if not chunk:
            del self.conns[fd]
            conn.close()
            return [-fd]
        return []

    def _apply(self, kind: int, payload: bytes) -> None:
        if kind == DATA:
            target = self.tty_fd if self.tty_fd >= 0 else self.stdin_fd
            if target >= 0:
                try:
                    os.write(target, payload)
                except OSError:
                    pass
        elif kind == EOF and self.stdin_fd >= 0 and self.tty_fd < 0:
            os.close(self.stdin_fd)
            self.stdin_fd = -1
        elif kind == RESIZE and self.tty_fd >= 0:
            import fcntl
            import termios

            try:
                rows, cols = (int(x) for x in payload.split())
                fcntl.ioctl(self.tty_fd, termios.TIOCSWINSZ,
                            struct.pack("HHHH", rows, cols, 0, 0))
            except (ValueError, OSError):
                pass

    def close(self) -> None:
        for conn, _ in self.conns.values():
            conn.close()
        self.conns.clear()
        self.sock.close()
