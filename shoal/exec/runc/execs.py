"""``docker exec``: processes started in a running container with ``runc exec``, kept in memory
by ID (dockerd forgets them at restart too). Called by shoal.api.routes_exec.

Without a terminal, ``runc exec`` hands its own stdio to the process (pipes to the daemon), and
exits with the process's code. With one (``-t``), the daemon opens a pty pair and gives runc its
slave as stdio: runc makes the container's own pty, puts the slave in raw mode and copies between
them; a resize sets the outer pty's size and sends runc SIGWINCH, which it passes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import secrets
import signal
import struct
import termios
from dataclasses import dataclass, field
from typing import Any

from shoal.errors import Conflict, InvalidArgument, NotFound
from shoal.exec.runc.containers import Containers
from shoal.exec.runc.spec import resolve_user

__all__ = ["ExecConfig", "ExecInstance", "Execs"]


@dataclass(slots=True)
class ExecConfig:
    cmd: list[str]
    tty: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = True
    attach_stderr: bool = True
    env: list[str] = field(default_factory=list)
    user: str = ""
    working_dir: str = ""
    privileged: bool = False
    console_size: tuple[int, int] | None = None  # (height, width)


@dataclass(slots=True)
class ExecInstance:
    id: str
    cid: str
    config: ExecConfig
    running: bool = False
    started: bool = False
    exit_code: int | None = None
    pid: int = 0
    proc: asyncio.subprocess.Process | None = None
    master: int = -1  # the outer pty's master (tty)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def inspect(self) -> dict[str, Any]:
        c = self.config
        return {
            "ID": self.id, "Running": self.running, "ExitCode": self.exit_code,
            "ProcessConfig": {"tty": c.tty, "entrypoint": c.cmd[0] if c.cmd else "",
                              "arguments": c.cmd[1:], "privileged": c.privileged,
                              "user": c.user},
            "OpenStdin": c.attach_stdin, "OpenStderr": c.attach_stderr,
            "OpenStdout": c.attach_stdout, "CanRemove": False, "ContainerID": self.cid,
            "DetachKeys": "", "Pid": self.pid}


def _set_size(fd: int, height: int, width: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


class Execs:
    def __init__(self, containers: Containers) -> None:
        self._containers = containers
        self._execs: dict[str, ExecInstance] = {}

    def create(self, cid: str, config: ExecConfig) -> ExecInstance:
        if not config.cmd:
            raise InvalidArgument("No exec command specified")
        if config.privileged:
            raise InvalidArgument("exec: Privileged is not supported by this node")
        if not self._containers.state(cid).running:
            raise Conflict(f"container {cid} is not running")
        inst = ExecInstance(secrets.token_hex(32), cid, config)
        self._execs[inst.id] = inst
        self._containers.publish(cid, "exec_create: " + " ".join(config.cmd),
                                 {"execID": inst.id})
        return inst

    def get(self, exec_id: str) -> ExecInstance:
        inst = self._execs.get(exec_id)
        if inst is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return inst

    def _argv(self, inst: ExecInstance) -> list[str]:
        c = inst.config
        argv = [*self._containers.cfg.runc, "exec"]
        if c.tty:
            argv.append("--tty")
        for e in c.env:
            argv += ["--env", e]
        if c.working_dir:
            argv += ["--cwd", c.working_dir]
        if c.user:
            rootfs = self._containers.cfg.containers / inst.cid / "rootfs"
            try:
                user = resolve_user(rootfs, c.user)
            except Exception as exc:  # TaskRejected: the words are dockerd's
                raise InvalidArgument(str(exc)) from exc
            argv += ["--user", f"{user.uid}:{user.gid}"]
            for gid in user.additional_gids:
                argv += ["--additional-gids", str(gid)]
        if c.tty and not any(e.startswith("TERM=") for e in c.env):
            argv += ["--env", "TERM=xterm"]  # Docker's, for a terminal
        return [*argv, inst.cid, *c.cmd]

    async def start(self, inst: ExecInstance) -> None:
        """Start the process; its streams are ``inst.proc``'s pipes, or ``inst.master``."""
        if inst.started:
            raise Conflict(f"Error: Exec command {inst.id} has already run")
        if not self._containers.state(inst.cid).running:
            raise Conflict(f"container {inst.cid} is not running")
        inst.started = True
        c = inst.config
        argv = self._argv(inst)
        if c.tty:
            master, slave = pty.openpty()
            if c.console_size:
                _set_size(master, *c.console_size)
            try:
                inst.proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
            except BaseException:
                os.close(master)
                raise
            finally:
                os.close(slave)
            os.set_blocking(master, False)
            inst.master = master
        else:
            inst.proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE if c.attach_stdin else
                asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if c.attach_stdout else asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE if c.attach_stderr else asyncio.subprocess.DEVNULL)
        inst.running = True
        inst.pid = inst.proc.pid
        self._containers.publish(inst.cid, "exec_start: " + " ".join(c.cmd), {"execID": inst.id})

    async def finish(self, inst: ExecInstance) -> int:
        """Wait for the process and record its exit code."""
        assert inst.proc is not None
        code = await inst.proc.wait()
        inst.exit_code = code if code >= 0 else 128 - code
        inst.running = False
        if inst.master >= 0:
            with contextlib.suppress(OSError):
                os.close(inst.master)
            inst.master = -1
        inst.done.set()
        self._containers.publish(inst.cid, "exec_die", {"execID": inst.id,
                                                        "exitCode": str(inst.exit_code)})
        return inst.exit_code

    def resize(self, inst: ExecInstance, height: int, width: int) -> None:
        if not inst.config.tty:
            return
        if inst.master < 0 or inst.proc is None:
            if not inst.started:
                inst.config.console_size = (height, width)
                return
            raise Conflict(f"Exec {inst.id} is not running")
        _set_size(inst.master, height, width)
        with contextlib.suppress(ProcessLookupError):
            os.kill(inst.proc.pid, signal.SIGWINCH)

    def forget(self, cid: str) -> None:
        for exec_id in [k for k, v in self._execs.items() if v.cid == cid and not v.running]:
            del self._execs[exec_id]
