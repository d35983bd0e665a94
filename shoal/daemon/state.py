"""The daemon's own swarm state on disk (``<data-root>/swarm/state.json``): where it listens,
what it advertises and the managers it last knew (a manager's NodeID is "" until a session
names it), the swarm's data path port. The file's JSON keys are as they were when this was a
plain dict, so a node made by an older shoald resumes; a default is not written (it stays that
file). The daemon is its only writer."""

from __future__ import annotations

from pathlib import Path

import msgspec

from shoal.model.dispatch import ManagerAddr

__all__ = ["LocalState"]


class LocalState(msgspec.Struct, kw_only=True, omit_defaults=True):
    listen_ip: str
    listen_port: int
    advertise_ip: str
    managers: list[ManagerAddr] = msgspec.field(default_factory=list)
    # The swarm's VXLAN port as the managers last said it, for the overlays of the running
    # containers a restarted daemon re-attaches before its first session.
    data_path_port: int = 4789

    @property
    def manager_addrs(self) -> list[str]:
        return [m.addr for m in self.managers]

    @classmethod
    def load(cls, path: Path) -> LocalState:
        return msgspec.json.decode(path.read_bytes(), type=cls)

    def encode(self) -> bytes:
        return msgspec.json.format(msgspec.json.encode(self), indent=2)
