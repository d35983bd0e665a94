"""Service create and update refuse the options Shoal's nodes would not honour, naming the
field (issue 15), and store those they honour as sent; the cluster's TaskDefaults.LogDriver,
which no task would get, is refused too."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.errors import InvalidArgument
from shoal.manager.controlapi.cluster import apply_defaults
from shoal.manager.controlapi.service import create_service, update_service
from shoal.model.codec import decode
from shoal.model.objects import Service
from shoal.model.specs import (
    ClusterSpec,
    NetworkAttachmentConfig,
    Reservations,
    Resources,
    ServiceSpec,
    TaskSpec,
)
from shoal.store.store import Store

HONOURED: dict[str, Any] = {
    "Hostname": "{{.Service.Name}}-{{.Task.Slot}}", "Env": ["NODE={{.Node.Hostname}}"],
    "Groups": ["staff"], "Init": True, "TTY": True, "OpenStdin": True, "OomScoreAdj": 200,
    "Hosts": ["10.0.0.9 db"], "Isolation": "default",
    "DNSConfig": {"Nameservers": ["9.9.9.9"], "Search": ["example.com"], "Options": ["ndots:1"]},
    "Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 200}],
    "Sysctls": {"net.ipv4.ip_forward": "1"},
    "Mounts": [{"Type": "volume", "Source": "d-{{.Task.Slot}}", "Target": "/data"}],
    "Healthcheck": {"Test": ["CMD", "true"], "StartPeriod": 10**10, "StartInterval": 10**9},
}


def _spec(log_driver: dict[str, Any] | None = None, **cs: Any) -> ServiceSpec:
    return ServiceSpec(name="web", task_template=TaskSpec(
        container_spec={"Image": "busybox", **cs}, log_driver=log_driver))


async def test_honoured_options_are_stored_as_sent(store: Store) -> None:
    driver = {"Name": "json-file", "Options": {"max-size": "1m", "max-file": "2"}}
    svc = await create_service(store, _spec(driver, **HONOURED))
    stored = svc.spec.task_template.container_spec or {}
    assert {k: stored[k] for k in HONOURED} == HONOURED
    assert svc.spec.task_template.log_driver == driver


@pytest.mark.parametrize(("cs", "message"), [
    ({"DNSConfig": {"Nameservers": ["resolver"]}}, "invalid DNSConfig.Nameservers entry"),
    ({"Hosts": ["db"]}, "invalid Hosts entry 'db'"),
    ({"OomScoreAdj": 2000}, "range for oom score adj is [-1000, 1000]"),
    ({"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]}, "invalid ulimit type: bogus"),
    ({"Sysctls": {"vm.overcommit_memory": "1"}},
     'sysctl "vm.overcommit_memory" is not in a separate kernel namespace'),
    ({"Isolation": "hyperv"}, "Invalid isolation: 'hyperv'"),
    ({"Mounts": [{"Type": "npipe", "Source": "a", "Target": "b"}]}, "mount type 'npipe'"),
    ({"Mounts": [{"Type": "volume", "Source": "v", "Target": "/v",
                  "VolumeOptions": {"DriverConfig": {"Name": "rexray"}}}]},
     "volume driver 'rexray' is not supported"),
])
async def test_container_options_refused(store: Store, cs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        await create_service(store, _spec(**cs))
    assert message in err.value.message
    assert not store.view().all(Service)


async def test_log_driver_refused_by_name(store: Store) -> None:
    with pytest.raises(InvalidArgument, match="log driver 'gelf' is not supported by Shoal"):
        await create_service(store, _spec({"Name": "gelf", "Options": {"gelf-address": "x"}}))
    with pytest.raises(InvalidArgument, match="log-opt 'labels' of the json-file log driver"):
        await create_service(store, _spec({"Name": "json-file", "Options": {"labels": "a"}}))


async def test_generic_resources_refused(store: Store) -> None:
    spec = _spec()
    spec.task_template.resources = Resources(reservations=Reservations(generic_resources=[
        {"DiscreteResourceSpec": {"Kind": "gpu", "Value": 1}}]))
    with pytest.raises(InvalidArgument, match="no node of the swarm advertises generic resources"):
        await create_service(store, spec)


async def test_network_driver_opts_refused(store: Store) -> None:
    spec = _spec()
    spec.task_template.networks = [NetworkAttachmentConfig(target="front",
                                                           driver_opts={"ifname": "eth5"})]
    with pytest.raises(InvalidArgument, match="network 'front': driver-opt 'ifname' is not"):
        await create_service(store, spec)


async def test_update_is_checked_too(store: Store) -> None:
    svc = await create_service(store, _spec())
    version = store.view().resolve(Service, svc.id).version.index
    with pytest.raises(InvalidArgument, match="log driver 'syslog'"):
        await update_service(store, svc.id, version, _spec({"Name": "syslog"}))
    with pytest.raises(InvalidArgument, match="invalid ulimit type"):
        await update_service(store, svc.id, version, _spec(Ulimits=[{"Name": "x"}]))
    await update_service(store, svc.id, version, _spec({"Name": "none"}, Init=True))


def test_lowercase_keys_from_clients_are_stored_in_one_spelling() -> None:
    spec = decode(b'{"Name": "w", "TaskTemplate": {"ContainerSpec": {"Image": "i", '
                  b'"dnsconfig": {"nameservers": ["1.1.1.1"]}, "ulimits": [{"name": "nofile", '
                  b'"soft": 1, "hard": 2}]}, "logdriver": {"name": "none"}}}', ServiceSpec)
    cs = spec.task_template.container_spec or {}
    assert cs["DNSConfig"] == {"Nameservers": ["1.1.1.1"]}
    assert cs["Ulimits"] == [{"Name": "nofile", "Soft": 1, "Hard": 2}]
    assert spec.task_template.log_driver == {"Name": "none"}


def test_cluster_task_defaults_log_driver_refused() -> None:
    apply_defaults(ClusterSpec(task_defaults={}))
    with pytest.raises(InvalidArgument, match="TaskDefaults.LogDriver is not supported"):
        apply_defaults(ClusterSpec(task_defaults={"LogDriver": {"Name": "json-file"}}))
