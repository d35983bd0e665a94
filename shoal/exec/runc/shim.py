"""The per-container shim (like conmon): keeps a container's output and exit code.

Started by the controller as ``python -I -S shim.py key=value...`` in a new session, so it
outlives the daemon. It imports as little as it can (no ``json``, ``typing``, ``signal``'s enums):
Python's start-up is most of a container's start, once per container. It becomes a child subreaper, runs ``runc run --detach`` with the
container's stdout/stderr on pipes, and then:

* once running: writes ``shim.json`` {shim_pid, pid} atomically and closes the ready fd;
* if runc failed: writes ``exit.json`` {"error": runc's message} and exits;
* copies both pipes into the json-file log (logfile.py), rotating it; with ``tty=1`` (the
  spec's ``process.terminal``) runc sends the pty's master over ``--console-socket`` (an
  abstract socket: no path to clean up), read as the container's stdout; with ``stdin=1``
  (OpenStdin) the container's stdin is a pipe the shim keeps open, so a read waits instead of
  seeing EOF (nothing is written to it: Shoal attaches nobody);
* when the container's init exits: reads the cgroup's OOM count (before anything deletes the
  cgroup), drains the pipes, writes ``exit.json`` {code (128+signal for a signal), oom,
  finished_at}, and exits.

The daemon waits for this process with a pidfd, so a restarted daemon re-attaches to it.
Stdlib only (and this package's stdlib-only logfile.py and cgroups.py).
"""

from __future__ import annotations

import _signal as signal  # signal without its IntEnum wrappers (enum is costly to import)
import ctypes
import errno
import os
import select
import sys
import time
from _json import encode_basestring

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (mypy reads it by name)
if TYPE_CHECKING:
    from typing import Any

try:
    from shoal.exec.runc import cgroups, logfile
except ImportError:  # started by path with -I -S: import the sibling modules directly
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import cgroups  # type: ignore[no-redef]
    import logfile  # type: ignore[no-redef]

PR_SET_CHILD_SUBREAPER = 36
PR_SET_NAME = 15  # comm "shoal-shim": how tools tell shims apart (a forked one keeps the server's cmdline)


def start_time(pid: int | str = "self") -> int:
    """The process's start time (clock ticks after boot): with the pid, its identity."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        return int(f.read().rsplit(b")", 1)[1].split()[19])
DRAIN_SECONDS = 2.0  # after the exit: output still in the pipes (the kernel killed the rest)


def _json(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return encode_basestring(str(value))


def write_json(path: str, obj: dict[str, object]) -> None:
    """A flat JSON object of strings, ints and bools, written atomically. Its own copy of
    shoal.fsutil.write_atomic: the shim runs alone on the stdlib and imports nothing of shoal."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        # no fsync: the records matter across a daemon crash, not a reboot
        f.write("{" + ", ".join(f"{encode_basestring(k)}: {_json(v)}" for k, v in obj.items()) + "}")
    os.replace(tmp, path)


def parse_args(argv: list[str]) -> dict[str, Any]:
    """``key=value`` arguments; ``runc`` may repeat (the runtime's argv)."""
    args: dict[str, Any] = {"runc": []}
    for item in argv:
        key, _, value = item.partition("=")
        if key == "runc":
            args["runc"].append(value)
        else:
            args[key] = value
    return args


def shim_argv(args: dict[str, Any]) -> list[str]:
    """The inverse of ``parse_args``."""
    out = [f"runc={part}" for part in args["runc"]]
    return out + [f"{k}={v}" for k, v in args.items() if k != "runc"]


def runc_error(log_path: str, stderr: bytes) -> str:
    """runc's own error: the last error in its JSON log, else its stderr."""
    import json  # only when runc failed

    msg = ""
    try:
        with open(log_path, "rb") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("level") in ("error", "fatal") and entry.get("msg"):
                    msg = str(entry["msg"])
    except OSError:
        pass
    return msg or stderr.decode("utf-8", "replace").strip() or "runc failed"


class Shim:
    def __init__(self, args: dict[str, Any]) -> None:
        self.args = args
        self.dir: str = args["dir"]
        self.statuses: dict[int, int] = {}
        self.writer = logfile.LogWriter(args["log"], int(args["max_size"]), int(args["max_files"]))
        self.splitters = {"stdout": logfile.LineSplitter(), "stderr": logfile.LineSplitter(),
                          "tty": logfile.LineSplitter()}
        self.early_stderr = b""  # what runc wrote before the container ran (its errors)
        self.console: Any = None  # the socket runc sends the pty master on (tty=1)
        self.stdin_w = -1  # OpenStdin: the pipe's end kept open (written by attach)
        self.attach: Any = None  # attach.AttachServer: stdin and resizes from the daemon

    def spawn_runc(self) -> tuple[int, dict[int, str]]:
        a = self.args
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        extra = []
        if a.get("tty") == "1":
            import socket  # only for a terminal: the shim's start-up stays small

            name = f"shoal-console-{a['cid'][:32]}-{os.getpid()}"
            self.console = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.console.bind("\0" + name)  # abstract: runc dials "@name"
            self.console.listen(1)
            extra = ["--console-socket", "@" + name]
        stdin: tuple[object, ...] = (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0)
        stdin_r = -1
        if a.get("stdin") == "1" and a.get("tty") != "1":
            stdin_r, self.stdin_w = os.pipe()
            stdin = (os.POSIX_SPAWN_DUP2, stdin_r, 0)
        argv = [*a["runc"], "--log", os.path.join(self.dir, "runc.log"), "--log-format", "json",
                "run", "--detach", *extra, "--bundle", self.dir,
                "--pid-file", os.path.join(self.dir, "pid"), a["cid"]]
        pid = os.posix_spawn(argv[0], argv, dict(os.environ), file_actions=[
            stdin,
            (os.POSIX_SPAWN_DUP2, out_w, 1),
            (os.POSIX_SPAWN_DUP2, err_w, 2),
        ])
        os.close(out_w)
        os.close(err_w)
        if stdin_r >= 0:
            os.close(stdin_r)
        return pid, {out_r: "stdout", err_r: "stderr"}

    def receive_console(self, pipes: dict[int, str], poller: select.poll) -> None:
        """The pty master runc sent (it has exited: the message waits in the socket)."""
        import socket

        self.console.settimeout(5.0)
        fds: list[int] = []
        try:
            conn, _ = self.console.accept()
            with conn:
                _msg, fds, _flags, _addr = socket.recv_fds(conn, 1024, 1)
        except OSError as exc:  # the container runs: keep its exit code, if not its output
            sys.stderr.write(f"shim: no terminal from runc: {exc}\n")
        finally:
            self.console.close()
        if fds:
            os.set_blocking(fds[0], False)
            pipes[fds[0]] = "tty"
            poller.register(fds[0], select.POLLIN)

    def serve_attach(self, pipes: dict[int, str], poller: select.poll) -> None:
        """``attach=1``: stdin and terminal resizes from the daemon (attach.py)."""
        try:
            from shoal.exec.runc import attach
        except ImportError:
            import attach  # type: ignore[no-redef]

        tty_fd = next((fd for fd, name in pipes.items() if name == "tty"), -1)
        try:
            self.attach = attach.AttachServer(self.args["cid"], self.stdin_w, tty_fd)
        except OSError as exc:
            sys.stderr.write(f"shim: no attach socket: {exc}\n")
            return
        for fd in self.attach.fds():
            poller.register(fd, select.POLLIN)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.statuses[pid] = status

    def pump(self, fd: int, stream: str, pipes: dict[int, str], poller: select.poll) -> None:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError as exc:  # a pty master once every slave end is closed: EIO
            if exc.errno != errno.EIO:
                raise
            chunk = b""
        now = time.time_ns()
        if stream == "tty":  # a terminal's output as it comes: a prompt has no newline
            lines = [chunk[i:i + logfile.MAX_LINE] for i in range(0, len(chunk), logfile.MAX_LINE)]
        else:
            lines = self.splitters[stream].feed(chunk) if chunk else self.splitters[stream].flush()
        if stream == "stderr" and len(self.early_stderr) < 65536:
            self.early_stderr += chunk
        name = "stdout" if stream == "tty" else stream  # Docker logs a terminal as stdout
        for line in lines:
            self.writer.write(logfile.Entry(name, now, line))
        if not chunk:
            poller.unregister(fd)
            os.close(fd)
            del pipes[fd]

    def run(self) -> int:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        libc.prctl(PR_SET_NAME, b"shoal-shim", 0, 0, 0)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_IGN)
        try:
            runc_pid, pipes = self.spawn_runc()
        except OSError as exc:
            self.writer.close()
            write_json(os.path.join(self.dir, "exit.json"), {
                "error": f"{self.args['runc'][0]}: {exc.strerror}", "code": -1, "oom": False,
                "finished_at": time.time_ns()})
            return 1
        poller = select.poll()
        poller.register(wake_r, select.POLLIN)
        for fd in pipes:
            poller.register(fd, select.POLLIN)
        ready_fd: int | None = int(self.args["ready_fd"])
        container_pid = 0
        exited_at = 0.0
        status, oom = 0, False
        while True:
            timeout = None
            if exited_at:
                timeout = max(0, int((exited_at + DRAIN_SECONDS - time.monotonic()) * 1000))
                if not pipes or timeout == 0:
                    break
            for fd, _ev in poller.poll(timeout):
                if fd == wake_r:
                    os.read(wake_r, 4096)
                elif fd in pipes:
                    self.pump(fd, pipes[fd], pipes, poller)
                elif self.attach is not None and fd in self.attach.fds():
                    for n in self.attach.ready(fd):
                        if n > 0:
                            poller.register(n, select.POLLIN)
                        else:
                            poller.unregister(-n)
            self.reap()
            if not container_pid and runc_pid in self.statuses:
                code = os.waitstatus_to_exitcode(self.statuses.pop(runc_pid))
                if code != 0:
                    return self.failed(pipes, poller, ready_fd)
                if self.console is not None:
                    self.receive_console(pipes, poller)
                with open(os.path.join(self.dir, "pid"), encoding="ascii") as f:
                    container_pid = int(f.read().strip())
                if self.args.get("attach") == "1":
                    self.serve_attach(pipes, poller)
                write_json(os.path.join(self.dir, "shim.json"),
                           {"shim_pid": os.getpid(), "shim_start": start_time(),
                            "pid": container_pid})
                if ready_fd is not None:
                    os.close(ready_fd)
                    ready_fd = None
            if container_pid and container_pid in self.statuses and not exited_at:
                exited_at = time.monotonic()
                # read before the daemon's ``runc delete`` removes the cgroup
                oom = cgroups.oom_killed(self.args["cgroup"])
                status = self.statuses[container_pid]
        if self.attach is not None:
            self.attach.close()
        code = os.waitstatus_to_exitcode(status)
        for fd, stream in list(pipes.items()):  # output still pending after the drain time
            for line in self.splitters[stream].flush():
                name = "stdout" if stream == "tty" else stream
                self.writer.write(logfile.Entry(name, time.time_ns(), line))
            os.close(fd)
        self.writer.close()
        write_json(os.path.join(self.dir, "exit.json"), {
            "code": 128 - code if code < 0 else code, "oom": oom, "finished_at": time.time_ns()})
        return 0

    def failed(self, pipes: dict[int, str], poller: select.poll, ready_fd: int | None) -> int:
        deadline = time.monotonic() + DRAIN_SECONDS
        while pipes and time.monotonic() < deadline:
            for fd, _ev in poller.poll(100):
                if fd in pipes:
                    self.pump(fd, pipes[fd], pipes, poller)
        self.writer.close()
        msg = runc_error(os.path.join(self.dir, "runc.log"), self.early_stderr)
        write_json(os.path.join(self.dir, "exit.json"), {"error": msg, "code": -1, "oom": False,
                                                         "finished_at": time.time_ns()})
        if ready_fd is not None:
            os.close(ready_fd)
        return 1


def main() -> int:
    return Shim(parse_args(sys.argv[1:])).run()


if __name__ == "__main__":
    sys.exit(main())
