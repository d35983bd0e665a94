"""The shim server: forks container shims from a process that has already imported them.

A shim started as its own ``python -I -S shim.py`` spends most of its CPU starting Python
(about 28 ms a container, twice runc's own share of a start on a busy node). This server is
started once per executor (``python -I -S shimserver.py <fd> <exec root>``), imports shim.py, and for
each request on its socket (a SOCK_SEQPACKET socketpair with the daemon: one message of
NUL-separated ``key=value`` arguments, and the ready pipe's write end as SCM_RIGHTS) forks a
child that becomes the shim: a new session, stdio on ``<dir>/shim.log``, then ``Shim.run``.

The server holds no state: its children are reaped by the kernel (SIGCHLD ignored), and it
exits when the daemon's end of the socket closes, leaving the shims running (they are in their
own sessions, and each is the subreaper of its container). Stdlib only; single-threaded, so
forking is safe.
"""

from __future__ import annotations

import os
import socket
import sys

try:
    from shoal.exec.runc import shim
except ImportError:  # started by path with -I -S: import the sibling module directly
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import shim  # type: ignore[no-redef]

import _signal as signal  # without the enum wrappers, as in shim.py


def _child(args: dict[str, str], ready_fd: int, server: socket.socket) -> int:
    server.close()
    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    devnull = os.open("/dev/null", os.O_RDONLY)
    os.dup2(devnull, 0)
    log = os.open(os.path.join(args["dir"], "shim.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    args["ready_fd"] = str(ready_fd)
    return int(shim.Shim(args).run())


def serve(sock: socket.socket) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the shims that end
    while True:
        try:
            data, fds, _flags, _addr = socket.recv_fds(sock, 1 << 16, 1)
        except InterruptedError:
            continue
        if not data:
            return  # the daemon is gone; the shims live on
        args = shim.parse_args(data.decode().split("\0"))
        if not fds:
            continue
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _child(args, fds[0], sock)
            except BaseException:  # noqa: BLE001 - into shim.log; the daemon sees no shim.json
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        os.close(fds[0])


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])))
