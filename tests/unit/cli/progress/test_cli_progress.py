"""The convergence display of service create/update/scale: counting, rendering, the loop."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from shoal.cli.app import App
from shoal.cli.errors import CliError, Interrupted
from shoal.cli.progress.counters import GlobalUpdater, ReplicatedUpdater
from shoal.cli.progress.render import Progress, ProgressDisplay, progress_bar
from shoal.cli.progress.states import truncate_error
from shoal.cli.progress.watch import service_progress

NODES = [
    {"ID": "node-a", "Status": {"State": "ready"}},
    {"ID": "node-b", "Status": {"State": "ready"}},
    {"ID": "node-down", "Status": {"State": "down"}},
]


def task(
    slot: int, state: str, *, node: str = "node-a", desired: str = "running", err: str = ""
) -> dict[str, Any]:
    status: dict[str, Any] = {"State": state}
    if err:
        status["Err"] = err
    return {
        "ID": f"t{slot}{state}",
        "Slot": slot,
        "NodeID": node,
        "DesiredState": desired,
        "Status": status,
    }


def replicated(replicas: int, **extra: Any) -> dict[str, Any]:
    return {
        "ID": "svc1",
        "Spec": {"Name": "web", "Mode": {"Replicated": {"Replicas": replicas}}},
        **extra,
    }


# -- counting -------------------------------------------------------------------------------


def test_replicated_counts_running_slots_and_ignores_down_nodes() -> None:
    out: list[Progress] = []
    updater = ReplicatedUpdater(out.append)
    tasks = [task(1, "running"), task(2, "starting"), task(3, "running", node="node-down")]
    assert not updater.update(replicated(3), tasks, {"node-a", "node-b"}, False)
    assert out[0] == Progress(id="overall progress", action="0 out of 3 tasks")
    assert [p.id for p in out[1:4]] == ["1/3", "2/3", "3/3"]
    assert out[-1] == Progress(id="overall progress", action="1 out of 3 tasks")
    bars = {p.id: p for p in out[4:-1]}
    assert bars["1/3"].action == "running  " and bars["1/3"].current == 9 and bars["1/3"].total == 9
    assert bars["2/3"].action == "starting " and bars["2/3"].current == 8
    assert "3/3" not in bars  # its task is on a down node


def test_replicated_prefers_the_task_with_the_lowest_desired_state() -> None:
    out: list[Progress] = []
    updater = ReplicatedUpdater(out.append)
    tasks = [task(1, "running", desired="shutdown"), task(1, "running")]
    assert updater.update(replicated(1), tasks, {"node-a"}, False)
    assert out[-1] == Progress(id="overall progress", action="1 out of 1 tasks")


def test_task_errors_replace_the_bar() -> None:
    out: list[Progress] = []
    err = "no suitable node (scheduling constraints not satisfied on 3 nodes)"
    ReplicatedUpdater(out.append).update(
        replicated(1), [task(1, "pending", err=err)], {"node-a"}, False
    )
    assert Progress(id="1/1", action=err) in out
    assert truncate_error("x" * 80) == "x" * 74 + "…"
    assert truncate_error("a\nb") == "a b"


def test_global_counts_nodes_and_waits_for_tasks() -> None:
    out: list[Progress] = []
    updater = GlobalUpdater(out.append)
    assert not updater.update({}, [], {"node-a"}, False)
    assert out == [Progress(id="overall progress", action="waiting for new tasks")]
    tasks = [task(0, "running", node="node-a"), task(0, "preparing", node="node-b")]
    assert not updater.update({}, tasks, {"node-a", "node-b"}, True)
    assert out[1] == Progress(id="overall progress", action="rolling back update: 0 out of 2 tasks")
    assert out[-1] == Progress(
        id="overall progress", action="rolling back update: 1 out of 2 tasks"
    )


# -- rendering ------------------------------------------------------------------------------


def test_progress_bar() -> None:
    assert progress_bar(9, 9, hide_counts=True, width=200) == "[" + "=" * 50 + ">] "
    assert progress_bar(3, 9, hide_counts=True, width=200) == "[" + "=" * 16 + ">" + " " * 34 + "] "
    assert progress_bar(3, 9, hide_counts=True, width=100) == ""  # narrow terminals get no bar
    assert progress_bar(0, 0, hide_counts=True, width=200) == ""


def test_plain_output_hides_bars_like_docker() -> None:
    written: list[str] = []
    display = ProgressDisplay(written.append, tty=False, width=200)
    display(Progress(id="overall progress", action="0 out of 1 tasks"))
    display(Progress(id="1/1", action=" "))
    display(Progress(id="1/1", action="running  ", current=9, total=9, hide_counts=True))
    display(Progress(id="verify", action="Waiting 5 seconds to verify that tasks are stable..."))
    display(Progress(message="job complete"))
    assert "".join(written) == (
        "overall progress: 0 out of 1 tasks\n1/1:  \n"
        "verify: Waiting 5 seconds to verify that tasks are stable...\njob complete\n"
    )


def test_terminal_output_redraws_lines() -> None:
    written: list[str] = []
    display = ProgressDisplay(written.append, tty=True, width=200)
    display(Progress(id="overall progress", action="0 out of 1 tasks"))
    display(Progress(id="1/1", action=" "))
    display(Progress(id="1/1", action="running  ", current=9, total=9, hide_counts=True))
    assert "".join(written) == (
        "\n\x1b[1A\x1b[2K\roverall progress: 0 out of 1 tasks \r\x1b[1B"
        "\n\x1b[1A\x1b[2K\r1/1:   \r\x1b[1B"
        "\x1b[1A\x1b[2K\r1/1: running   [" + "=" * 50 + ">] \r\x1b[1B"
    )


# -- the loop -------------------------------------------------------------------------------


class Script:
    """Answers the three progress requests from a list of (service, tasks) polls."""

    def __init__(self, polls: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
        self.polls, self.index, self.millis = polls, -1, 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/_ping":
            return httpx.Response(200, headers={"Api-Version": "1.50"})
        if "/services/" in path:
            self.index = min(self.index + 1, len(self.polls) - 1)
            return httpx.Response(200, json=self.polls[self.index][0])
        if path.endswith("/tasks"):
            filters = json.loads(request.url.params["filters"])
            assert filters == {"_up-to-date": {"true": True}, "service": {"svc1": True}}
            return httpx.Response(200, json=self.polls[self.index][1])
        return httpx.Response(200, json=NODES)

    def app(self, *, interrupt_after: int | None = None) -> App:
        def sleep(seconds: float) -> None:
            if interrupt_after is not None and self.index + 1 >= interrupt_after:
                raise KeyboardInterrupt
            self.millis += round(seconds * 1000)

        return App(
            transport=httpx.MockTransport(self.handle),
            sleep=sleep,
            clock=lambda: self.millis / 1000,
        )


def run(script: Script, **kwargs: Any) -> list[str]:
    lines: list[str] = []
    display = ProgressDisplay(lines.append, tty=False, width=200)
    service_progress(script.app(**kwargs), "svc1", display)
    return "".join(lines).splitlines()


def test_converges_then_verifies_for_the_monitor_period() -> None:
    service = replicated(
        2,
        Spec={
            "Name": "web",
            "Mode": {"Replicated": {"Replicas": 2}},
            "UpdateConfig": {"Monitor": 1_000_000_000},
        },
    )
    script = Script(
        [(service, [task(1, "starting"), task(2, "running")])]
        + [(service, [task(1, "running"), task(2, "running")])]
    )
    assert run(script) == [
        "overall progress: 0 out of 2 tasks",
        "1/2:  ",
        "2/2:  ",
        "overall progress: 1 out of 2 tasks",
        "overall progress: 2 out of 2 tasks",
        "verify: Waiting 2 seconds to verify that tasks are stable...",
        *["verify: Waiting 1 seconds to verify that tasks are stable..."] * 4,
        "verify: Service svc1 converged",
    ]


def test_a_failing_task_restarts_verification() -> None:
    service = replicated(
        1,
        Spec={
            "Name": "w",
            "Mode": {"Replicated": {"Replicas": 1}},
            "UpdateConfig": {"Monitor": 1_000_000_000},
        },
    )
    up, down = [task(1, "running")], [task(1, "failed")]
    lines = run(
        Script([(service, up), (service, down), (service, up), (service, up), (service, up)])
    )
    assert "verify: Detected task failure" in lines
    assert lines[-1] == "verify: Service svc1 converged"


def test_paused_update_fails() -> None:
    service = replicated(
        1, UpdateStatus={"State": "paused", "Message": "update paused due to failure"}
    )
    with pytest.raises(CliError, match="service update paused: update paused due to failure"):
        run(Script([(service, [])]))


def test_completed_before_convergence_ends_at_once() -> None:
    service = replicated(1, UpdateStatus={"State": "completed", "Message": "update completed"})
    assert run(Script([(service, [])])) == []


def test_rollback_wording() -> None:
    started = replicated(
        1, UpdateStatus={"State": "rollback_started", "Message": "manually requested rollback"}
    )
    completed = replicated(
        1,
        UpdateStatus={"State": "rollback_completed", "Message": "rollback completed"},
        Spec={
            "Name": "w",
            "Mode": {"Replicated": {"Replicas": 1}},
            "UpdateConfig": {"Monitor": 200_000_000},
        },
    )
    lines = run(Script([(started, [task(1, "starting")]), (completed, [task(1, "running")])]))
    assert lines[0] == "rollback: manually requested rollback"
    assert "overall progress: rolling back update: 0 out of 1 tasks" in lines
    assert lines[-2:] == ["verify: Service svc1 converged", "rollback: rollback completed"]


def test_replicated_job_ends_when_complete() -> None:
    job = {
        "ID": "svc1",
        "Spec": {"Mode": {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}},
        "JobStatus": {"JobIteration": {"Index": 3}},
    }
    done = dict(task(0, "complete", desired="complete"), JobIteration={"Index": 3})
    lines = run(Script([(job, [done])]))
    assert lines[0] == "active tasks: 0 out of 1 tasks"
    assert lines[-1] == "job complete"


def test_ctrl_c_leaves_the_update_in_the_background() -> None:
    with pytest.raises(Interrupted):
        run(Script([(replicated(1), [task(1, "starting")])]), interrupt_after=1)


def test_ctrl_c_message_and_status(shoal: Any) -> None:
    shoal.daemon.auto_advance = False

    def interrupt(_seconds: float) -> None:
        raise KeyboardInterrupt

    shoal._sleep = interrupt
    result = shoal("service", "create", "--no-resolve-image", "--name", "web", "nginx")
    assert result.status == 130
    assert result.out.endswith(
        "Operation continuing in background.\n"
        "Use `shoal service ps " + result.out.splitlines()[0] + "` to check progress.\n"
    )
