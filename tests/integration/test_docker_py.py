"""docker-py 7 drives the same swarm through its Python API; bad input gets Docker's errors."""

from __future__ import annotations

import docker
import pytest
from docker.errors import APIError, NotFound
from docker.types import EndpointSpec, Resources, ServiceMode

from shoal.dev.local import Swarm
from shoal.dev.wait import wait_for


def test_docker_py_lifecycle_and_errors(swarm: Swarm) -> None:
    d = swarm.add()
    client = docker.DockerClient(base_url=d.host, timeout=30)
    try:
        assert client.swarm.init(advertise_addr=d.ip, listen_addr=f"{d.ip}:2377")
        client.swarm.reload()
        assert client.swarm.attrs["JoinTokens"]["Worker"].startswith("SWMTKN-1-")
        managers = client.nodes.list(filters={"role": "manager"})
        assert len(managers) == 1 and managers[0].attrs["Spec"]["Role"] == "manager"

        net = client.networks.create("pynet", driver="overlay", attachable=True)
        assert net.attrs["Scope"] == "swarm" and net.attrs["Attachable"] is True
        svc = client.services.create("busybox:latest", name="pyweb", networks=["pynet"],
                                     mode=ServiceMode("replicated", replicas=2),
                                     endpoint_spec=EndpointSpec(ports={8080: 80}))
        svc.reload()
        assert svc.attrs["Spec"]["TaskTemplate"]["Networks"][0]["Target"] == net.id  # name -> ID
        assert svc.attrs["Endpoint"]["Ports"][0]["PublishedPort"] == 8080
        wait_for("2 running", lambda: sum(t["Status"]["State"] == "running" for t in svc.tasks()) == 2)
        svc.scale(4)
        wait_for("4 running", lambda: sum(t["Status"]["State"] == "running" for t in svc.tasks(filters={"desired-state": "running"})) == 4)
        listed = client.services.list(status=True)
        assert listed[0].attrs["ServiceStatus"]["DesiredTasks"] == 4

        api = client.api
        # negative replicas, bad names, stale versions and unknown filters are refused, nothing written
        spec = {"Name": "neg", "TaskTemplate": {"ContainerSpec": {"Image": "x"}}, "Mode": {"replicated": {"Replicas": -1}}}
        with pytest.raises(APIError) as err:
            api._result(api._post_json(api._url("/services/create"), data=spec), True)
        assert err.value.status_code == 400
        with pytest.raises(APIError) as err:
            api.create_service({"ContainerSpec": {"Image": "x"}}, name="bad name!")
        assert err.value.status_code == 400
        stale = svc.attrs["Version"]["Index"]
        svc.reload()
        api.update_service(svc.id, svc.attrs["Version"]["Index"], svc.attrs["Spec"]["TaskTemplate"], name="pyweb",
                           labels={"a": "b"}, mode=ServiceMode("replicated", replicas=4))
        with pytest.raises(APIError) as err:
            api.update_service(svc.id, stale, svc.attrs["Spec"]["TaskTemplate"], name="pyweb",
                               mode=ServiceMode("replicated", replicas=1))
        assert err.value.status_code == 500 and "update out of sequence" in str(err.value)
        with pytest.raises(APIError) as err:
            api.services(filters={"nosuch": "x"})
        assert err.value.status_code == 400 and "invalid filter 'nosuch'" in str(err.value)
        with pytest.raises(NotFound):
            client.nodes.get("nosuchnode")
        assert {s.name for s in client.services.list()} == {"pyweb"}

        svc.remove()
        wait_for("tasks reaped", lambda: not api.tasks(filters={"service": "pyweb"}) or None)
        net.remove()
        assert client.swarm.leave(force=True)
        assert client.info()["Swarm"]["LocalNodeState"] == "inactive"
    finally:
        client.close()


def test_docker_py_updates_right_after_init(swarm: Swarm) -> None:
    """Init answers with the node and the cluster settled: updates with the versions read at once
    are in sequence; a spread over any descriptor is accepted; zero limits are left out."""
    d = swarm.add()
    client = docker.DockerClient(base_url=d.host, timeout=30)
    try:
        node_id = client.swarm.init(advertise_addr=d.ip, listen_addr=f"{d.ip}:2377")  # reloads too
        node = client.nodes.get(node_id)
        # as the leader leaves it: registered by its agent, its ingress address given (without
        # the wait these came ~0.1 s after init's answer, each bumping the version)
        assert node.attrs["Status"]["State"] == "ready" and node.attrs.get("Attachments")
        assert node.update({"Availability": "active", "Role": "manager", "Labels": {"zone": "a"}})
        client.swarm.update(snapshot_interval=5000)  # with the version init's reload read
        client.swarm.reload()
        assert client.swarm.attrs["Spec"]["Raft"]["SnapshotInterval"] == 5000
        assert client.nodes.get(node_id).attrs["Spec"]["Labels"] == {"zone": "a"}

        svc = client.services.create("busybox:latest", name="pyspread",
                                     preferences=[("spread", "com.example.label")],
                                     resources=Resources(mem_limit=64 << 20))
        tt = svc.attrs["Spec"]["TaskTemplate"]
        assert tt["Placement"]["Preferences"] == [{"Spread": {"SpreadDescriptor": "com.example.label"}}]
        assert tt["Resources"]["Limits"] == {"MemoryBytes": 64 << 20}
        wait_for("the task running", lambda: [t for t in svc.tasks() if t["Status"]["State"] == "running"])
        svc.remove()
        assert client.swarm.leave(force=True)
    finally:
        client.close()
