"""Standalone containers (``docker run``, not a swarm's task): created, started, stopped,
restarted by their restart policy (also after a daemon restart) and removed. Each is built and
run by a RuncController on a task made from its request (runspec.py), so the shim, the overlay
root, the OCI spec, seccomp, cgroups and log files are the tasks' own.

On disk, besides the controller's files: ``<cid>/container.json`` (record.py; Name, Config,
HostConfig as the client sent them) and ``<cid>/run.json`` (the task, the networks asked for,
the restart policy, RestartCount, whether it was stopped by hand). Networks come from the node's
LocalNetworks (shoal/exec/localnet.py): attached at start (the namespace's path written into
config.json), released when the container stops; ``none`` is runc's own namespace with loopback
only; ``host`` the daemon's. Called by shoal.api.routes_run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import secrets
from pathlib import Path
from typing import Any

from shoal import metrics
from shoal.errors import Conflict, InvalidArgument, NotFound, ShoalError
from shoal.exec.errors import ExitError, Unhealthy
from shoal.exec.localnet import LocalNetworks
from shoal.exec.runc import record
from shoal.exec.runc.containers import Containers
from shoal.exec.runc.controller import RuncController
from shoal.exec.runc.names import random_name, valid_name
from shoal.exec.runc.runspec import parse_run
from shoal.exec.runc.sandbox import attach_networks, check_networks, release
from shoal.exec.runc.state import read_json, write_json
from shoal.model.codec import decode, encode
from shoal.model.objects import Task

__all__ = ["RUN_FILE", "Standalone"]

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
RESTART_DELAY = 0.1  # dockerd's first restart delay, doubled each time up to a minute
RESTART_MAX_DELAY = 60.0


class Standalone:
    def __init__(self, containers: Containers, networks: LocalNetworks | None = None) -> None:
        self._c = containers
        # its events are this module's (the controller would publish a task's)
        self._cfg = dataclasses.replace(containers.cfg, network=None, events=None)
        self._networks = networks
        self._supervisors: dict[str, asyncio.Task[None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._last_code: dict[str, int] = {}

    # --- records ----------------------------------------------------------------------------

    def _dir(self, cid: str) -> Path:
        return self._cfg.containers / cid

    def run_info(self, cid: str) -> dict[str, Any] | None:
        return read_json(self._dir(cid) / RUN_FILE)

    def is_standalone(self, cid: str) -> bool:
        return (self._dir(cid) / RUN_FILE).is_file()

    def _task(self, info: dict[str, Any]) -> Task:
        return decode(json.dumps(info["task"]).encode(), Task)

    def _controller(self, info: dict[str, Any]) -> RuncController:
        return RuncController(self._task(info), self._cfg, standalone=True)

    def _lock(self, cid: str) -> asyncio.Lock:
        return self._locks.setdefault(cid, asyncio.Lock())

    # --- create -----------------------------------------------------------------------------

    @metrics.timed_async(metrics.CONTAINER_ACTIONS.labels("create"))
    async def create(self, body: dict[str, Any], name: str,
                     networking: dict[str, Any] | None = None) -> str:
        spec = parse_run(body, networking)
        check_networks(spec, self._networks)
        if name:
            if not valid_name(name):
                raise InvalidArgument(f"Invalid container name ({name}), only [a-zA-Z0-9]"
                                      "[a-zA-Z0-9_.-] are allowed")
        else:
            name = random_name()
        name = name.lstrip("/")
        for cid in self._c.ids():
            rec = record.read_record(self._dir(cid)) or {}
            if rec.get("Name") == "/" + name:
                raise Conflict(f'Conflict. The container name "/{name}" is already in use by '
                               f'container "{cid}". You have to remove (or rename) that '
                               "container to be able to reuse that name.")
        cs = spec.task_spec.container_spec or {}
        if spec.network_mode == "host" and not cs.get("Hostname") and self._cfg.hostname:
            cs["Hostname"] = self._cfg.hostname  # dockerd: the node's name in its namespace
        task = Task(id=secrets.token_hex(13)[:25], spec=spec.task_spec, service_name=name)
        ctrl = RuncController(task, self._cfg, standalone=True)
        try:
            await ctrl.prepare()
        except ShoalError as exc:
            await ctrl.remove()
            raise InvalidArgument(str(exc)) from exc
        made = ctrl.container_id
        assert made is not None
        cid = made
        d = self._dir(cid)
        task_record = record.read_record(d) or {}
        config = dict(task_record.get("Config") or {})
        config["Labels"] = dict(spec.config.get("Labels") or {})
        config["AttachStdin"] = bool(spec.config.get("AttachStdin"))
        config["AttachStdout"] = bool(spec.config.get("AttachStdout"))
        config["AttachStderr"] = bool(spec.config.get("AttachStderr"))
        config["StdinOnce"] = bool(spec.config.get("StdinOnce"))
        config["Image"] = spec.image
        if spec.config.get("ExposedPorts"):
            config["ExposedPorts"] = spec.config["ExposedPorts"]
        host = {**spec.host_config, "NetworkMode": spec.network_mode,
                "RestartPolicy": {"Name": spec.restart, "MaximumRetryCount": spec.max_retries},
                "AutoRemove": spec.auto_remove,
                "LogConfig": task_record.get("HostConfig", {}).get("LogConfig")}
        rec = {**task_record, "Name": "/" + name, "Config": config, "HostConfig": host,
               "Managed": False, "Networks": {}}
        write_json(d / RUN_FILE, {
            "task": json.loads(encode(task)), "network_mode": spec.network_mode,
            "endpoints": [dataclasses.asdict(e) for e in spec.endpoints],
            "ports": [dataclasses.asdict(p) for p in spec.ports], "restart": spec.restart,
            "max_retries": spec.max_retries, "auto_remove": spec.auto_remove,
            "restart_count": 0, "stopped_by_hand": False})
        record.write_record(d, rec)
        self._c.publish(cid, "create")
        return cid

    # --- start, and what happens when it stops ----------------------------------------------

    def _reset(self, cid: str) -> None:
        d = self._dir(cid)
        for name in ("shim.json", "exit.json", "health.json", "pid"):
            with contextlib.suppress(FileNotFoundError):
                (d / name).unlink()

    @metrics.timed_async(metrics.CONTAINER_ACTIONS.labels("start"))
    async def start(self, cid: str, *, by_hand: bool = True, supervise: bool = True) -> bool:
        """False when it runs already (the API's 304). A container with AutoRemove that fails
        to start is removed (dockerd's; docker run --rm waits for its removal)."""
        try:
            return await self._start(cid, by_hand=by_hand, supervise=supervise)
        except ShoalError:
            info = self.run_info(cid)
            if info is not None and info.get("auto_remove") and not self._c.state(cid).running:
                await self.remove(cid, force=True)
            raise

    async def _start(self, cid: str, *, by_hand: bool, supervise: bool) -> bool:
        async with self._lock(cid):
            info = self.run_info(cid)
            if info is None:
                raise InvalidArgument(f"container {cid} is a swarm task's: the swarm starts it")
            st = self._c.state(cid)
            if st.running:
                return False
            if by_hand and info.get("stopped_by_hand"):
                info["stopped_by_hand"] = False
                write_json(self._dir(cid) / RUN_FILE, info)
            if st.shim is not None or st.exit is not None:
                proc = await asyncio.create_subprocess_exec(
                    *self._cfg.runc, "delete", "--force", cid,
                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL)
                await proc.wait()
                self._reset(cid)
            ctrl = self._controller(info)
            await ctrl.prepare()  # after a reboot: the mounts again
            try:
                await attach_networks(self._dir(cid), info, self._networks)
                await ctrl.start()
            except BaseException:
                await release(cid, self.run_info(cid) or {}, self._networks)
                raise
            self._c.publish(cid, "start")
            if supervise:
                self._supervise(cid)
            return True

    def _supervise(self, cid: str) -> None:
        old = self._supervisors.get(cid)
        if old is not None and not old.done():
            return
        task = asyncio.create_task(self._watch(cid), name=f"container-{cid[:12]}")
        self._supervisors[cid] = task
        task.add_done_callback(lambda t: self._supervisors.pop(cid, None) if
                               self._supervisors.get(cid) is t else None)

    async def _watch(self, cid: str) -> None:
        """Wait for the container's exit; then its networks go, and the restart policy or
        AutoRemove decides what follows."""
        delay = RESTART_DELAY
        while True:
            info = self.run_info(cid)
            if info is None:
                return
            code = 0
            try:
                await self._controller(info).wait()
            except (ExitError, Unhealthy) as exc:
                code = exc.code if isinstance(exc, ExitError) else 137
            except ShoalError as exc:
                log.warning("container %s: %s", cid[:12], exc)
                code = 128
            self._c.publish(cid, "die", {"exitCode": str(code)})
            self._last_code[cid] = code
            self._c.exited(cid, code)
            await release(cid, self.run_info(cid) or {}, self._networks)
            info = self.run_info(cid)
            if info is None:
                return
            if info.get("auto_remove"):
                await self.remove(cid, force=True)
                return
            if not self._should_restart(info, code):
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX_DELAY)
            info = self.run_info(cid)
            if info is None or info.get("stopped_by_hand"):
                return
            info["restart_count"] = int(info.get("restart_count", 0)) + 1
            write_json(self._dir(cid) / RUN_FILE, info)
            rec = record.read_record(self._dir(cid)) or {}
            rec["RestartCount"] = info["restart_count"]
            record.write_record(self._dir(cid), rec)
            try:
                await self.start(cid, by_hand=False, supervise=False)  # watched by this loop
            except ShoalError as exc:
                log.warning("container %s: restart failed: %s", cid[:12], exc)
                return
            self._c.publish(cid, "restart")

    @staticmethod
    def _should_restart(info: dict[str, Any], code: int) -> bool:
        if info.get("stopped_by_hand"):
            return False
        policy = info.get("restart", "no")
        if policy in ("always", "unless-stopped"):
            return True
        if policy == "on-failure" and code != 0:
            retries = int(info.get("max_retries", 0))
            return retries == 0 or int(info.get("restart_count", 0)) < retries
        return False

    @property
    def networks(self) -> LocalNetworks | None:
        return self._networks

    def mark_stopped(self, cid: str) -> None:
        """Stopped or killed by hand: no restart policy applies (until a start by hand)."""
        info = self.run_info(cid)
        if info is not None and self._c.state(cid).running:
            info["stopped_by_hand"] = True
            write_json(self._dir(cid) / RUN_FILE, info)

    async def stop(self, cid: str, timeout: int | None, sig: int | None) -> bool:
        self.mark_stopped(cid)
        return await self._c.stop(cid, timeout, sig)

    async def restart(self, cid: str, timeout: int | None, sig: int | None) -> None:
        await self.stop(cid, timeout, sig)
        watcher = self._supervisors.get(cid)
        if watcher is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(watcher), 10)
        await self.start(cid)
        self._c.publish(cid, "restart")

    async def rename(self, cid: str, name: str) -> None:
        if not self.is_standalone(cid):
            raise Conflict(f"Error when allocating new name: {cid} is a swarm task's container")
        name = name.lstrip("/")
        if not name:
            raise InvalidArgument("Neither old nor new names may be empty")
        if not valid_name(name):
            raise InvalidArgument(f"Invalid container name ({name}), only [a-zA-Z0-9]"
                                  "[a-zA-Z0-9_.-] are allowed")
        rec = record.read_record(self._dir(cid)) or {}
        old = str(rec.get("Name", ""))
        if old == "/" + name:
            raise InvalidArgument("Renaming a container with the same name as its current name")
        for other in self._c.ids():
            if (record.read_record(self._dir(other)) or {}).get("Name") == "/" + name:
                raise Conflict(f'Error when allocating new name: Conflict. The container name '
                               f'"/{name}" is already in use by container "{other}". You have '
                               "to remove (or rename) that container to be able to reuse that "
                               "name.")
        rec["Name"] = "/" + name
        record.write_record(self._dir(cid), rec)
        self._c.publish(cid, "rename", {"oldName": old})

    # --- remove -----------------------------------------------------------------------------

    @metrics.timed_async(metrics.CONTAINER_ACTIONS.labels("delete"))
    async def remove(self, cid: str, *, force: bool) -> None:
        info = self.run_info(cid)
        if info is None:
            raise Conflict(f"You cannot remove a swarm task's container {cid}: remove its "
                           "service or scale it down")
        if self._c.state(cid).running:
            if not force:
                raise Conflict(f"cannot remove container \"{cid}\": container is running: stop "
                               "the container before removing or force remove")
            info["stopped_by_hand"] = True
            write_json(self._dir(cid) / RUN_FILE, info)
            await self._c.kill(cid, 9)
        watcher = self._supervisors.pop(cid, None)
        if watcher is not None and watcher is not asyncio.current_task():
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
        await release(cid, self.run_info(cid) or {}, self._networks)
        self._c.publish(cid, "destroy")
        code = self._last_code.pop(cid, self._c.state(cid).exit_code)
        await self._controller(info).remove()
        self._locks.pop(cid, None)
        self._c.removed(cid, code)

    # --- a daemon's start: what was running is watched again, the policies applied ----------

    async def run(self) -> None:
        for cid in self._c.ids():
            info = self.run_info(cid)
            if info is None:
                continue
            st = self._c.state(cid)
            if st.running:
                self._supervise(cid)
            elif st.shim is not None and info.get("restart") in ("always", "unless-stopped") \
                    and not (info.get("restart") == "unless-stopped" and
                             info.get("stopped_by_hand")):
                try:
                    await self.start(cid, by_hand=False)
                except ShoalError as exc:
                    log.warning("container %s: start at daemon start failed: %s", cid[:12], exc)
        await asyncio.Event().wait()

    def find(self, ref: str) -> str:
        cid = self._c.resolve(ref)
        if not self.is_standalone(cid) and not (self._dir(cid) / "container.json").exists():
            raise NotFound(f"No such container: {ref}")
        return cid
