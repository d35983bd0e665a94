"""swarm update and the CA configuration: external CAs checked and stored as Docker shows them;
a new root needs its key (a rotation: test_ca_rotation.py); a root whose key an external CA holds
keeps one for it."""

from __future__ import annotations

import pytest

from shoal.api.render import swarm_json
from shoal.errors import InvalidArgument, ShoalError, Unimplemented
from shoal.manager.bootstrap import NewSwarm, new_swarm
from shoal.manager.ca import RootCA
from shoal.manager.controlapi.cluster import update_cluster
from shoal.manager.deks import ClusterKeys
from shoal.model.objects import Cluster
from shoal.model.requests import InitRequest
from shoal.model.specs import ExternalCA
from shoal.store.store import Store, copy

URL = "https://ca.example:8888/api/v1/cfssl/sign"


SWARMS: dict[str, NewSwarm] = {}  # by cluster ID: its store DEK opens its keys


async def _swarm(store: Store, *, keyless: bool = False) -> Cluster:
    swarm = await new_swarm(InitRequest(), hostname="h1", advertise_ip="10.9.0.2",
                            manager_addr="10.9.0.2:2377")
    if keyless:  # as a swarm init with --ca-cert and --external-ca leaves it
        assert swarm.cluster.root_ca is not None
        swarm.cluster.root_ca.ca_key = ""
        swarm.cluster.spec.ca_config.external_cas = [ExternalCA(protocol="cfssl", url=URL)]
    await store.update(swarm.write)
    SWARMS[swarm.cluster_id] = swarm
    cluster = store.view().cluster()
    assert cluster is not None
    return cluster


async def _update(store: Store, cluster: Cluster, *cas: ExternalCA, cert: str = "", key: str = "") -> Cluster:
    spec = copy(cluster).spec
    spec.ca_config.external_cas = list(cas)
    spec.ca_config.signing_ca_cert, spec.ca_config.signing_ca_key = cert, key
    await update_cluster(store, cluster.version.index, spec, rotate_worker=False, rotate_manager=False,
                         keys=ClusterKeys(SWARMS[cluster.id].dek))
    updated = store.view().cluster()
    assert updated is not None
    return updated


async def test_external_cas_are_stored_and_shown(store: Store) -> None:
    cluster = await _swarm(store)
    other = RootCA.create()
    updated = await _update(store, cluster, ExternalCA(protocol="CFSSL", url=URL),
                            ExternalCA(protocol="cfssl", url=URL + "2", ca_cert=other.cert_pem))
    shown = swarm_json(updated)["Spec"]["CAConfig"]
    assert shown["ExternalCAs"] == [
        {"Protocol": "cfssl", "URL": URL, "CACert": ""},
        {"Protocol": "cfssl", "URL": URL + "2", "CACert": other.cert_pem},
    ]
    assert shown["SigningCACert"] == "" and shown["SigningCAKey"] == ""


@pytest.mark.parametrize(("ca", "error", "message"), [
    (ExternalCA(protocol="acme", url=URL), InvalidArgument, 'invalid protocol: "acme"'),
    (ExternalCA(protocol="cfssl", url="http://ca.example/sign"), InvalidArgument,
     'invalid external CA URL "http://ca.example/sign": invalid HTTP scheme'),
    (ExternalCA(protocol="cfssl", url="https:///sign"), InvalidArgument, "no host"),
    (ExternalCA(protocol="cfssl", url=URL, options={"profile": "node"}), InvalidArgument,
     "external CA options are not supported .*: profile"),
    (ExternalCA(protocol="cfssl", url=URL, ca_cert="not PEM"), InvalidArgument,
     "invalid CA cert for external CA"),
])
async def test_bad_external_cas_are_refused(store: Store, ca: ExternalCA, error: type[ShoalError],
                                            message: str) -> None:
    cluster = await _swarm(store)
    with pytest.raises(error, match=message):
        await _update(store, cluster, ca)


async def test_a_new_root_needs_its_key(store: Store) -> None:
    cluster = await _swarm(store)
    assert cluster.root_ca is not None
    same = await _update(store, cluster, cert=cluster.root_ca.ca_cert)  # what Docker could resend
    assert same.spec.ca_config.signing_ca_cert == "" and not same.root_rotation_in_progress
    with pytest.raises(InvalidArgument, match="corresponding to the desired CA certificate"):
        await _update(store, same, cert=RootCA.create().cert_pem)
    other = RootCA.create()
    with pytest.raises(Unimplemented, match="only an external CA holds"):
        await _update(store, same, ExternalCA(protocol="cfssl", url=URL, ca_cert=other.cert_pem),
                      cert=other.cert_pem)
    with pytest.raises(InvalidArgument, match="the signing CA cert must also be provided"):
        await _update(store, same, key="a key")


async def test_a_keyless_root_keeps_an_external_ca(store: Store) -> None:
    cluster = await _swarm(store, keyless=True)
    with pytest.raises(InvalidArgument, match="corresponding to the current CA certificate"):
        await _update(store, cluster)
    with pytest.raises(InvalidArgument, match="corresponding to the current CA certificate"):
        await _update(store, cluster, ExternalCA(protocol="cfssl", url=URL,
                                                 ca_cert=RootCA.create().cert_pem))
    moved = await _update(store, cluster, ExternalCA(protocol="cfssl", url=URL + "-new"))
    assert [ca.url for ca in moved.spec.ca_config.external_cas or []] == [URL + "-new"]
