"""The containers' sandbox as Docker's, end to end: a one-node swarm running real (runc)
containers on a simulated host, services made with the docker CLI and docker-py as a user would,
each container reporting what its sandbox let it do into `docker service logs`.

Docker's default seccomp profile blocks ``unshare``; ``--cap-add SYS_ADMIN`` (or seccomp
``unconfined`` through Privileges) allows it; ``--cap-drop CHOWN`` makes ``chown`` fail;
Privileges.NoNewPrivileges shows as ``NoNewPrivs: 1``; an unknown capability is refused at create.
Needs root, runc and docker-registry."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator

import docker
import pytest
from docker.types import RestartPolicy

from shoal.dev import hosts
from shoal.dev.images import build_all
from shoal.dev.local import Daemon, Swarm
from shoal.dev.wait import wait_for
from tests.integration.conftest import close_and_check

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="runs containers: needs root"),
    pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed"),
    pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry is not installed"),
]

PREFIX = "shoaltest-sbx"
# What each container tries, then reports; it stays up so the task stays running until removed.
PROBE = ("unshare -m true 2>&1; echo \"unshare-mount=$?\"; "
         "unshare -U true 2>&1; echo \"unshare-user=$?\"; "
         "chown 1 /tmp 2>&1; echo \"chown=$?\"; "
         "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; echo probe-done; exec sleep 600")


class Node:
    def __init__(self, daemon: Daemon, registry: str) -> None:
        self.daemon, self.registry = daemon, registry

    @property
    def image(self) -> str:
        return f"{self.registry}/shoal/web:latest"  # busybox with its applets

    def probe(self, name: str, *flags: str) -> str:
        """Create service ``name`` running PROBE with the docker CLI and return its report."""
        self.daemon.docker("service", "create", "-d", "--name", name, "--no-healthcheck",
                           "--restart-condition", "none", *flags, self.image, "sh", "-c", PROBE)
        return self.report(name)

    def report(self, name: str) -> str:
        def done() -> str | None:
            out = self.daemon.docker("service", "logs", name, check=False).stdout
            return out if "probe-done" in out else None
        return wait_for(f"{name}'s report in its logs", done, timeout=120, interval=0.5)

    def remove(self, name: str) -> None:
        """Remove the service and wait until the node runs no container for it."""
        self.daemon.docker("service", "rm", name, check=False)
        root = self.daemon.root / "data" / "containers"

        def gone() -> bool:
            return not root.exists() or not [p for p in root.iterdir()
                                             if p.is_dir() and p.name != "by-task"]
        wait_for(f"{name}'s container removed", gone, timeout=60, interval=0.2)


def _status(report: str, field: str) -> str:
    """A line of the container's /proc/self/status, as it printed it."""
    found = re.search(rf"{field}:\s+(\S+)", report)
    assert found, f"no {field} in: {report}"
    return found.group(1)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    root = tmp_path_factory.mktemp(PREFIX)
    hosts.remove_all(PREFIX)  # a crashed earlier run
    swarm = Swarm(root, prefix=PREFIX, base_ip="172.31.12", hosts=True)
    try:
        registry = swarm.start_registry()
        for image in build_all():
            registry.push(image)
        manager = swarm.add(executor="runc")
        manager.docker("swarm", "init", "--advertise-addr", manager.ip, "--dispatcher-heartbeat", "1s")
        wait_for("the node ready", lambda: manager.docker("node", "ls", "--format", "{{.Status}}")
                 .stdout.split() == ["Ready"], timeout=60)
        yield Node(manager, swarm.registry_addr)
    finally:
        close_and_check(swarm)
    left = hosts.list_netns(PREFIX)
    assert not left, f"namespaces left: {left}"


def test_default_profile_blocks_unshare_and_default_caps_allow_chown(node: Node) -> None:
    name = f"{PREFIX}-default"
    try:
        report = node.probe(name)
        assert "unshare(0x20000): Operation not permitted" in report  # seccomp, as Docker's
        assert "unshare-mount=1" in report and "unshare-user=1" in report
        assert "chown=0" in report  # CAP_CHOWN is one of Docker's default caps
        assert _status(report, "Seccomp") == "2" and _status(report, "NoNewPrivs") == "0"
        spec = node.daemon.api(f"/services/{name}")["Spec"]["TaskTemplate"]["ContainerSpec"]
        assert "Privileges" not in spec or not spec["Privileges"].get("NoNewPrivileges")
    finally:
        node.remove(name)


def test_cap_add_sys_admin_allows_unshare_and_cap_drop_chown_stops_chown(node: Node) -> None:
    name = f"{PREFIX}-admin"
    try:
        report = node.probe(name, "--cap-add", "sys_admin", "--cap-drop", "CHOWN")
        assert "unshare-mount=0" in report  # the seccomp rule follows the added cap
        assert "chown: /tmp: Operation not permitted" in report and "chown=1" in report
        assert _status(report, "Seccomp") == "2"
        spec = node.daemon.api(f"/services/{name}")["Spec"]["TaskTemplate"]["ContainerSpec"]
        assert spec["CapabilityAdd"] == ["CAP_SYS_ADMIN"]
        assert spec["CapabilityDrop"] == ["CAP_CHOWN"]
    finally:
        node.remove(name)


def test_docker_py_privileges_no_new_privileges_and_seccomp_unconfined(node: Node) -> None:
    name = f"{PREFIX}-py"
    client = docker.DockerClient(base_url=node.daemon.host, timeout=30)
    try:
        privileges = {"NoNewPrivileges": True, "Seccomp": {"Mode": "unconfined"}}
        client.services.create(node.image, ["sh", "-c", PROBE], name=name, privileges=privileges,
                               restart_policy=RestartPolicy(condition="none"),
                               healthcheck={"Test": ["NONE"]})
        report = node.report(name)
        assert _status(report, "NoNewPrivs") == "1"
        assert _status(report, "Seccomp") == "0"  # no filter: unconfined
        assert "unshare-user=0" in report  # a user namespace needs no capability, only no filter
        assert "unshare-mount=1" in report  # a mount namespace still needs CAP_SYS_ADMIN
        stored = client.services.get(name).attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
        assert stored["Privileges"] == privileges
    finally:
        client.close()
        node.remove(name)


def test_what_cannot_be_honoured_is_refused_at_create(node: Node) -> None:
    d = node.daemon
    bad = d.docker("service", "create", "-d", "--name", f"{PREFIX}-bad", "--cap-add", "FOO",
                   node.image, check=False)
    assert bad.returncode != 0 and 'unknown capability: "CAP_FOO"' in bad.stderr
    client = docker.DockerClient(base_url=d.host, timeout=30)
    try:
        with pytest.raises(docker.errors.APIError, match="Privileges.SELinuxContext.Type is not supported"):
            client.services.create(node.image, name=f"{PREFIX}-bad",
                                   privileges={"SELinuxContext": {"Type": "svirt_t"}})
    finally:
        client.close()
    assert d.api("/services") == []
