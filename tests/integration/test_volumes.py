"""`docker volume` and docker-py's client.volumes against a manager and a worker running runc
containers on simulated hosts: create (labels, the local driver's options), ls with filters,
inspect, a service using named volumes (one a tmpfs mounted while it runs, one made by the
service's mount on the worker with its labels), rm refused while a container uses the volume,
then allowed, prune. Needs root, runc and docker-registry."""

from __future__ import annotations

import json
from pathlib import Path

import docker
import pytest
from docker.errors import APIError, NotFound

from shoal.dev.local import Daemon
from shoal.dev.wait import wait_for
from tests.integration.conftest import TwoNodes

pytestmark = pytest.mark.integration

PREFIX = "shoaltest-vol"
SERVICE = "shoaltest-vol-svc"


@pytest.fixture(scope="module")
def cluster(hosts_cluster: TwoNodes) -> TwoNodes:
    return hosts_cluster


def _mounted(path: Path) -> bool:
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return any(line.split()[4] == str(path) for line in f)


def _names(d: Daemon, *args: str) -> list[str]:
    return sorted(d.docker("volume", "ls", "-q", *args).stdout.split())


def test_docker_volume_commands_and_a_service_using_volumes(cluster: TwoNodes) -> None:
    m, w = cluster.manager, cluster.worker
    data, tmp, made = f"{PREFIX}-data", f"{PREFIX}-tmp", f"{PREFIX}-made"
    try:
        assert m.docker("volume", "create", "--label", "app=shoaltest", data).stdout.strip() == data
        m.docker("volume", "create", "-d", "local", "--opt", "type=tmpfs", "--opt", "device=tmpfs",
                 "--opt", "o=size=4m", tmp)
        listed = m.docker("volume", "ls", "--format", "{{.Driver}} {{.Name}}").stdout.split("\n")
        assert f"local {data}" in listed and f"local {tmp}" in listed
        info = json.loads(m.docker("volume", "inspect", tmp).stdout)[0]
        assert info["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=4m"}
        assert info["Scope"] == "local" and info["Mountpoint"].endswith(f"/volumes/{tmp}/_data")
        assert _names(m, "--filter", "label=app=shoaltest") == [data]
        refused = m.docker("volume", "create", "--opt", "size=10m", f"{PREFIX}-sized", check=False)
        assert refused.returncode != 0 and "quota size requested but no quota support" in refused.stderr
        refused = m.docker("volume", "create", "-d", "nosuchplugin", f"{PREFIX}-plugin", check=False)
        assert 'plugin "nosuchplugin" not found' in refused.stderr

        # a global service: its task on the manager uses both volumes; on the worker, the
        # service's mount makes the third with its driver options and labels
        m.docker("service", "create", "--detach", "--name", SERVICE, "--mode", "global",
                 "--no-healthcheck",
                 "--mount", f"type=volume,source={data},target=/data",
                 "--mount", f"type=volume,source={tmp},target=/scratch",
                 "--mount", f"type=volume,source={made},target=/made,volume-label=by=service,"
                            "volume-driver=local,volume-opt=type=tmpfs,volume-opt=device=tmpfs",
                 cluster.image("web"), "sh", "-c",
                 "hostname > /data/by; grep ' /scratch ' /proc/mounts > /data/scratch; exec sleep 600")
        wait_for("the service running on both nodes", lambda: len(cluster.running(SERVICE)) == 2,
                 timeout=90)
        volumes = m.root / "data" / "volumes"
        wait_for("the task's files in the volume", lambda: (volumes / data / "_data" / "scratch").exists())
        assert "tmpfs" in (volumes / data / "_data" / "scratch").read_text()
        assert _mounted(volumes / tmp / "_data")
        made_info = json.loads(w.docker("volume", "inspect", made).stdout)[0]
        assert made_info["Labels"] == {"by": "service"}
        assert made_info["Options"] == {"type": "tmpfs", "device": "tmpfs"}

        # in use: refused with Docker's message; not dangling
        refused = m.docker("volume", "rm", data, check=False)
        assert refused.returncode != 0
        assert f"remove {data}: volume is in use - [" in refused.stderr
        assert data not in _names(m, "--filter", "dangling=true")
        assert _names(m, "--filter", "dangling=false") == sorted([data, tmp, made])

        cluster.remove(SERVICE)
        wait_for("the tmpfs volume unmounted", lambda: not _mounted(volumes / tmp / "_data"))
        assert sorted([data, tmp, made]) == _names(m, "--filter", "dangling=true")
        assert (volumes / data / "_data" / "by").exists()  # a volume outlives its containers
        m.docker("volume", "rm", data, tmp)
        assert _names(m, "--filter", f"name={PREFIX}") == [made]
        # prune: anonymous volumes only, unless -a
        anonymous = m.docker("volume", "create").stdout.strip()
        out = m.docker("volume", "prune", "-f").stdout
        assert anonymous in out and made not in out
        assert made in m.docker("volume", "prune", "-f", "-a").stdout
        assert made in _names(w)  # each node its own volumes
        w.docker("volume", "rm", made)
    finally:
        m.docker("service", "rm", SERVICE, check=False)
        for d in cluster.nodes:
            for name in _names(d, "--filter", f"name={PREFIX}"):
                d.docker("volume", "rm", "-f", name, check=False)


def test_docker_py_volumes(cluster: TwoNodes) -> None:
    client = docker.DockerClient(base_url=cluster.manager.host, timeout=30)
    name = f"{PREFIX}-py"
    try:
        vol = client.volumes.create(name=name, driver="local", labels={"made": "py"})
        assert vol.name == name and vol.attrs["Driver"] == "local" and vol.attrs["Labels"] == {"made": "py"}
        assert client.volumes.get(name).attrs == vol.attrs
        assert [v.name for v in client.volumes.list(filters={"label": "made=py"})] == [name]
        assert [v.name for v in client.volumes.list(filters={"dangling": True, "name": name})] == [name]
        with pytest.raises(APIError) as err:
            client.volumes.create(name="x/y")
        assert err.value.status_code == 400 and "includes invalid characters" in str(err.value)
        vol.remove()
        with pytest.raises(NotFound):
            client.volumes.get(name)
        client.volumes.create(name=name)
        report = client.volumes.prune(filters={"all": True})
        assert name in (report["VolumesDeleted"] or [])
    finally:
        try:
            client.volumes.get(name).remove(force=True)
        except NotFound:
            pass
        client.close()
