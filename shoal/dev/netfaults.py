"""Network faults between simulated hosts (shoal.dev.hosts): partitions and lossy, slow links.

Everything happens inside the hosts' own namespaces, never in the machine's:

- **Partitions** are nftables rules in a table ``inet shoal_fault`` of the *receiving* host:
  packets from a blocked source are dropped on input, silently, as a cut cable would lose them.
  Never on output: a locally generated packet dropped there fails the sender's ``send`` at once
  with EPERM, which no real partition does (peers must time out, not be told). A one-way cut is
  a drop on one side only; over TCP that still stalls both directions of a connection (its ACKs
  are lost), so "A can send but not receive" shows as A's connections hanging, not failing.
- **Loss and delay** are a ``netem`` qdisc on a host's ``eth0`` (egress), so a packet between two
  hosts with netem is delayed and dropped once, by its sender. A kernel without sch_netem (some
  VM kernels) raises `NetemMissing`; ``loss`` then drops a share of eth0's input with nft's
  random numbers (loss, but no delay).

`NetFaults` remembers what it did and `heal` undoes all of it (also on ``__exit__``), host by
host, whether or not a step failed half-way. Rules are rewritten whole for a host at each change
(one nft transaction: delete the table, make it again), so adding a cut never leaves a half
table behind.

Used by tests/integration/test_partitions.py and the benches.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Sequence
from typing import Literal, Self

from shoal.dev.hosts import Host, nsenter
from shoal.errors import InvalidArgument, Unavailable

__all__ = ["TABLE", "Direction", "NetFaults", "NetemMissing", "netem_args", "ruleset"]

TABLE = "shoal_fault"
Direction = Literal["both", "in", "out"]
_PRIORITY = -300  # raw: before conntrack and before shoald's own tables in the host


def _run(host: Host, argv: list[str], stdin: str | None = None, *, check: bool = True) -> str:
    tool = argv[0]
    if shutil.which(tool) is None:
        raise Unavailable(f"{tool} is not installed: network faults need nft and tc")
    done = subprocess.run(nsenter(host.netns_path) + argv, input=stdin, capture_output=True,
                          text=True, timeout=20, check=False)
    if check and done.returncode != 0:
        raise Unavailable(f"{' '.join(argv[:4])} in {host.netns}: {done.stderr.strip()}")
    return done.stdout


def ruleset(blocked: Iterable[str], loss: int = 0) -> str:
    """The nft script that makes ``inet shoal_fault`` anew: input from ``blocked`` dropped, and
    ``loss`` percent of the rest that comes in on eth0 (never lo: a host's own traffic)."""
    ips = sorted(set(blocked))
    body = f"    ip saddr {{ {', '.join(ips)} }} drop\n" if ips else ""
    if loss:
        body += f'    iifname "eth0" numgen random mod 100 < {loss} drop\n'
    return (f"table inet {TABLE} {{}}\n"
            f"delete table inet {TABLE}\n"
            f"table inet {TABLE} {{\n"
            "  chain input {\n"
            f"    type filter hook input priority {_PRIORITY}; policy accept;\n"
            f"{body}"
            "  }\n"
            "}\n")


def netem_args(*, loss: float, delay_ms: float, jitter_ms: float) -> list[str]:
    """``tc qdisc replace`` arguments for eth0's netem: ``loss`` in percent, delays in ms."""
    if not 0 <= loss <= 100 or delay_ms < 0 or jitter_ms < 0 or jitter_ms > delay_ms:
        raise InvalidArgument(f"netem loss {loss}%, delay {delay_ms} ms, jitter {jitter_ms} ms: "
                              "expected loss 0-100 and 0 <= jitter <= delay")
    args = ["tc", "qdisc", "replace", "dev", "eth0", "root", "netem"]
    if delay_ms:
        args += ["delay", f"{delay_ms:g}ms"] + ([f"{jitter_ms:g}ms"] if jitter_ms else [])
    if loss:
        args += ["loss", f"{loss:g}%"]
    return args


class NetemMissing(Unavailable):
    """This kernel has no netem qdisc: no delay can be injected (loss can: `NetFaults.loss`)."""

    def __init__(self) -> None:
        super().__init__("tc netem: this kernel has no netem qdisc (sch_netem); "
                         "NetFaults.loss drops packets with nftables instead, without delay")


class NetFaults:
    """Cuts and netem between hosts of one fabric; `heal` (or leaving the ``with``) undoes them."""

    def __init__(self) -> None:
        self._blocked: dict[str, set[str]] = {}  # host netns -> source IPs dropped on its input
        self._loss: dict[str, int] = {}  # host netns -> percent of eth0 input dropped
        self._hosts: dict[str, Host] = {}
        self._netem: dict[str, Host] = {}

    def block(self, src: Host, dst: Host) -> None:
        """Packets from ``src`` to ``dst`` are lost (dropped on ``dst``'s input)."""
        self._block_all([(src, dst)])

    def _block_all(self, pairs: Iterable[tuple[Host, Host]]) -> None:
        """Each (src, dst) cut, with one nft transaction per changed host, so that a partition
        of many hosts takes effect within a few tens of milliseconds, not one rule at a time."""
        changed: dict[str, Host] = {}
        for src, dst in pairs:
            if src.netns == dst.netns:
                raise InvalidArgument(f"cannot cut {src.name} from itself")
            self._hosts[dst.netns] = dst
            blocked = self._blocked.setdefault(dst.netns, set())
            if src.ip not in blocked:
                blocked.add(src.ip)
                changed[dst.netns] = dst
        for host in changed.values():
            self._apply(host)

    def _apply(self, host: Host) -> None:
        _run(host, ["nft", "-f", "-"], ruleset(self._blocked.get(host.netns, ()),
                                               self._loss.get(host.netns, 0)))

    def isolate(self, host: Host, others: Iterable[Host], direction: Direction = "both") -> None:
        """Cut ``host`` from ``others``: ``both`` ways, ``in`` (it hears nothing from them but
        they hear it) or ``out`` (they hear nothing from it)."""
        if direction not in ("both", "in", "out"):
            raise InvalidArgument(f"direction {direction!r}: expected both, in or out")
        pairs = []
        for other in others:
            if other.netns == host.netns:
                continue
            if direction in ("both", "in"):
                pairs.append((other, host))
            if direction in ("both", "out"):
                pairs.append((host, other))
        self._block_all(pairs)

    def partition(self, *groups: Sequence[Host]) -> None:
        """Hosts talk only within their group: every packet between two groups is lost."""
        self._block_all((src, dst) for i, group in enumerate(groups) for j, other in enumerate(groups)
                        if i != j for dst in group for src in other)

    def netem(self, hosts: Iterable[Host], *, loss: float = 0.0, delay_ms: float = 0.0,
              jitter_ms: float = 0.0) -> None:
        """Every packet a host sends is delayed ``delay_ms`` +- ``jitter_ms`` and lost with
        probability ``loss`` percent (tc netem on its eth0). `NetemMissing` when the kernel has
        no netem qdisc (sch_netem), before any host was changed."""
        args = netem_args(loss=loss, delay_ms=delay_ms, jitter_ms=jitter_ms)
        for host in hosts:
            self._netem[host.netns] = host
            try:
                _run(host, args)
            except Unavailable as exc:
                del self._netem[host.netns]
                if "qdisc kind is unknown" in exc.message:
                    raise NetemMissing() from exc
                raise

    def loss(self, hosts: Iterable[Host], percent: int) -> None:
        """``percent`` of the packets each host receives on eth0 are dropped (nft's random
        numbers; no netem needed). Loss only: nftables cannot delay a packet."""
        if not 0 < percent < 100:
            raise InvalidArgument(f"loss {percent}%: expected 1 to 99")
        for host in hosts:
            self._hosts[host.netns] = host
            self._loss[host.netns] = percent
            self._blocked.setdefault(host.netns, set())
            self._apply(host)

    @property
    def active(self) -> bool:
        return bool(self._blocked or self._netem)

    def rules(self, host: Host) -> str:
        """The host's fault table as nft lists it ('' when it has none)."""
        return _run(host, ["nft", "list", "table", "inet", TABLE], check=False)

    def heal(self) -> None:
        """Remove every rule and qdisc this object added; the first error is raised after all
        hosts were tried."""
        errors: list[Exception] = []
        for netns in list(self._blocked):
            try:
                _run(self._hosts[netns], ["nft", "-f", "-"],
                     f"table inet {TABLE} {{}}\ndelete table inet {TABLE}\n")
                del self._blocked[netns]
                self._loss.pop(netns, None)
            except (Unavailable, OSError, subprocess.SubprocessError) as exc:
                errors.append(exc)
        for netns, host in list(self._netem.items()):
            try:
                _run(host, ["tc", "qdisc", "del", "dev", "eth0", "root"])
                del self._netem[netns]
            except (Unavailable, OSError, subprocess.SubprocessError) as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.heal()
