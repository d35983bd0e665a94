"""Standalone containers on attachable overlays, the daemon's half (localnets + overlays.py),
with records-only local networks, the agent's real Attachments and a fake manager at the other
end of its queue: attach and connect ask for an attachment task and show its address; leaving,
releasing and failures give every task back; the record survives a restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shoal.agent.attachments import Attachments
from shoal.agent.reporter import Reporter
from shoal.daemon.localnets import StandaloneNetworks
from shoal.daemon.overlays import SwarmSide
from shoal.errors import InvalidArgument, NotFound, PermissionDenied, Unavailable
from shoal.exec.localnet import EndpointRequest
from shoal.model.dispatch import AttachNetwork, AttachNetworkReply, DetachNetwork, Message
from shoal.model.objects import Network, NetworkAttachment, Task, TaskStatus
from shoal.model.specs import NetworkAttachmentConfig, NetworkSpec, TaskSpec
from shoal.model.states import TaskState
from shoal.net.bridges import LocalBridges

CID, CID2 = "a" * 64, "b" * 64
OPEN = Network(id="o2" * 32, spec=NetworkSpec(name="open", driver="overlay", attachable=True))


@dataclass
class FakeManager:
    """The dispatcher's answers: an attachment task per request, assigned with the next
    address of 10.0.5.0/24; ``tasks`` holds the live ones."""

    attachments: Attachments
    tasks: dict[str, Task] = field(default_factory=dict)
    detached: list[str] = field(default_factory=list)
    assign: bool = True
    n: int = 0

    async def send(self, msg: Message) -> None:
        if isinstance(msg, AttachNetwork):
            if msg.network not in ("open", OPEN.id):
                self.attachments.reply(AttachNetworkReply(
                    request_id=msg.request_id, code="NotFound",
                    error=f"network {msg.network} not found"))
                return
            self.n += 1
            task = Task(id=f"t{self.n}", node_id="n1",
                        spec=TaskSpec(network_attachment_spec={"ContainerID": msg.container_id},
                                      networks=[NetworkAttachmentConfig(target=OPEN.id)]),
                        networks_attachments=[NetworkAttachment(
                            network=OPEN, addresses=[f"10.0.5.{self.n + 1}/24"])],
                        status=TaskStatus(state=TaskState.ASSIGNED))
            self.tasks[task.id] = task
            self.attachments.reply(AttachNetworkReply(request_id=msg.request_id,
                                                      task_id=task.id))
            if self.assign:
                self.attachments.assigned(task)
        elif isinstance(msg, DetachNetwork):
            self.detached.append(msg.task_id)
            self.tasks.pop(msg.task_id, None)
            self.attachments.removed(msg.task_id)


@pytest.fixture
async def manager() -> AsyncIterator[FakeManager]:
    fake = FakeManager(Attachments(Reporter(), timeout=0.5))
    job = asyncio.create_task(fake.attachments.send_loop(fake.send))
    try:
        yield fake
    finally:
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)


async def make(tmp_path: Path, manager: FakeManager) -> StandaloneNetworks:
    closed = Network(id="o1", spec=NetworkSpec(name="closed", driver="overlay"))
    bridges = LocalBridges(tmp_path, tmp_path, kernel=False)
    await bridges.start()
    await bridges.create(NetworkSpec(name="front"))
    return StandaloneNetworks(bridges, swarm_network={"closed": closed, "open": OPEN}.get,
                              name_of={CID: "/web"}.get,
                              swarm=lambda: SwarmSide(manager.attachments, None))


async def test_attach_connect_disconnect_release(tmp_path: Path, manager: FakeManager) -> None:
    nets = await make(tmp_path, manager)
    sb = await nets.attach(CID, [EndpointRequest("open", aliases=("db",))], hostname="h1")
    assert sb.path is not None and sb.path.endswith(CID[:16]) and sb.embedded_dns
    (ep,) = sb.endpoints
    assert (ep.network_name, ep.network_id, ep.ip_address, ep.prefix_len, ep.endpoint_id) == (
        "open", OPEN.id, "10.0.5.2", 24, "t1")
    assert ep.aliases == ("db",) and ep.dns_names == ("web", "db", CID[:12], "h1")
    assert list(manager.tasks) == ["t1"]
    # a local network beside it, then the overlay again: refused, as dockerd's
    front = await nets.connect(CID, EndpointRequest("front"), hostname="h1")
    assert front.network_name == "front"
    with pytest.raises(PermissionDenied, match="already exists in network open"):
        await nets.connect(CID, EndpointRequest("open"), hostname="h1")
    sandbox = nets.sandbox(CID)
    assert sandbox is not None and [e.network_name for e in sandbox.endpoints] == [
        "front", "open"]
    await nets.disconnect(CID, "open")
    await asyncio.sleep(0)
    assert manager.detached == ["t1"] and not manager.tasks
    # connected again (a worker's kind of ref: the ID), then everything released
    ep2 = await nets.connect(CID, EndpointRequest(OPEN.id), hostname="h1")
    assert ep2.ip_address == "10.0.5.3"
    await nets.release(CID)
    await asyncio.sleep(0)
    assert manager.detached == ["t1", "t2"] and nets.sandbox(CID) is None


async def test_refusals_and_failures_leave_nothing(tmp_path: Path, manager: FakeManager) -> None:
    nets = await make(tmp_path, manager)
    with pytest.raises(PermissionDenied, match="^rpc error: code = PermissionDenied desc = "
                                               "network closed not manually attachable$"):
        await nets.attach(CID, [EndpointRequest("closed")], hostname="h")
    with pytest.raises(NotFound, match="network nope not found"):  # the managers' answer
        await nets.attach(CID, [EndpointRequest("front"), EndpointRequest("nope")],
                          hostname="h")
    assert nets.sandbox(CID) is None and nets.bridges.container(CID) is None
    with pytest.raises(InvalidArgument, match="at once"):
        await nets.attach(CID, [EndpointRequest("host"), EndpointRequest("open")], hostname="h")
    with pytest.raises(InvalidArgument, match="fixed addresses"):
        await nets.attach(CID, [EndpointRequest("open", ipv4_address="10.0.5.9")], hostname="h")
    manager.assign = False  # the task is made, never assigned: 20 s (here 0.5) then given back
    with pytest.raises(Unavailable, match="^attaching to network failed, make sure your network "
                                          "options are correct and check manager logs: "
                                          "context deadline exceeded$"):
        await nets.attach(CID, [EndpointRequest("front"), EndpointRequest("open")],
                          hostname="h")
    await asyncio.sleep(0)
    assert manager.detached == ["t1"] and not manager.tasks
    assert nets.sandbox(CID) is None and nets.bridges.container(CID) is None


async def test_the_record_survives_a_restart(tmp_path: Path, manager: FakeManager) -> None:
    nets = await make(tmp_path, manager)
    await nets.attach(CID, [EndpointRequest("open")], hostname="h1")
    await nets.attach(CID2, [EndpointRequest("front")], hostname="h2")
    await nets.connect(CID2, EndpointRequest("open"), hostname="h2")
    again = StandaloneNetworks(nets.bridges, swarm=lambda: SwarmSide(manager.attachments, None))
    await again.overlays.readopt()
    sandbox = again.sandbox(CID)
    assert sandbox is not None and [e.ip_address for e in sandbox.endpoints] == ["10.0.5.2"]
    assert set(manager.attachments.tasks) == {"t1", "t2"}
    # the managers take one away (node rm): the container leaves that overlay
    manager.attachments.on_removed = again.overlays.lost
    manager.attachments.removed("t2")
    for _ in range(5):
        await asyncio.sleep(0)
    sandbox2 = again.sandbox(CID2)
    assert sandbox2 is not None and [e.network_name for e in sandbox2.endpoints] == ["front"]
    again.overlays.forget_all()  # swarm leave
    assert [e.network_name for e in again.sandbox(CID).endpoints] == []  # type: ignore[union-attr]


async def test_a_release_cancelled_midway_still_gives_the_task_back(
        tmp_path: Path, manager: FakeManager) -> None:
    """``docker rm -f`` cancels the container's supervisor while it releases the networks:
    the attachment task must still go back to the managers."""
    nets = await make(tmp_path, manager)
    await nets.attach(CID, [EndpointRequest("open")], hostname="h1")
    job = asyncio.create_task(nets.release(CID))
    await asyncio.sleep(0)
    job.cancel()
    await asyncio.gather(job, return_exceptions=True)
    await nets.release(CID)  # the second call (rm after stop) finds nothing more to do
    for _ in range(5):
        await asyncio.sleep(0)
    assert manager.detached == ["t1"] and not manager.tasks
