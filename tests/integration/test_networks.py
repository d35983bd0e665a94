"""Overlay networks end to end, on three simulated hosts (network namespaces on a virtual switch,
each running its own shoald with the runc executor), driven through the docker CLI: service VIPs
and DNS from inside a client container, the routing mesh from another host, dnsrr, scoping by
network, and how fast a dead task's or host's backends leave every node's rules.

Commands "inside a container" run with nsenter into the container's network and mount
namespaces (what `docker exec` would do), with the image's own busybox and resolv.conf."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoal.dev import hosts
from shoal.dev.images import build_all
from shoal.dev.local import Daemon, Swarm
from shoal.dev.wait import wait_for
from tests.integration.conftest import close_and_check

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces and runc: needs root"),
    pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed"),
    pytest.mark.skipif(shutil.which("nft") is None, reason="nftables is not installed"),
    pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry is not installed"),
]

PREFIX = "shoaltest-net"
HELLO = re.compile(r"Hello from ([0-9a-f]{12})")


class Cluster:
    def __init__(self, swarm: Swarm, registry: str) -> None:
        self.swarm, self.registry = swarm, registry
        self.nodes = list(swarm.daemons)
        self.manager = self.nodes[0]

    @property
    def web(self) -> str:
        return f"{self.registry}/shoal/web:latest"

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.manager.docker(*args, check=check, timeout=90)

    def tasks(self, service: str) -> list[dict[str, Any]]:
        return self.manager.api(f'/tasks?filters={{"service":["{service}"]}}')  # type: ignore[no-any-return]

    def running(self, service: str) -> list[dict[str, Any]]:
        return [t for t in self.tasks(service)
                if t["Status"]["State"] == "running" and t["DesiredState"] == "running"]

    def wait_running(self, service: str, n: int, timeout: float = 90) -> list[dict[str, Any]]:
        return wait_for(f"{n} running tasks of {service}",
                        lambda: (r if len(r := self.running(service)) == n else None),
                        timeout=timeout, interval=0.3)

    def node_of(self, task: dict[str, Any]) -> Daemon:
        hostname = {n["ID"]: n["Description"]["Hostname"] for n in self.manager.api("/nodes")}
        return next(d for d in self.nodes if d.hostname == hostname[task["NodeID"]])

    def remove(self, *services: str) -> None:
        """Remove the services; wait until their tasks and their containers' network
        namespaces are gone."""
        cids = {str((t["Status"].get("ContainerStatus") or {}).get("ContainerID") or "")[:16]
                for s in services for t in self.tasks(s)} - {""}
        for s in services:
            self.docker("service", "rm", s, check=False)
        wait_for("tasks removed", lambda: not any(self.tasks(s) for s in services),
                 timeout=90, interval=0.3)
        wait_for("their network namespaces removed",
                 lambda: not cids & {p.name for p in self.container_netns()}, timeout=60,
                 interval=0.3)

    def container_netns(self) -> list[Path]:
        out: list[Path] = []
        for d in self.nodes:
            ns_dir = d.root / "exec" / "netns"
            out += list(ns_dir.iterdir()) if ns_dir.is_dir() else []
        return out


def in_container(task: dict[str, Any], *argv: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    pid = task["Status"]["ContainerStatus"]["PID"]
    return subprocess.run(["nsenter", "-t", str(pid), "-n", "-m", "--", *argv], capture_output=True,
                          text=True, timeout=timeout, check=False)


def nslookup(task: dict[str, Any], name: str) -> tuple[int, list[str]]:
    """busybox nslookup through the container's resolv.conf (the embedded DNS): its exit code
    and the addresses it printed after the server's own lines."""
    res = in_container(task, "/bin/busybox", "nslookup", name)
    text = res.stdout.split("Name:", 1)[1] if "Name:" in res.stdout else ""
    return res.returncode, re.findall(r"Address(?: \d+)?:\s*(\d+\.\d+\.\d+\.\d+)", text)


def _sorted_answer(answer: tuple[int, list[str]]) -> tuple[int, list[str]]:
    return answer[0], sorted(answer[1])


def fetch(argv_prefix: list[str], url: str) -> str | None:
    """The container ID (12) that answered ``url``, fetched with busybox wget."""
    res = subprocess.run([*argv_prefix, "/bin/busybox", "wget", "-q", "-O", "-", url],
                         capture_output=True, text=True, timeout=15, check=False)
    m = HELLO.search(res.stdout)
    return m.group(1) if m else None


def cid(task: dict[str, Any]) -> str:
    return str(task["Status"]["ContainerStatus"]["ContainerID"])[:12]


def vip(service: dict[str, Any], network_id: str) -> str:
    return next(str(v["Addr"]).split("/")[0] for v in service["Endpoint"]["VirtualIPs"]
                if v["NetworkID"] == network_id)


def nft_rules(netns: str) -> str:
    """Every nft rule of a (container's) network namespace."""
    return subprocess.run([*hosts.nsenter(netns), "nft", "list", "ruleset"], capture_output=True,
                          text=True, timeout=15, check=False).stdout


@contextlib.contextmanager
def _rotation_every(seconds: int) -> Iterator[None]:
    """Daemons started inside rotate the gossip keys every ``seconds`` (their environment)."""
    key = "SHOAL_KEY_ROTATION_INTERVAL"
    saved = os.environ.get(key)
    os.environ[key] = str(seconds)
    try:
        yield
    finally:
        if saved is None:
            del os.environ[key]
        else:
            os.environ[key] = saved


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("shoaltest-net")
    hosts.remove_all(PREFIX)  # a crashed earlier run
    swarm = Swarm(root, prefix=PREFIX, hosts=True)
    try:
        registry = swarm.start_registry()
        for image in build_all():
            registry.push(image)
        with _rotation_every(4):  # 12 h by default: here the tests run across rotations
            manager = swarm.add(executor="runc")
            manager.docker("swarm", "init", "--advertise-addr", manager.ip, "--dispatcher-heartbeat",
                           "1s")
            token = manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
            for _ in range(2):
                w = swarm.add(executor="runc")
                w.docker("swarm", "join", "--token", token, "--advertise-addr", w.ip,
                         f"{manager.ip}:2377")
        wait_for("3 nodes ready", lambda: manager.docker("node", "ls", "--format", "{{.Status}}")
                 .stdout.split().count("Ready") == 3, timeout=60)
        c = Cluster(swarm, swarm.registry_addr)
        c.docker("network", "create", "-d", "overlay", "front")
        c.docker("network", "create", "-d", "overlay", "back")
        yield c
    finally:
        close_and_check(swarm)
    left = hosts.list_netns(PREFIX)
    assert not left, f"namespaces left: {left}"


@pytest.fixture(scope="module")
def frontend(cluster: Cluster) -> Iterator[dict[str, Any]]:
    """frontend: 3 replicas of shoal/web, one per host (max one per node), on `front`, port
    8080 published; client: one task on node1 on `front`."""
    c = cluster
    c.docker("service", "create", "--detach", "--name", "frontend", "--replicas", "3",
             "--replicas-max-per-node", "1", "--network", "front", "--publish", "8080:80", c.web)
    c.docker("service", "create", "--detach", "--name", "client", "--network", "front",
             "--constraint", f"node.hostname=={c.nodes[0].hostname}", c.web)
    c.wait_running("frontend", 3)
    client = c.wait_running("client", 1)[0]
    yield client
    c.remove("frontend", "client")


def _inspect(c: Cluster, kind: str, name: str) -> dict[str, Any]:
    return json.loads(c.docker(kind, "inspect", name).stdout)[0]  # type: ignore[no-any-return]


def _answers(argv: list[str], url: str, want: set[str], tries: int = 60) -> Counter[str]:
    """Fetch ``url`` until every container in ``want`` answered (or ``tries`` fetches)."""
    seen: Counter[str] = Counter()
    for _ in range(tries):
        who = fetch(argv, url)
        if who:
            seen[who] += 1
        if want <= set(seen):
            break
    return seen


def test_vip_and_dns_reach_all_three_replicas_on_three_hosts(cluster: Cluster,
                                                              frontend: dict[str, Any]) -> None:
    c = cluster
    net = _inspect(c, "network", "front")
    assert net["IPAM"]["Config"][0]["Subnet"].startswith("10.")
    svc = _inspect(c, "service", "frontend")
    the_vip = vip(svc, net["Id"])
    code, addrs = nslookup(frontend, "frontend")
    assert code == 0 and addrs == [the_vip]

    tasks = c.running("frontend")
    assert len({t["NodeID"] for t in tasks}) == 3
    task_ips = sorted(a["Addresses"][0].split("/")[0] for t in tasks
                      for a in t["NetworksAttachments"] if a["Network"]["ID"] == net["Id"])
    # Running is what the API says; a node's DNS learns a task's address by gossip a moment later.
    wait_for("every task's address in tasks.frontend, seen from the client",
             lambda: _sorted_answer(nslookup(frontend, "tasks.frontend")) == (0, task_ips),
             timeout=10)

    # a frontend task is on ingress too: ingress carries the mesh only, no names
    assert nslookup(tasks[0], "frontend") == (0, [the_vip])
    wait_for("every task's address in tasks.frontend, seen from a frontend task",
             lambda: sorted(nslookup(tasks[0], "tasks.frontend")[1]) == task_ips, timeout=10)

    pid = str(frontend["Status"]["ContainerStatus"]["PID"])
    seen = _answers(["nsenter", "-t", pid, "-n", "-m", "--"], "http://frontend/", {cid(t) for t in tasks})
    assert set(seen) == {cid(t) for t in tasks}, seen


def test_the_routing_mesh_answers_on_a_host_with_or_without_a_task(cluster: Cluster,
                                                                  frontend: dict[str, Any]) -> None:
    c = cluster
    tasks = c.running("frontend")
    by_node = {c.node_of(t).hostname: cid(t) for t in tasks}
    node1, node2, node3 = c.nodes
    # from node1's namespace to node2's published port: tasks on node1 and node3 answer too
    seen = _answers(hosts.nsenter(node1.netns or ""), f"http://{node2.ip}:8080/",
                    {by_node[node1.hostname], by_node[node3.hostname]})
    assert {by_node[node1.hostname], by_node[node3.hostname]} <= set(seen), seen
    # a node's own address and localhost work from inside it
    assert fetch(hosts.nsenter(node3.netns or ""), f"http://{node3.ip}:8080/") in by_node.values()
    assert fetch(hosts.nsenter(node3.netns or ""), "http://127.0.0.1:8080/") in by_node.values()


def test_host_mode_opens_the_port_only_where_a_task_runs(cluster: Cluster,
                                                         frontend: dict[str, Any]) -> None:
    c = cluster
    node1, node2, _ = c.nodes
    c.docker("service", "create", "--detach", "--name", "hostport", "--publish",
             "mode=host,published=8081,target=80", "--constraint",
             f"node.hostname=={node2.hostname}", c.web)
    try:
        task = c.wait_running("hostport", 1)[0]
        on2 = hosts.nsenter(node2.netns or "")
        assert wait_for("node2:8081 answering", lambda: fetch(on2, f"http://{node2.ip}:8081/"),
                        timeout=10) == cid(task)
        assert fetch(hosts.nsenter(node1.netns or ""), f"http://{node2.ip}:8081/") == cid(task)
        refused = node1.exec("/bin/busybox", "wget", "-q", "-O", "-", f"http://{node1.ip}:8081/",
                             timeout=15)
        assert refused.returncode != 0 and "Hello" not in refused.stdout
    finally:
        c.remove("hostport")


def test_a_task_joins_the_backends_only_once_healthy(cluster: Cluster,
                                                     frontend: dict[str, Any]) -> None:
    c = cluster
    c.docker("service", "create", "--detach", "--name", "slow", "--network", "front",
             "--health-interval", "4s", c.web)
    try:
        def started() -> dict[str, Any] | None:
            for t in c.tasks("slow"):
                if t["Status"]["State"] == "starting" and (t["Status"].get("ContainerStatus") or {}).get("PID"):
                    return t
            return None

        task = wait_for("slow's container started, not yet healthy", started, timeout=60,
                        interval=0.1)
        ip = task["NetworksAttachments"][0]["Addresses"][0].split("/")[0]
        assert not _backends_everywhere(c, ip)
        assert nslookup(frontend, "tasks.slow")[1] == []
        c.wait_running("slow", 1)
        wait_for("slow's task in the client's rules", lambda: _backends_everywhere(c, ip), timeout=5)
    finally:
        c.remove("slow")


def test_scaling_down_drops_no_request(cluster: Cluster, frontend: dict[str, Any]) -> None:
    """A task leaves the backends before it is stopped: requests through the VIP keep being
    answered while the service scales down."""
    c = cluster
    pid = str(frontend["Status"]["ContainerStatus"]["PID"])
    answers: list[str | None] = []
    done = threading.Event()

    def client() -> None:
        while not done.is_set() and len(answers) < 2000:
            answers.append(fetch(["nsenter", "-t", pid, "-n", "-m", "--"], "http://frontend/"))

    thread = threading.Thread(target=client)
    thread.start()
    try:
        c.docker("service", "scale", "--detach", "frontend=2")
        wait_for("2 frontend tasks", lambda: len(c.running("frontend")) == 2 and not any(
            t["Status"]["State"] == "running" and t["DesiredState"] != "running"
            for t in c.tasks("frontend")), timeout=60, interval=0.2)
        time.sleep(0.5)
    finally:
        done.set()
        thread.join(timeout=30)
    assert answers and None not in answers, f"{answers.count(None)} of {len(answers)} failed"
    c.docker("service", "scale", "--detach", "frontend=3")
    c.wait_running("frontend", 3)


def test_a_port_conflict_is_refused(cluster: Cluster, frontend: dict[str, Any]) -> None:
    res = cluster.docker("service", "create", "--detach", "--name", "clash", "--publish",
                         "8080:80", cluster.web, check=False)
    assert res.returncode != 0
    assert "8080" in res.stderr and "already" in res.stderr, res.stderr


def test_other_networks_are_not_resolvable_and_dnsrr_answers_the_tasks(
        cluster: Cluster, frontend: dict[str, Any]) -> None:
    c = cluster
    c.docker("service", "create", "--detach", "--name", "secret", "--network", "back", c.web)
    c.docker("service", "create", "--detach", "--name", "rr", "--replicas", "2",
             "--endpoint-mode", "dnsrr", "--network", "front", c.web)
    try:
        c.wait_running("secret", 1)
        rr = c.wait_running("rr", 2)
        rr_ips = sorted(a["Addresses"][0].split("/")[0] for t in rr for a in t["NetworksAttachments"])
        wait_for("rr in DNS", lambda: sorted(nslookup(frontend, "rr")[1]) == rr_ips, timeout=10)
        code, addrs = nslookup(frontend, "secret")
        assert code != 0 and addrs == []
        assert _inspect(c, "service", "rr")["Endpoint"].get("VirtualIPs") in (None, [])
        # an unknown name fails at once rather than hanging (the resolvers are unreachable)
        started = time.monotonic()
        code, addrs = nslookup(frontend, "no-such-name.invalid")
        assert code != 0 and addrs == []
        print(f"unknown name answered in {time.monotonic() - started:.2f} s")
    finally:
        c.remove("secret", "rr")


def _backends_everywhere(c: Cluster, ip: str, skip: Daemon | None = None) -> list[str]:
    """Which rule sets still name ``ip``: the VIP tables of node1's containers and every
    node's mesh (but ``skip``'s)."""
    where = []
    ns = c.nodes[0].root / "exec" / "netns"
    for path in ns.iterdir() if ns.is_dir() else []:
        if ip in nft_rules(str(path)):
            where.append(f"container {path.name}")
    for d in c.nodes:
        if d is skip:
            continue
        if d.proc is not None and ip in d.exec("nft", "list", "table", "ip", "shoal_mesh").stdout:
            where.append(d.hostname)
    return where


def _lamport(d: Daemon) -> int:
    """The newest gossip key's Lamport time this node's agent was given."""
    times = re.findall(r"network keys: \d+ \(lamport (\d+)\)", d.log.read_text(errors="replace"))
    return int(times[-1]) if times else -1


def test_the_gossip_keeps_working_across_key_rotations(cluster: Cluster,
                                                       frontend: dict[str, Any]) -> None:
    """After three rotations none of the first keys is left: a node joining now gets only
    newer ones, so it reaches the others only if they installed every rotation."""
    c = cluster
    before = {d.hostname: _lamport(d) for d in c.nodes}
    wait_for("three key rotations on every node",
             lambda: all(_lamport(d) >= before[d.hostname] + 3 for d in c.nodes), timeout=40,
             interval=0.5)
    token = c.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    node4 = c.swarm.add(executor="runc")
    try:
        node4.docker("swarm", "join", "--token", token, "--advertise-addr", node4.ip,
                     f"{c.manager.ip}:2377")
        c.docker("service", "create", "--detach", "--name", "late", "--network", "front",
                 "--constraint", f"node.hostname=={node4.hostname}", c.web)
        late = c.wait_running("late", 1)
        ip = late[0]["NetworksAttachments"][0]["Addresses"][0].split("/")[0]
        # node1's DNS learnt node4's endpoint, and node4's overlay reaches node1's client
        wait_for("tasks.late from node1", lambda: nslookup(frontend, "tasks.late")[1] == [ip],
                 timeout=10)
        pid = str(frontend["Status"]["ContainerStatus"]["PID"])
        assert fetch(["nsenter", "-t", pid, "-n", "-m", "--"], "http://late/") == cid(late[0])
        c.remove("late")
    finally:
        node4.docker("swarm", "leave", "--force", check=False)
        node4.stop()
        c.docker("node", "rm", "--force", node4.hostname, check=False)


def test_a_restarted_daemon_serves_its_running_tasks_again(cluster: Cluster,
                                                            frontend: dict[str, Any]) -> None:
    """SIGKILL node2's shoald and start it again: its container keeps running, the daemon
    attaches it again (DNS, rules, gossip), and a later exit is still withdrawn."""
    c = cluster
    node2 = c.nodes[1]
    task = next(t for t in c.running("frontend") if c.node_of(t) is node2)
    ip = next(a["Addresses"][0].split("/")[0] for a in task["NetworksAttachments"]
              if not a["Network"]["Spec"].get("Ingress"))
    node2.kill()
    node2.start()
    wait_for("node2's task back in the rules", lambda: "container" in " ".join(
        _backends_everywhere(c, ip)), timeout=20, interval=0.1)
    wait_for("and in the DNS", lambda: ip in nslookup(frontend, "tasks.frontend")[1], timeout=10)
    again = next(t for t in c.running("frontend") if t["ID"] == task["ID"])
    assert cid(again) == cid(task)
    pid = str(frontend["Status"]["ContainerStatus"]["PID"])
    assert cid(task) in _answers(["nsenter", "-t", pid, "-n", "-m", "--"], f"http://{ip}/",
                                 {cid(task)}, tries=3)
    os.kill(again["Status"]["ContainerStatus"]["PID"], 9)
    wait_for("its backends gone", lambda: not _backends_everywhere(c, ip), timeout=15,
             interval=0.05)
    wait_for("a replacement running", lambda: len(
        [t for t in c.running("frontend") if t["ID"] != task["ID"]]) == 3, timeout=60, interval=0.2)


def test_a_killed_task_leaves_every_nodes_rules(cluster: Cluster, frontend: dict[str, Any]) -> None:
    c = cluster
    net_id = _inspect(c, "network", "front")["Id"]
    victim = next(t for t in c.running("frontend") if c.node_of(t) is c.nodes[2])
    ip = next(a["Addresses"][0].split("/")[0] for a in victim["NetworksAttachments"]
              if a["Network"]["ID"] == net_id)
    ingress_ip = next(a["Addresses"][0].split("/")[0] for a in victim["NetworksAttachments"]
                      if a["Network"]["Spec"].get("Ingress"))
    assert _backends_everywhere(c, ip) and _backends_everywhere(c, ingress_ip)
    os.kill(victim["Status"]["ContainerStatus"]["PID"], 9)
    started = time.monotonic()
    wait_for("the killed task's backends gone", lambda: not _backends_everywhere(c, ip)
             and not _backends_everywhere(c, ingress_ip), timeout=15, interval=0.05)
    print(f"killed task's backends left every rule set in {time.monotonic() - started:.2f} s")
    wait_for("a replacement running", lambda: len(
        [t for t in c.running("frontend") if t["ID"] != victim["ID"]]) == 3, timeout=60, interval=0.2)


def test_a_dead_host_leaves_every_nodes_rules(cluster: Cluster, frontend: dict[str, Any]) -> None:
    """Last: node3 is cut off the switch (its link down), as a host that dies."""
    c = cluster
    node3 = c.nodes[2]
    on3 = [t for t in c.running("frontend") if c.node_of(t) is node3]
    assert on3
    ips = [a["Addresses"][0].split("/")[0] for t in on3 for a in t["NetworksAttachments"]]
    live = {cid(t) for t in c.running("frontend") if c.node_of(t) is not node3}
    wait_for("node3's backends in the others' rules", lambda: all(
        _backends_everywhere(c, ip, skip=node3) for ip in ips), timeout=10, interval=0.05)
    node3.exec("ip", "link", "set", "eth0", "down", check=True)
    try:
        started = time.monotonic()
        wait_for("node3's backends gone", lambda: not any(
            _backends_everywhere(c, ip, skip=node3) for ip in ips), timeout=20, interval=0.05)
        print(f"dead host's backends left every rule set in {time.monotonic() - started:.2f} s")
        pid = str(frontend["Status"]["ContainerStatus"]["PID"])
        for _ in range(6):
            assert fetch(["nsenter", "-t", pid, "-n", "-m", "--"], "http://frontend/") in live
    finally:
        node3.exec("ip", "link", "set", "eth0", "up", check=True)
