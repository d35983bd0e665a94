"""The sim executor: the exit, fail, unhealthy and reject paths, the control file, re-attach."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from shoal.exec import ContainerStatuser, Controller, Executor, ExitError, TaskRejected, Unhealthy
from shoal.exec.sim import SimController, SimExecutor
from shoal.model.objects import Task
from shoal.model.specs import TaskSpec

HEALTH = {"Test": ["CMD", "true"], "Interval": 20_000_000}


def make_task(task_id: str = "t1", env: list[str] | None = None,
              health: dict[str, Any] | None = None) -> Task:
    spec: dict[str, Any] = {"Image": "busybox", "Env": env or []}
    if health is not None:
        spec["Healthcheck"] = health
    return Task(id=task_id, spec=TaskSpec(container_spec=spec))


@pytest.fixture
def executor(tmp_path: Path) -> SimExecutor:
    return SimExecutor(hostname="node-1", engine_labels={"zone": "a"}, state_dir=tmp_path)


async def run_to_running(ctl: SimController) -> None:
    await ctl.prepare()
    await ctl.start()


def test_implements_protocols(executor: SimExecutor) -> None:
    exe: Executor = executor
    ctl: Controller = exe.controller(make_task())
    assert isinstance(ctl, ContainerStatuser)


def test_describe(executor: SimExecutor) -> None:
    desc = executor.describe()
    assert desc.hostname == "node-1"
    assert desc.engine.labels == {"zone": "a"}
    assert desc.platform.os == "linux" and desc.platform.architecture
    assert desc.resources.nano_cpus >= 1_000_000_000 and desc.resources.memory_bytes > 0


async def test_exit_zero_after(executor: SimExecutor) -> None:
    ctl = executor.controller(make_task(env=["SIM_EXIT_AFTER=0.05"]))
    await run_to_running(ctl)
    st = ctl.status()
    assert len(st.container_id) == 64 and st.pid > 0
    assert await asyncio.wait_for(ctl.wait(), 2) == 0
    assert ctl.status().pid == 0


async def test_exit_code_fails(executor: SimExecutor) -> None:
    ctl = executor.controller(make_task(env=["SIM_EXIT_AFTER=0", "SIM_EXIT_CODE=3"]))
    await run_to_running(ctl)
    with pytest.raises(ExitError, match=r"task: non-zero exit \(3\)") as info:
        await asyncio.wait_for(ctl.wait(), 2)
    assert info.value.code == 3 and ctl.status().exit_code == 3


async def test_reject(executor: SimExecutor) -> None:
    ctl = executor.controller(make_task(env=["SIM_REJECT=no such image"]))
    with pytest.raises(TaskRejected, match="no such image"):
        await ctl.prepare()


async def test_healthcheck_gates_start_then_unhealthy(executor: SimExecutor) -> None:
    ctl = executor.controller(make_task(env=["SIM_UNHEALTHY_AFTER=0.1"], health=HEALTH))
    await ctl.prepare()
    t0 = time.monotonic()
    await ctl.start()
    assert time.monotonic() - t0 >= 0.02  # the first check must pass before RUNNING
    with pytest.raises(Unhealthy, match="dockerexec: unhealthy container"):
        await asyncio.wait_for(ctl.wait(), 2)


async def test_unhealthy_knob_needs_a_healthcheck(executor: SimExecutor) -> None:
    ctl = executor.controller(make_task(env=["SIM_UNHEALTHY_AFTER=0", "SIM_EXIT_AFTER=0.05"],
                                        health={"Test": ["NONE"]}))
    await run_to_running(ctl)
    assert await asyncio.wait_for(ctl.wait(), 2) == 0


async def test_slow_start(executor: SimExecutor) -> None:
    ctl = executor.controller(make_task(env=["SIM_START_SECONDS=0.1"]))
    await ctl.prepare()
    t0 = time.monotonic()
    await ctl.start()
    assert time.monotonic() - t0 >= 0.09


@pytest.mark.parametrize(("content", "error", "code"), [
    ("exit 0\n", None, 0), ("exit 7", ExitError, 7), ("fail", ExitError, 1),
    ("unhealthy", Unhealthy, 137),
])
async def test_control_file(executor: SimExecutor, content: str,
                            error: type[Exception] | None, code: int) -> None:
    ctl = executor.controller(make_task())
    await run_to_running(ctl)
    waiter = asyncio.create_task(ctl.wait())
    await asyncio.sleep(0.05)
    assert not waiter.done()
    executor.control_path("t1").write_text(content)
    if error is None:
        assert await asyncio.wait_for(waiter, 2) == 0
    else:
        with pytest.raises(error):
            await asyncio.wait_for(waiter, 2)
    assert ctl.status().exit_code == code


async def test_invalid_control_file_is_ignored(executor: SimExecutor) -> None:
    ctl = executor.controller(make_task())
    await run_to_running(ctl)
    executor.control_path("t1").write_text("explode")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ctl.wait(), 0.25)


async def test_reattach_after_restart_and_remove(tmp_path: Path) -> None:
    first = SimExecutor(hostname="n", state_dir=tmp_path)
    ctl = first.controller(make_task(env=["SIM_EXIT_AFTER=0.3"]))
    await run_to_running(ctl)
    cid = ctl.status().container_id
    await asyncio.sleep(0.15)
    # the agent restarts: a new executor and controller for the same task
    second = SimExecutor(hostname="n", state_dir=tmp_path)
    again = second.controller(make_task(env=["SIM_EXIT_AFTER=0.3"]))
    await again.prepare()
    await again.start()  # already running: not restarted
    assert again.status().container_id == cid
    t0 = time.monotonic()
    assert await asyncio.wait_for(again.wait(), 2) == 0
    assert time.monotonic() - t0 < 0.25  # the timer counts from the first start
    assert second.containers() == ["t1"]
    await again.remove()
    assert second.containers() == [] and not (tmp_path / "sim" / "t1").exists()


async def test_shutdown_ends_wait(executor: SimExecutor) -> None:
    ctl = executor.controller(make_task())
    await run_to_running(ctl)
    waiter = asyncio.create_task(ctl.wait())
    await ctl.shutdown()
    assert await asyncio.wait_for(waiter, 2) == 0
