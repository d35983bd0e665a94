"""The daemon's own swarm state on disk (``<data-root>/swarm/state.json``): where it listens,
what it advertises and the managers it last knew (a manager's NodeID is "" until a session
names it), the swarm's data path port. The file's JSON keys are as they were when this was a
plain dict, so a node made by an older shoald resumes; a default is not written (it stays that
file). The daemon is its only writer."""

from __future__ import annotations

import socket
from pathlib import Path

import msgspec

from shoal.errors import InvalidArgument
from shoal.model.dispatch import ManagerAddr

__all__ = ["LocalState", "addresses"]


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


def _split_addr(addr: str, default_port: int = 2377) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep:
        return addr, default_port
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        raise InvalidArgument(f"invalid address {addr!r}") from None


def _default_ip() -> str:
    """The address the kernel would use for outbound traffic (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            return str(s.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def addresses(listen_addr: str, advertise_addr: str) -> LocalState:
    """A new member's addresses from ``swarm init|join``'s ListenAddr and AdvertiseAddr."""
    listen_ip, port = _split_addr(listen_addr or "0.0.0.0:2377")
    adv_ip, _ = _split_addr(advertise_addr, port) if advertise_addr else (listen_ip, port)
    if adv_ip in ("", "0.0.0.0"):
        adv_ip = _default_ip()
    if listen_ip in ("", "0.0.0.0"):
        listen_ip = adv_ip  # several daemons share one machine: bind the advertised address
    return LocalState(listen_ip=listen_ip, listen_port=port, advertise_ip=adv_ip)
