"""The fault helper's nft rules and netem arguments (no namespace touched here; the integration
module tests/integration/test_partitions.py applies them in simulated hosts)."""

from __future__ import annotations

import pytest

from shoal.dev.hosts import Host
from shoal.dev.netfaults import TABLE, NetFaults, netem_args, ruleset
from shoal.errors import InvalidArgument


def test_the_ruleset_replaces_the_table_and_drops_input_only() -> None:
    script = ruleset(["172.31.21.3", "172.31.21.2", "172.31.21.3"])
    lines = script.splitlines()
    # made, deleted, made again: one transaction whether or not the table existed
    assert lines[:2] == [f"table inet {TABLE} {{}}", f"delete table inet {TABLE}"]
    assert "hook input priority -300" in script and "ip saddr { 172.31.21.2, 172.31.21.3 } drop" in script
    assert "output" not in script  # a drop on output fails the sender's send at once (EPERM)
    assert "saddr" not in ruleset([])
    assert 'iifname "eth0" numgen random mod 100 < 20 drop' in ruleset([], 20)  # never lo


def test_netem_arguments() -> None:
    assert netem_args(loss=20, delay_ms=100, jitter_ms=50) == [
        "tc", "qdisc", "replace", "dev", "eth0", "root", "netem", "delay", "100ms", "50ms", "loss", "20%"]
    assert netem_args(loss=0, delay_ms=10, jitter_ms=0)[-2:] == ["delay", "10ms"]
    for bad in ({"loss": 101, "delay_ms": 0, "jitter_ms": 0}, {"loss": 0, "delay_ms": 10, "jitter_ms": 20}):
        with pytest.raises(InvalidArgument):
            netem_args(**bad)


def test_bad_cuts_are_refused_before_anything_runs() -> None:
    a = Host("a", 1, "t-a", "/run/netns/t-a", "172.31.21.1")
    faults = NetFaults()
    with pytest.raises(InvalidArgument, match="from itself"):
        faults.block(a, a)
    with pytest.raises(InvalidArgument, match="direction"):
        faults.isolate(a, [], "sideways")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="loss"):
        faults.loss([a], 100)
    assert not faults.active
    faults.heal()  # nothing to undo
