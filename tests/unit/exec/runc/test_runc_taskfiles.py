"""Secrets and configs as files in a real runc container: on a tmpfs under the container's
dir, bind-mounted read-only at their targets with their owner and mode; gone with the
container; the bytes never under the data or exec root outside that tmpfs."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from shoal.exec.errors import TaskRejected, Temporary
from shoal.exec.runc.mounts import mount_points, mounts_under
from shoal.model.objects import Task
from tests.unit.exec.runc import test_runc_executor as base
from tests.unit.exec.runc.test_runc_executor import Env, collect, text

# the real-runc fixtures (a busybox rootfs, a private executor checked for leftovers) and skips
rootfs, env, pytestmark = base.rootfs, base.env, base.pytestmark

SECRET = b"s3cr3t-bytes-" + os.urandom(8).hex().encode()
KEY = b"key-" + os.urandom(8).hex().encode()
CONFIG = b"listen 8080\n# config-" + os.urandom(8).hex().encode() + b"\n"


class Files:
    """shoal.exec.TaskFiles over plain dicts."""

    def __init__(self, secrets: dict[str, bytes], configs: dict[str, bytes],
                 templated: dict[str, str] | None = None) -> None:
        self.secrets, self.configs = secrets, configs
        self.templated = templated or {}  # ID -> template driver

    def secret(self, secret_id: str) -> bytes | None:
        return self.secrets.get(secret_id)

    def config(self, config_id: str) -> bytes | None:
        return self.configs.get(config_id)

    def templating(self, kind: str, ref_id: str) -> str:
        return self.templated.get(ref_id, "")


ALL = Files({"sid1": SECRET, "sid2": KEY}, {"cid1": CONFIG})


def files_task(env: Env, script: str) -> Task:
    refs: dict[str, Any] = {
        "Secrets": [
            {"File": {"Name": "db_pw", "UID": "0", "GID": "0", "Mode": 0o444},
             "SecretID": "sid1", "SecretName": "db_pw"},
            {"File": {"Name": "/etc/app.key", "UID": "65534", "GID": "65534", "Mode": 0o400},
             "SecretID": "sid2", "SecretName": "app_key"},
        ],
        "Configs": [{"File": {"Name": "app.conf", "UID": "1000", "GID": "1001", "Mode": 0o440},
                     "ConfigID": "cid1", "ConfigName": "app.conf"}],
    }
    return env.task(["sh", "-c", script], **refs)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # a checksum of what the container read


def holding(root: Path, needle: bytes, *, skip: Path | None = None) -> list[str]:
    """Files under ``root`` (not below ``skip``) that contain ``needle`` (a grep -r)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        if skip is not None:
            dirnames[:] = [d for d in dirnames if Path(dirpath, d) != skip]
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_file() and not path.is_symlink():
                try:
                    if needle in path.read_bytes():
                        found.append(str(path))
                except OSError:
                    pass
    return found


SCRIPT = ("md5sum /run/secrets/db_pw /etc/app.key /app.conf; "
          "stat -c '%n %u:%g:%a' /run/secrets/db_pw /etc/app.key /app.conf; "
          "grep -E ' /run/secrets/db_pw | /app.conf ' /proc/mounts; "
          "echo x > /run/secrets/db_pw 2>/dev/null && echo writable; true")


async def test_files_mounted_with_owner_mode_and_gone_on_remove(env: Env) -> None:
    task = files_task(env, SCRIPT)
    ctl = env.executor.controller(task, ALL)
    try:
        await ctl.prepare()
        tmpfs = ctl.directory / "mounts" / "secrets"
        info = Path("/proc/self/mountinfo").read_text().splitlines()
        line = next(m for m in info if m.split()[4] == str(tmpfs))
        assert line.split(" - ")[1].split()[0] == "tmpfs"
        assert (tmpfs.stat().st_mode & 0o777) == 0o700
        await ctl.start()
        assert await asyncio.wait_for(ctl.wait(), 30) == 0
        out = text(await collect(ctl))
        assert f"{md5(SECRET)}  /run/secrets/db_pw" in out
        assert f"{md5(KEY)}  /etc/app.key" in out
        assert f"{md5(CONFIG)}  /app.conf" in out
        assert "/run/secrets/db_pw 0:0:444" in out
        assert "/etc/app.key 65534:65534:400" in out
        assert "/app.conf 1000:1001:440" in out
        mounted = [m.split() for m in out.splitlines() if m.startswith("tmpfs ")]
        assert {m[1] for m in mounted} == {"/run/secrets/db_pw", "/app.conf"}
        assert all("ro" in m[3].split(",") for m in mounted)
        assert "writable" not in out
        for needle in (SECRET, KEY, CONFIG):  # only in the tmpfs
            assert holding(env.base, needle, skip=tmpfs) == []
    finally:
        await ctl.remove()
    assert mounts_under(env.base) == []
    assert not any(m.startswith(str(env.base)) for m in mount_points())
    for needle in (SECRET, KEY, CONFIG):
        assert holding(env.base, needle) == []


async def test_running_container_survives_a_restart_without_the_data(env: Env) -> None:
    task = files_task(env, "sleep 0.5; md5sum /run/secrets/db_pw")
    ctl = env.executor.controller(task, ALL)
    try:
        await ctl.prepare()
        await ctl.start()
        # a new controller (daemon restart), and no data yet: the running container keeps its
        # tmpfs, and nothing needs the data again
        again = env.executor.controller(task, Files({}, {}))
        await again.prepare()
        await again.start()
        assert await asyncio.wait_for(again.wait(), 30) == 0
        assert f"{md5(SECRET)}  /run/secrets/db_pw" in text(await collect(again))
        assert mounts_under(again.directory / "mounts")
        await again.remove()
        assert mounts_under(env.base) == []
    finally:
        await ctl.remove()


async def test_missing_data_is_temporary_and_makes_nothing(env: Env) -> None:
    task = files_task(env, "true")
    ctl = env.executor.controller(task, Files({"sid1": SECRET}, {}))
    with pytest.raises(Temporary, match="secret sid2 is not on this node yet"):
        await ctl.prepare()
    assert ctl.container_id is None
    assert not (env.base / "data/containers/by-task" / f"{task.id}.json").exists()
    nothing = env.executor.controller(task)  # no TaskFiles at all
    with pytest.raises(Temporary):
        await nothing.prepare()


TEMPLATE = (b'{{.Service.Name}} {{.Task.Slot}} {{.Node.Hostname}} {{env "X"}} {{secret "pw"}}'
            b" {{.Task.Name}}\n")


def templated_task(env: Env, script: str, config: str = "tmpl.conf") -> Task:
    task = env.task(["sh", "-c", script], Env=["X=ex-value"], Secrets=[
        {"File": {"Name": "pw", "UID": "0", "GID": "0", "Mode": 0o400},
         "SecretID": "sidpw", "SecretName": "db_pw"}],
        Configs=[{"File": {"Name": config, "UID": "0", "GID": "0", "Mode": 0o444},
                  "ConfigID": "cidt", "ConfigName": "tmpl"}])
    task.name, task.service_id, task.service_name, task.slot = "", "svcid", "web", 3
    return task


async def test_templated_config_is_rendered_for_the_task(env: Env) -> None:
    task = templated_task(env, "cat /tmpl.conf; cat /run/secrets/pw; echo")
    files = Files({"sidpw": SECRET}, {"cidt": TEMPLATE}, {"cidt": "golang"})
    ctl = env.executor.controller(task, files)
    try:
        await ctl.prepare()
        await ctl.start()
        assert await asyncio.wait_for(ctl.wait(), 30) == 0
        out = text(await collect(ctl))
        rendered = f"web 3 node-1 ex-value {SECRET.decode()} web.3.{task.id}\n"
        assert out == rendered + SECRET.decode() + "\n"  # the secret itself is not templated
        tmpfs = ctl.directory / "mounts" / "secrets"
        assert holding(env.base, rendered.encode(), skip=tmpfs) == []  # only in the tmpfs
    finally:
        await ctl.remove()
    assert holding(env.base, SECRET) == []


async def test_a_failing_template_rejects_the_task_and_makes_nothing(env: Env) -> None:
    task = templated_task(env, "true")
    files = Files({"sidpw": SECRET}, {"cidt": b'{{secret "db_pw"}}'}, {"cidt": "golang"})
    ctl = env.executor.controller(task, files)
    with pytest.raises(TaskRejected, match=r"^failed to expand templated config cidt: template: "
                       r"expansion:1:2: executing \"expansion\" at <secret>: error calling "
                       r"secret: secret target db_pw not found$"):
        await ctl.prepare()
    assert ctl.container_id is None
