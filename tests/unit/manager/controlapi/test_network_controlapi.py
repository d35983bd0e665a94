"""Network create refuses every overlay driver option by name, with the reason: none is
honoured yet, and `--opt encrypted` accepted and ignored would promise a protection the data
path does not give."""

from __future__ import annotations

import pytest

from shoal.errors import InvalidArgument
from shoal.manager.controlapi.network import create_network
from shoal.model.objects import Network
from shoal.model.specs import NetworkSpec
from shoal.store.store import Store


@pytest.mark.parametrize(("option", "reason"), [
    ("encrypted", "does not encrypt the VXLAN data path"),
    ("com.docker.network.driver.mtu", "MTU is fixed"),
    ("com.docker.network.driver.overlay.vxlanid_list", "allocated by the managers"),
    ("foo", "unknown option for the overlay driver"),
])
async def test_overlay_options_are_refused_by_name(store: Store, option: str, reason: str) -> None:
    with pytest.raises(InvalidArgument, match=f"network option '{option}' is not supported: .*{reason}"):
        await create_network(store, NetworkSpec(name="shoaltest-opt", options={option: ""}))
    assert not store.view().all(Network)  # nothing written


async def test_a_network_without_options_is_created(store: Store) -> None:
    net = await create_network(store, NetworkSpec(name="shoaltest-plain"))
    assert net.spec.options == {} and store.view().by_name(Network, "shoaltest-plain")
