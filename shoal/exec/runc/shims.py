"""The daemon's end of the shim server (shimserver.py): started on first use, one per executor.

``spawn(args, ready_w)`` asks the server to fork a shim. If the server cannot be reached (it
died, or never started) the caller starts the shim as its own process instead, as before, so a
container start never depends on the server being there.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading

from shoal.exec.runc import shimserver

__all__ = ["ShimServer"]

log = logging.getLogger(__name__)


class ShimServer:
    def __init__(self, exec_root: str = "") -> None:
        # in the server's argv, so its forked shims carry it too: cleanup finds them by path
        self._exec_root = exec_root
        self._sock: socket.socket | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def _start(self) -> socket.socket:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        theirs.set_inheritable(True)
        argv = [sys.executable, "-I", "-S", shimserver.__file__, str(theirs.fileno()),
                self._exec_root]
        try:
            # posix_spawn: no Python runs between fork and exec (the daemon has gRPC threads)
            self._pid = os.posix_spawn(sys.executable, argv, dict(os.environ), file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0)])
        finally:
            theirs.close()
        self._sock = ours
        return ours

    def spawn(self, args: list[str], ready_w: int) -> bool:
        """Fork a shim with these ``key=value`` arguments; False if the server is not there."""
        message = "\0".join(args).encode()
        with self._lock:
            for _attempt in range(2):  # a server that died is started again, once
                sock = self._sock or self._start()
                try:
                    socket.send_fds(sock, [message], [ready_w])
                    return True
                except OSError as exc:
                    log.warning("shim server (pid %d) unreachable: %s; starting another",
                                self._pid, exc)
                    self.close()
        return False

    def __del__(self) -> None:
        # an executor dropped without close() (tests): its server exits with the socket
        self.close()

    def close(self) -> None:
        """Close our end: the server exits; the shims it started keep running."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._pid:
            try:
                os.waitpid(self._pid, os.WNOHANG)
            except ChildProcessError:
                pass
            self._pid = 0
