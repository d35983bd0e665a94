"""``--dispatcher-heartbeat``: swarmkit's refusal of a negative period (its words), and Shoal's
range (issue 16: a period of 28 days, then 5 s, left a node Down for good)."""

from __future__ import annotations

import pytest

from shoal.errors import InvalidArgument
from shoal.manager.controlapi.cluster import apply_defaults
from shoal.model.specs import SECOND, ClusterSpec


def _spec(seconds: float) -> ClusterSpec:
    spec = ClusterSpec()
    spec.dispatcher.heartbeat_period = int(seconds * SECOND)
    return spec


@pytest.mark.parametrize(("seconds", "message"), [
    (-1, ("rpc error: code = InvalidArgument desc = heartbeat time period cannot be a negative "
          "duration")),
    (0.5, "heartbeat time period must be between 1s and 1h0m0s"),
    (28 * 24 * 3600, "heartbeat time period must be between 1s and 1h0m0s"),
    (2**63 / SECOND, "heartbeat time period must be between 1s and 1h0m0s"),
])
def test_a_period_out_of_range_is_refused(seconds: float, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        apply_defaults(_spec(seconds))


@pytest.mark.parametrize("seconds", [0, 1, 5, 3600])
def test_periods_in_range_are_kept(seconds: int) -> None:
    assert apply_defaults(_spec(seconds)).dispatcher.heartbeat_period == (seconds or 5) * SECOND
