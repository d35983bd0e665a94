"""TaskState is one ordered enum whose wire form is the Docker API's lower-case string."""

from __future__ import annotations

import msgspec
import pytest

from shoal.model.codec import encode
from shoal.model.dispatch import StatusUpdate, TaskStatusUpdate, decode_message, encode_message
from shoal.model.objects import Task, TaskStatus
from shoal.model.states import TERMINAL, TaskState

# swarmkit's types.proto order; alphabetical order would differ.
ORDER = ["new", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running",
         "complete", "shutdown", "failed", "rejected", "remove", "orphaned"]

# A Task with the defaults as the model encoded it when the states were plain strings.
DEFAULT_TASK_JSON = (
    b'{"ID":"t2","Version":{"Index":0},"CreatedAt":"0001-01-01T00:00:00Z",'
    b'"UpdatedAt":"0001-01-01T00:00:00Z","Name":"","Labels":null,"Spec":{"ContainerSpec":null,'
    b'"PluginSpec":null,"NetworkAttachmentSpec":null,"Resources":null,"RestartPolicy":null,'
    b'"Placement":null,"Networks":null,"LogDriver":null,"ForceUpdate":0,"Runtime":""},'
    b'"ServiceID":"","ServiceName":"","ServiceLabels":null,"Slot":0,"NodeID":"","Status":{"Timestamp":'
    b'"0001-01-01T00:00:00Z","State":"new","Message":"","Err":"","ContainerStatus":null,'
    b'"PortStatus":null},"DesiredState":"running","NetworksAttachments":null,"JobIteration":null,'
    b'"Endpoint":null,"EndpointSpec":null}'
)


def test_values_are_the_wire_strings_in_swarmkit_order() -> None:
    assert [s.value for s in TaskState] == ORDER
    assert sorted(TaskState, reverse=True) == list(reversed(TaskState))
    assert [s.rank for s in TaskState] == sorted(s.rank for s in TaskState)
    assert TaskState.RUNNING < TaskState.COMPLETE  # "running" > "complete" as strings
    assert TaskState.NEW <= TaskState.NEW and TaskState.REMOVE >= TaskState.SHUTDOWN
    assert max(TaskState.READY, TaskState.SHUTDOWN) is TaskState.SHUTDOWN
    assert TERMINAL == {s for s in TaskState if s > TaskState.RUNNING}


def test_a_plain_string_does_not_order() -> None:
    with pytest.raises(TypeError):
        assert TaskState.RUNNING < "shutdown"
    with pytest.raises(TypeError):
        assert "shutdown" > TaskState.RUNNING


def test_default_task_encodes_as_before() -> None:
    task = Task(id="t2")
    assert task.status.state is TaskState.NEW and task.desired_state is TaskState.RUNNING
    assert encode(task) == DEFAULT_TASK_JSON
    assert msgspec.to_builtins(task)["Status"]["State"] == "new"


def test_decode_gives_the_enum_and_rejects_unknown_states() -> None:
    raw = DEFAULT_TASK_JSON.replace(b'"State":"new"', b'"State":"running"')
    task = msgspec.json.decode(raw, type=Task)
    assert task.state is TaskState.RUNNING and task.desired_state is TaskState.RUNNING
    assert encode(task) == raw
    for bad in (b'"State":"bogus"', b'"State":"RUNNING"'):
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(DEFAULT_TASK_JSON.replace(b'"State":"new"', bad), type=Task)


def test_agent_status_report_round_trips() -> None:
    msg = StatusUpdate(updates=[TaskStatusUpdate(task_id="t1", status=TaskStatus(state=TaskState.FAILED))])
    back = decode_message(encode_message(msg))
    assert isinstance(back, StatusUpdate) and back.updates[0].status.state is TaskState.FAILED
    with pytest.raises(msgspec.ValidationError):
        decode_message(encode_message(msg).replace('"failed"', '"exploded"'))
