"""Standalone containers on attachable swarm overlays: the daemon's half (dockerd's
daemon/cluster/networks.go ``AttachNetwork`` and libnetwork's sandbox join), under
localnets.StandaloneNetworks.

Per overlay a container joins: the agent asks the managers for an attachment task and waits
for it with its address (shoal.agent.attachments, 20 s); the NetworkAgent puts a veth on the
overlay into the container's namespace with that address, publishes the endpoint in the
gossip (so services' tasks and other containers reach it by name) and, when the container has
no other way out, gives it the gateway bridge; the local networks' DNS server on 127.0.0.11
answers the overlay's names too (LocalBridges' resolver chained with the NetworkAgent's
directory). Leaving withdraws the endpoint, removes the veth and asks the managers to delete
the task. Each step that fails takes back the ones before it.

What was joined is kept in ``<data-root>/network/attachments.json`` (replaced whole): a
restarted daemon re-adopts the joins of containers whose namespace still exists (same task,
same address, same ``ethN``) as soon as its NetworkAgent is up, and gives back the attachment
tasks of the others. ``swarm leave`` forgets every join (the NetworkAgent removes the veths;
the managers delete the tasks with the node). An attachment task the managers take away
(``node rm`` and join again) is left by the container at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from ipaddress import IPv4Interface

import msgspec

from shoal.agent.attachments import Attachments
from shoal.errors import ShoalError, Unavailable
from shoal.exec.localnet import Endpoint
from shoal.fsutil import write_atomic
from shoal.model.objects import Network, Task
from shoal.net import links, netns
from shoal.net.bridges import LocalBridges
from shoal.net.netagent import NetworkAgent

__all__ = ["Joined", "OverlayJoins", "SwarmSide"]

log = logging.getLogger(__name__)


class Joined(msgspec.Struct, kw_only=True):
    network_id: str
    network_name: str
    task: Task  # the attachment task as assigned (its address)
    ifnum: int  # eth<N> in the container
    aliases: list[str] = msgspec.field(default_factory=list)


class Holder(msgspec.Struct, kw_only=True):
    container_id: str
    netns: str
    name: str
    aliases: list[str] = msgspec.field(default_factory=list)  # DNS names beside the name
    made_ns: bool = False  # the namespace is ours to remove (no local network made it)
    joins: list[Joined] = msgspec.field(default_factory=list)


_decoder = msgspec.json.Decoder(dict[str, Holder])


class SwarmSide(msgspec.Struct):
    """What the daemon has while in a swarm: the agent's attachments and, with the runc
    executor, the NetworkAgent (sim: records only)."""

    attachments: Attachments
    agent: NetworkAgent | None


class OverlayJoins:
    def __init__(self, bridges: LocalBridges, swarm: Callable[[], SwarmSide | None]) -> None:
        self._bridges = bridges
        self._swarm = swarm
        self._file = bridges.data_dir / "attachments.json"
        self._holders: dict[str, Holder] = self._load()
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Task[bool]] = set()

    def _load(self) -> dict[str, Holder]:
        try:
            return _decoder.decode(self._file.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, msgspec.DecodeError) as exc:
            log.error("%s unreadable, overlay attachments forgotten: %s", self._file, exc)
            return {}

    def _save(self) -> None:
        try:
            self._file.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self._file, msgspec.json.encode(self._holders))
        except OSError as exc:  # the next change writes it whole again
            log.error("saving %s: %s", self._file, exc)

    # -- queries --------------------------------------------------------------------------------

    def joined(self, container_id: str, ref: str) -> Joined | None:
        h = self._holders.get(container_id)
        for j in h.joins if h is not None else ():
            if ref in (j.network_id, j.network_name) or (len(ref) >= 12
                                                         and j.network_id.startswith(ref)):
                return j
        return None

    def has_gateway(self, container_id: str) -> bool:
        """Whether its overlays gave it a way out (the gateway bridge's default route)."""
        h = self._holders.get(container_id)
        return h is not None and bool(h.joins) and not self._way_out(container_id)

    def netns_of(self, container_id: str) -> str | None:
        h = self._holders.get(container_id)
        return h.netns if h is not None else None

    def endpoints(self, container_id: str) -> list[Endpoint]:
        h = self._holders.get(container_id)
        return [_endpoint(h, j) for j in h.joins] if h is not None else []

    def users(self, network_id: str) -> list[tuple[str, str, Endpoint]]:
        return [(h.container_id, h.name, _endpoint(h, j)) for h in self._holders.values()
                for j in h.joins if j.network_id == network_id]

    def networks(self) -> list[Network]:
        found: dict[str, Network] = {}
        for h in self._holders.values():
            for j in h.joins:
                for att in j.task.networks_attachments or []:
                    found.setdefault(att.network.id, att.network)
        return list(found.values())

    def _way_out(self, container_id: str) -> bool:
        rec = self._bridges.container(container_id)
        return rec is not None and any(e.gateway_route for e in rec.endpoints)

    # -- joins ----------------------------------------------------------------------------------

    async def join(self, container_id: str, ref: str, *, aliases: Sequence[str], name: str,
                   dns_aliases: Sequence[str], path: str | None) -> Endpoint:
        """Join one overlay; ``path``: the namespace the local networks made, None to make
        one here. All or nothing."""
        side = self._swarm()
        if side is None:
            raise Unavailable("This node is not part of a swarm")
        async with self._lock:
            h = self._holders.get(container_id)
            made = False
            if h is None:
                made = path is None
                path = path or self._bridges.ns_path(container_id)
                if made and self._bridges.kernel and not netns.exists(path):
                    await asyncio.to_thread(netns.create, path)
                h = Holder(container_id=container_id, netns=path, name=name,
                           aliases=list(dns_aliases), made_ns=made)
            task: Task | None = None
            try:
                task = await side.attachments.attach(container_id, ref)
                att = (task.networks_attachments or [])[0]
                ifnum = 0
                if side.agent is not None and self._bridges.kernel:
                    ifnum = await side.agent.join(
                        container_id, task, h.netns, name=h.name,
                        aliases=[*aliases, *h.aliases], way_out=self._way_out(container_id))
                j = Joined(network_id=att.network.id, network_name=att.network.spec.name,
                           task=task, ifnum=ifnum, aliases=list(aliases))
                h.joins.append(j)
                self._holders[container_id] = h
                self._save()
                if self._bridges.kernel:
                    await self._bridges.serve_dns(container_id, h.netns)
            except BaseException:
                if task is not None:
                    await self._undo(side, container_id, task)
                if made and not h.joins and self._bridges.kernel:
                    await asyncio.to_thread(netns.remove, h.netns)
                raise
        return _endpoint(h, j)

    async def _undo(self, side: SwarmSide, container_id: str, task: Task) -> None:
        """The task given back first (queued at once: a cancelled caller, such as a container's
        supervisor stopped by ``rm -f``, must not leave it behind), then the veth; the kernel
        work is shielded from the caller's cancellation."""
        side.attachments.detach(task.id)
        if side.agent is None:
            return
        try:
            await asyncio.shield(side.agent.leave(container_id, task))
        except (OSError, ShoalError) as exc:
            log.error("taking back %s's attachment %s: %s", container_id[:12], task.id, exc)

    async def leave(self, container_id: str, ref: str) -> bool:
        """Leave one overlay; False if the container is not on it."""
        async with self._lock:
            j = self.joined(container_id, ref)
            if j is None:
                return False
            self._holders[container_id].joins.remove(j)
            self._save()
            side = self._swarm()
            if side is not None:
                await self._undo(side, container_id, j.task)
            return True

    async def release(self, container_id: str) -> None:
        """Every overlay left, the namespace removed if it is ours; never raises."""
        async with self._lock:
            h = self._holders.pop(container_id, None)
            if h is None:
                return
            self._save()
            side = self._swarm()
            if side is not None:
                for j in h.joins:  # every task given back before the first await
                    side.attachments.detach(j.task.id)
                for j in h.joins:
                    await self._undo(side, container_id, j.task)
            if h.made_ns and self._bridges.kernel:
                await self._bridges.stop_dns(container_id)
                try:
                    await asyncio.to_thread(netns.remove, h.netns)
                except OSError as exc:
                    log.error("removing %s: %s", h.netns, exc)

    # -- a restarted daemon, a left swarm, a lost attachment ------------------------------------

    async def readopt(self) -> None:
        """The joins of a previous run again (same task, address and interface), for the
        containers whose namespace is still there; the others' tasks given back."""
        side = self._swarm()
        if side is None:
            return
        async with self._lock:
            for h in list(self._holders.values()):
                alive = not self._bridges.kernel or netns.exists(h.netns)
                for j in list(h.joins):
                    try:
                        if not alive:
                            raise FileNotFoundError(h.netns)
                        if side.agent is not None:
                            await side.agent.join(h.container_id, j.task, h.netns, name=h.name,
                                                  aliases=[*j.aliases, *h.aliases],
                                                  way_out=self._way_out(h.container_id),
                                                  ifnum=j.ifnum)
                        side.attachments.tasks.setdefault(j.task.id, j.task)
                    except (OSError, ShoalError) as exc:
                        log.warning("container %s: attachment %s not re-adopted: %s",
                                    h.container_id[:12], j.task.id, exc)
                        h.joins.remove(j)
                        side.attachments.detach(j.task.id)
                if not alive:
                    del self._holders[h.container_id]
                elif h.joins and self._bridges.kernel:
                    await self._bridges.serve_dns(h.container_id, h.netns)
            self._save()

    def forget_all(self) -> None:
        """``swarm leave``: no join is kept (the NetworkAgent removed the veths; the tasks go
        with the node); the namespaces made here stay for ``release``."""
        for h in self._holders.values():
            h.joins.clear()
        self._save()

    def lost(self, task: Task) -> None:
        """The managers took this attachment task away: its container leaves the overlay."""
        cid = str((task.spec.network_attachment_spec or {}).get("ContainerID", ""))
        h = self._holders.get(cid)
        j = next((x for x in h.joins if x.task.id == task.id), None) if h is not None else None
        if j is None:
            return
        log.warning("container %s: attachment %s removed by the managers; leaving %s", cid[:12],
                    task.id, j.network_name)
        job = asyncio.get_running_loop().create_task(self.leave(cid, j.network_id),
                                                     name=f"attachment-lost-{task.id}")
        self._background.add(job)
        job.add_done_callback(self._background.discard)


def _endpoint(h: Holder, j: Joined) -> Endpoint:
    att = (j.task.networks_attachments or [])[0]
    address = (att.addresses or [""])[0]
    iface = IPv4Interface(address) if address else None
    ip = str(iface.ip) if iface else ""
    names = list(dict.fromkeys(x for x in [h.name, *j.aliases, *h.aliases] if x))
    return Endpoint(network_id=j.network_id, network_name=j.network_name,
                    endpoint_id=j.task.id, ip_address=ip,
                    prefix_len=iface.network.prefixlen if iface else 0,
                    mac_address=links.mac_for(ip) if ip else "", aliases=tuple(j.aliases),
                    dns_names=tuple(names))
