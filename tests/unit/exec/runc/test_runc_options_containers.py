"""The service options in real runc containers (issue 15): a TTY whose output is still logged,
OpenStdin's open pipe, --init as PID 1, groups, ulimits, the OOM score, the host files, the
log driver none, the start interval and a templated hostname. Needs root and runc (the fixtures
of test_runc_executor: a busybox rootfs, a private executor checked for leftovers)."""

from __future__ import annotations

import asyncio
import time

import pytest

from shoal.exec.errors import ExecError
from shoal.exec.runc import procopts
from tests.unit.exec.runc import test_runc_executor as base
from tests.unit.exec.runc.test_runc_executor import MS, Env, collect, run_to_exit, text

rootfs, env, pytestmark = base.rootfs, base.env, base.pytestmark


async def test_tty_output_is_logged_as_stdout(env: Env) -> None:
    ctl = env.controller(env.task(["sh", "-c", "tty; echo $TERM; echo out; echo err >&2"],
                                  TTY=True))
    try:
        assert await run_to_exit(ctl) == 0
        lines = await collect(ctl)
        assert {line.stream for line in lines} == {"stdout"}  # one stream, as Docker's
        assert text(lines).split("\r\n")[:4] == ["/dev/pts/0", "xterm", "out", "err"]
    finally:
        await ctl.remove()


async def test_open_stdin_is_a_pipe_kept_open(env: Env) -> None:
    script = "readlink /proc/self/fd/0; if read -t 1 x; then echo data; else echo waited; fi"
    closed = env.controller(env.task(["sh", "-c", script]))
    opened = env.controller(env.task(["sh", "-c", script], OpenStdin=True))
    try:
        assert await run_to_exit(closed) == 0 and await run_to_exit(opened) == 0
        assert text(await collect(closed)).split() == ["/dev/null", "waited"]
        out = text(await collect(opened)).split()
        assert out[0].startswith("pipe:") and out[1] == "waited"
    finally:
        await closed.remove()
        await opened.remove()


@pytest.mark.skipif(procopts.find_init() is None, reason="no docker-init or tini-static")
async def test_init_is_pid_1(env: Env) -> None:
    ctl = env.controller(env.task(["sh", "-c", ("cat /proc/1/cmdline | tr '\\0' ' '; echo; "
                                   "echo $$")], Init=True))
    try:
        assert await run_to_exit(ctl) == 0
        first, second = text(await collect(ctl)).splitlines()[:2]
        assert first.startswith("/sbin/docker-init -- sh -c") and second != "1"
    finally:
        await ctl.remove()


async def test_groups_ulimits_oom_and_host_files(env: Env) -> None:
    ctl = env.controller(env.task(
        ["sh", "-c", ("id -G; grep 'open files' /proc/self/limits; cat /proc/self/oom_score_adj;"
                     " cat /etc/resolv.conf /etc/hosts")],
        Groups=["nogroup", "4242"], OomScoreAdj=321,
        Ulimits=[{"Name": "nofile", "Soft": 321, "Hard": 654}],
        DNSConfig={"Nameservers": ["192.0.2.53"], "Search": ["example.com"]},
        Hosts=["192.0.2.9 db db.example.com"]))
    try:
        assert await run_to_exit(ctl) == 0
        out = text(await collect(ctl)).splitlines()
        assert sorted(out[0].split(), key=int) == ["0", "4242", "65534"]
        assert out[1].split()[3:5] == ["321", "654"]
        assert out[2] == "321"
        assert "nameserver 192.0.2.53" in out and "search example.com" in out
        assert "192.0.2.9\tdb db.example.com" in out
    finally:
        await ctl.remove()


async def test_log_driver_none_keeps_nothing(env: Env) -> None:
    task = env.task(["sh", "-c", "echo nowhere"])
    task.spec.log_driver = {"Name": "none"}
    ctl = env.controller(task)
    try:
        assert await run_to_exit(ctl) == 0
        assert not ctl.log_path.exists()
        with pytest.raises(ExecError, match="configured logging driver does not support reading"):
            await collect(ctl)
    finally:
        await ctl.remove()


async def test_start_interval_probes_during_the_start_period(env: Env) -> None:
    check = {"Test": ["CMD", "true"], "Interval": 60 * 1000 * MS, "StartPeriod": 30 * 1000 * MS,
             "StartInterval": 100 * MS}
    ctl = env.controller(env.task(["sleep", "100"], StopGracePeriod=0, Healthcheck=check))
    try:
        await ctl.prepare()
        began = time.monotonic()
        await asyncio.wait_for(ctl.start(), 10)  # not the 60 s interval
        assert ctl.status().health == "healthy" and time.monotonic() - began < 10
        await ctl.shutdown()
    finally:
        await ctl.remove()


async def test_templated_hostname_env_and_volume(env: Env) -> None:
    task = env.task(["sh", "-c", "hostname; echo $WHERE"],
                    Hostname="{{.Service.Name}}-{{.Task.Slot}}", Env=["WHERE={{.Node.Hostname}}"],
                    Mounts=[{"Type": "volume", "Source": "data-{{.Task.Slot}}", "Target": "/d"}])
    task.service_name, task.slot = "web", 4
    ctl = env.controller(task)
    try:
        assert await run_to_exit(ctl) == 0
        assert text(await collect(ctl)).splitlines()[:2] == ["web-4", "node-1"]
        assert (env.base / "data/volumes/data-4/_data").is_dir()
    finally:
        await ctl.remove()
