"""swarm init's first objects come from one place, and a request Docker refuses makes nothing."""

from __future__ import annotations

import pytest
from cryptography import x509

from shoal.errors import InvalidArgument
from shoal.manager.bootstrap import new_swarm
from shoal.model.requests import InitRequest
from shoal.model.states import NodeRole
from shoal.store.membackend import MemoryBackend
from shoal.store.store import Store


async def test_the_first_transaction_holds_the_cluster_the_node_and_ingress() -> None:
    swarm = await new_swarm(InitRequest(), hostname="h1", advertise_ip="10.9.0.2", manager_addr="10.9.0.2:2377")
    cert = x509.load_pem_x509_certificate(swarm.identity.cert_pem.encode())
    assert swarm.identity.node_id == swarm.node_id and swarm.identity.role == NodeRole.MANAGER
    assert cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value == swarm.cluster_id
    assert swarm.cluster.root_ca is not None and swarm.cluster.root_ca.ca_key
    assert swarm.cluster.default_addr_pool == ["10.0.0.0/8"] and swarm.cluster.data_path_port == 4789
    assert swarm.node.manager_status is not None and swarm.node.manager_status.addr == "10.9.0.2:2377"
    assert swarm.ingress.spec.ingress and swarm.ingress.spec.name == "ingress"
    store = Store(MemoryBackend())
    await store.start()
    try:
        await store.update(swarm.write)
        view = store.view()
        assert view.get(type(swarm.cluster), swarm.cluster_id) is not None
        assert view.get(type(swarm.node), swarm.node_id) is not None
        assert view.get(type(swarm.ingress), swarm.ingress.id) is not None
    finally:
        await store.close()


@pytest.mark.parametrize("req", [InitRequest(availability="sleepy"),
                                 InitRequest(default_addr_pool=["10.0.0.0/30"], subnet_size=24)])
async def test_a_refused_request_raises_before_anything_is_made(req: InitRequest) -> None:
    with pytest.raises(InvalidArgument):
        await new_swarm(req, hostname="h1", advertise_ip="10.9.0.2", manager_addr="10.9.0.2:2377")
