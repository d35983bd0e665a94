"""``shoal stack deploy|ls|services|ps|rm`` end to end against the fake daemon."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from ..conftest import Shoal
from ..fake_daemon import FakeDaemon

NS = "com.docker.stack.namespace"
DETACH_WARNING = (
    "Since --detach=false was not specified, tasks will be created in the background.\n"
    "In a future release, --detach=false will become the default.\n"
)

STACK = """
services:
  web:
    image: nginx
    ports: ["8080:80"]
    networks:
      front: {aliases: [www]}
    environment: {B: "2", A: "1"}
    secrets: [{source: token, target: /run/t, mode: 0400}]
    configs: [site]
    deploy:
      replicas: 2
      labels: {tier: web}
      update_config: {parallelism: 2, delay: 10s}
  worker:
    image: busybox:1.36
    command: sleep 1000
networks:
  front: {driver_opts: {encrypted: ""}, attachable: true, labels: {a: b}}
secrets:
  token: {file: ./token.txt}
configs:
  site: {file: site.conf, name: site-v1}
"""


@pytest.fixture
def stack_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "token.txt").write_text("s3cret")
    (tmp_path / "site.conf").write_text("listen 80;")
    (tmp_path / "stack.yml").write_text(STACK)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def bodies(daemon: FakeDaemon, prefix: str) -> list[Any]:
    return [body for _, _, _, body in daemon.calls("POST", prefix)]


def test_deploy_creates_everything(shoal: Shoal, daemon: FakeDaemon, stack_dir: Path) -> None:
    result = shoal("stack", "deploy", "-c", "stack.yml", "app")
    assert (result.status, result.err) == (0, DETACH_WARNING)
    assert result.out == (
        "Creating network app_default\n"
        "Creating network app_front\n"
        "Creating secret app_token\n"
        "Creating config site-v1\n"
        "Creating service app_web\n"
        "Creating service app_worker\n"
    )
    default, front = bodies(daemon, "/networks/create")
    assert default == {
        "Name": "app_default", "Driver": "overlay", "Scope": "", "IPAM": None, "Internal": False,
        "Attachable": False, "Ingress": False, "ConfigOnly": False, "ConfigFrom": None,
        "Options": None, "Labels": {NS: "app"},
    }
    assert (front["Options"], front["Attachable"], front["Labels"]) == (
        {"encrypted": ""}, True, {"a": "b", NS: "app"})
    assert bodies(daemon, "/secrets/create") == [{
        "Name": "app_token", "Labels": {NS: "app"},
        "Data": base64.b64encode(b"s3cret").decode(),
    }]
    assert bodies(daemon, "/configs/create")[0]["Name"] == "site-v1"
    web, worker = bodies(daemon, "/services/create")
    assert web["Name"] == "app_web"
    assert web["Labels"] == {"tier": "web", NS: "app", "com.docker.stack.image": "nginx"}
    assert web["Mode"] == {"Replicated": {"Replicas": 2}}
    assert web["UpdateConfig"] == {"Parallelism": 2, "Delay": 10_000_000_000,
                                   "FailureAction": "", "Monitor": 0, "MaxFailureRatio": 0,
                                   "Order": ""}
    assert web["EndpointSpec"] == {"Ports": [
        {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}]}
    task = web["TaskTemplate"]
    assert task["Networks"] == [{"Target": "app_front", "Aliases": ["www", "web"]}]
    container = task["ContainerSpec"]
    assert container["Image"] == "nginx:latest@" + daemon.digest
    assert container["Env"] == ["A=1", "B=2"]
    assert container["Labels"] == {NS: "app"}
    assert container["Secrets"] == [{
        "File": {"Name": "/run/t", "UID": "0", "GID": "0", "Mode": 0o400},
        "SecretID": daemon.secrets[0]["ID"], "SecretName": "app_token",
    }]
    assert container["Configs"] == [{
        "File": {"Name": "site", "UID": "0", "GID": "0", "Mode": 0o444},
        "ConfigID": daemon.configs[0]["ID"], "ConfigName": "site-v1",
    }]
    assert worker["TaskTemplate"]["Networks"] == [{"Target": "app_default", "Aliases": ["worker"]}]
    assert worker["TaskTemplate"]["ContainerSpec"]["Args"] == ["sleep", "1000"]
    assert worker["Mode"] == {"Replicated": {}}
    assert "UpdateConfig" not in worker


def test_redeploy_updates_with_versions(shoal: Shoal, daemon: FakeDaemon, stack_dir: Path) -> None:
    shoal("stack", "deploy", "-c", "stack.yml", "app")
    web = next(s for s in daemon.services if s["Spec"]["Name"] == "app_web")
    web["Spec"]["TaskTemplate"]["ForceUpdate"] = 4
    version = web["Version"]["Index"]
    daemon.requests.clear()
    result = shoal("stack", "deploy", "-c", "stack.yml", "--resolve-image", "never", "-d", "app")
    assert result.err == ""
    ids = {s["Spec"]["Name"]: s["ID"] for s in daemon.services}
    assert result.out == (
        f"Updating service app_web (id: {ids['app_web']})\n"
        f"Updating service app_worker (id: {ids['app_worker']})\n"
    )
    assert not daemon.calls("POST", "/networks/create")
    assert not daemon.calls("POST", "/secrets/create")
    secret_update = daemon.calls("POST", "/secrets/")
    assert secret_update[0][1].endswith("/update")
    updates = [(p, q) for _, p, q, _ in daemon.calls("POST", "/services/")]
    assert updates[0] == (f"/services/{ids['app_web']}/update", {"version": str(version)})
    body = bodies(daemon, "/services/")[0]
    # unchanged image: the pinned one is kept; ForceUpdate is preserved
    assert body["TaskTemplate"]["ContainerSpec"]["Image"] == "nginx:latest@" + daemon.digest
    assert body["TaskTemplate"]["ForceUpdate"] == 4
    assert not daemon.calls("GET", "/distribution")


def test_changed_secret_file_fails(shoal: Shoal, daemon: FakeDaemon, stack_dir: Path) -> None:
    shoal("stack", "deploy", "-c", "stack.yml", "app")
    (stack_dir / "token.txt").write_text("other")
    result = shoal("stack", "deploy", "-c", "stack.yml", "app")
    assert result.status == 1
    assert result.err.endswith(
        "failed to update secret app_token: Error response from daemon: rpc error: code = "
        "InvalidArgument desc = only updates to Labels are allowed\n"
    )


def test_prune(shoal: Shoal, daemon: FakeDaemon, stack_dir: Path) -> None:
    shoal("stack", "deploy", "-c", "stack.yml", "app")
    (stack_dir / "small.yml").write_text("services:\n  worker:\n    image: busybox:1.36\n")
    result = shoal("stack", "deploy", "-c", "small.yml", "--prune", "app")
    assert result.out.splitlines()[0] == "Removing service app_web"
    assert sorted(s["Spec"]["Name"] for s in daemon.services) == ["app_worker"]


def test_deploy_several_files_and_stdin(shoal: Shoal, daemon: FakeDaemon, stack_dir: Path) -> None:
    result = shoal("stack", "deploy", "-c", "stack.yml", "-c", "-", "app",
                   input="services:\n  worker:\n    image: busybox:1.37\n")
    assert result.status == 0
    worker = next(s for s in daemon.services if s["Spec"]["Name"] == "app_worker")
    assert worker["Spec"]["Labels"]["com.docker.stack.image"] == "busybox:1.37"


def test_deploy_errors(shoal: Shoal, daemon: FakeDaemon, stack_dir: Path) -> None:
    result = shoal("stack", "deploy", "-c", "stack.yml", "--resolve-image", "sometimes", "app")
    assert (result.status, result.err) == (1, "Invalid option sometimes for flag --resolve-image\n")
    assert shoal("stack", "deploy", "-d", "-c", "stack.yml", "a b ").err == (
        'invalid stack name: "a b "\n')
    assert shoal("stack", "deploy", "-d", "-c", "gone.yml", "app").err == (
        "open gone.yml: no such file or directory\n")
    (stack_dir / "binary.yml").write_bytes(b"services:\xff\xfe")
    assert shoal("stack", "deploy", "-d", "-c", "binary.yml", "app").err == (
        "binary.yml: yaml: invalid leading UTF-8 octet at byte 9\n")
    (stack_dir / "bad.yml").write_text("services:\n  web:\n    image: x\n    build: .\n")
    result = shoal("stack", "deploy", "-d", "-c", "bad.yml", "app")
    assert (result.status, result.err) == (
        1, "bad.yml: services.web.build: not supported by shoal stack deploy\n")
    (stack_dir / "ext.yml").write_text(
        "services:\n  web:\n    image: x\n    networks: [outside]\n"
        "networks:\n  outside: {external: true}\n")
    result = shoal("stack", "deploy", "-d", "-c", "ext.yml", "app")
    assert result.err == (
        'network "outside" is declared as external, but could not be found. You need to create '
        "a swarm-scoped network before the stack is deployed\n"
    )
    (stack_dir / "undef.yml").write_text("services:\n  web:\n    image: x\n    networks: [nope]\n")
    assert shoal("stack", "deploy", "-d", "-c", "undef.yml", "app").err == (
        'service web: undefined network "nope"\n')
    (stack_dir / "noimg.yml").write_text("services:\n  web:\n    user: x\n")
    assert shoal("stack", "deploy", "-d", "-c", "noimg.yml", "app").err == (
        "service web: invalid image reference for service web: no image specified\n")
    daemon.nodes[0]["Spec"]["Role"] = "worker"
    result = shoal("stack", "deploy", "-d", "-c", "stack.yml", "app")
    assert result.err == (
        'this node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to '
        "connect this node to swarm and try again\n"
    )


def test_external_objects_are_used_not_created(
    shoal: Shoal, daemon: FakeDaemon, stack_dir: Path
) -> None:
    daemon.add_network("shared")
    (stack_dir / "ext.yml").write_text(
        "services:\n  web:\n    image: x\n    networks: [shared]\n    secrets: [pw]\n"
        "networks:\n  shared: {external: true}\n"
        "secrets:\n  pw: {external: true}\n")
    result = shoal("stack", "deploy", "-d", "-c", "ext.yml", "app")
    assert result.err == "service web: secret not found: pw\n"
    daemon.secrets.append({"ID": "pwid", "Version": {"Index": 1}, "Spec": {"Name": "pw"}})
    result = shoal("stack", "deploy", "-d", "-c", "ext.yml", "app")
    assert (result.status, result.out) == (0, "Creating service app_web\n")
    task = daemon.services[0]["Spec"]["TaskTemplate"]
    assert task["Networks"] == [{"Target": "shared", "Aliases": ["web"]}]
    assert task["ContainerSpec"]["Secrets"][0]["SecretID"] == "pwid"


def test_ls_services_ps(shoal: Shoal, daemon: FakeDaemon, stack_dir: Path) -> None:
    shoal("stack", "deploy", "-c", "stack.yml", "app")
    (stack_dir / "b.yml").write_text("services:\n  one:\n    image: busybox\n")
    shoal("stack", "deploy", "-c", "b.yml", "b10")
    shoal("stack", "deploy", "-c", "b.yml", "b9")
    shoal("service", "create", "--name", "loose", "busybox")
    assert shoal("stack", "ls").out == (
        "NAME      SERVICES\napp       2\nb9        1\nb10       1\n"
    )
    assert shoal("stack", "ls", "--format", "{{.Name}}:{{.Services}}").out == (
        "app:2\nb9:1\nb10:1\n"
    )
    assert json.loads(shoal("stack", "ls", "--format", "json").out.splitlines()[0]) == {
        "Name": "app", "Services": "2"}
    out = shoal("stack", "services", "app").out.splitlines()
    assert out[0].split() == ["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"]
    assert [line.split()[1] for line in out[1:]] == ["app_web", "app_worker"]
    ids = {s["Spec"]["Name"]: s["ID"][:12] for s in daemon.services}
    assert shoal("stack", "services", "-q", "app").out == (
        f"{ids['app_web']}\n{ids['app_worker']}\n")
    assert shoal("stack", "services", "--filter", "name=app_wo", "--format", "{{.Name}}",
                 "app").out == "app_worker\n"
    nothing = shoal("stack", "services", "nope")
    assert (nothing.status, nothing.out, nothing.err) == (0, "", "Nothing found in stack: nope\n")
    ps = shoal("stack", "ps", "--format", "{{.Name}}", "app")
    assert ps.out == "app_web.1\napp_web.2\napp_worker.1\n"
    labels = json.loads(daemon.calls("GET", "/tasks")[-1][2]["filters"])["label"]
    assert labels == {f"{NS}=app": True}
    assert shoal("stack", "ps", "-q", "b9").out.strip() in {t["ID"] for t in daemon.tasks}
    missing = shoal("stack", "ps", "nope")
    assert (missing.status, missing.err) == (1, "nothing found in stack: nope\n")


def test_rm(shoal: Shoal, daemon: FakeDaemon, stack_dir: Path) -> None:
    shoal("stack", "deploy", "-c", "stack.yml", "app")
    shoal("network", "create", "-d", "overlay", "other")
    result = shoal("stack", "rm", "app", "nope")
    assert (result.status, result.err) == (0, "Nothing found in stack: nope\n")
    assert result.out == (
        "Removing service app_web\n"
        "Removing service app_worker\n"
        "Removing secret app_token\n"
        "Removing config site-v1\n"
        "Removing network app_default\n"
        "Removing network app_front\n"
    )
    assert daemon.services == [] and daemon.secrets == [] and daemon.configs == []
    assert [n["Name"] for n in daemon.networks] == ["other"]
    assert shoal("stack", "down", "--detach=false", "app").err == "Nothing found in stack: app\n"


def test_rm_waits_for_tasks_unless_detached(
    shoal: Shoal, daemon: FakeDaemon, stack_dir: Path
) -> None:
    shoal("stack", "deploy", "-c", "stack.yml", "app")
    result = shoal("stack", "rm", "-d=false", "app")
    assert result.status == 0
    assert daemon.calls("GET", "/tasks")


def test_config_prints_the_merged_file(shoal: Shoal, daemon: FakeDaemon, stack_dir: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAG", "2")
    (stack_dir / "a.yml").write_text("services:\n  w:\n    image: busybox:${TAG}\n")
    (stack_dir / "b.yml").write_text("services:\n  w:\n    user: nobody\n")
    result = shoal("stack", "config", "-c", "a.yml", "-c", "b.yml")
    assert (result.status, result.out) == (
        0, 'version: "3.13"\nservices:\n  w:\n    image: busybox:2\n    user: nobody\n')
    raw = shoal("stack", "config", "--skip-interpolation", "-c", "a.yml")
    assert raw.out.splitlines()[3] == "    image: busybox:${TAG}"
    assert daemon.requests == []


def test_deploy_waits_when_not_detached(shoal: Shoal, daemon: FakeDaemon, stack_dir: Path) -> None:
    result = shoal("stack", "deploy", "--detach=false", "-q", "-c", "stack.yml", "app")
    assert (result.status, result.err) == (0, "")
    assert result.out.endswith("Creating service app_worker\n")
    assert all(t["Status"]["State"] == "running" for t in daemon.tasks)


def test_deploy_shows_progress(shoal: Shoal, daemon: FakeDaemon, stack_dir: Path) -> None:
    result = shoal("stack", "deploy", "--detach=false", "-c", "stack.yml", "app")
    assert result.status == 0
    assert result.out.count("verify: Service ") == 2


def test_external_network_in_the_wrong_scope(
    shoal: Shoal, daemon: FakeDaemon, stack_dir: Path
) -> None:
    daemon.add_network("br", driver="bridge", scope="local")
    (stack_dir / "ext.yml").write_text(
        "services:\n  web:\n    image: x\n    networks: [br]\nnetworks:\n  br: {external: true}\n")
    assert shoal("stack", "deploy", "-d", "-c", "ext.yml", "app").err == (
        'network "br" is declared as external, but it is not in the right scope: "local" '
        'instead of "swarm"\n'
    )


def test_resolve_image_changed(shoal: Shoal, daemon: FakeDaemon, stack_dir: Path) -> None:
    (stack_dir / "one.yml").write_text("services:\n  w:\n    image: busybox:1\n")
    (stack_dir / "two.yml").write_text("services:\n  w:\n    image: busybox:2\n")
    shoal("stack", "deploy", "-d", "-c", "one.yml", "app")
    daemon.requests.clear()
    shoal("stack", "deploy", "-d", "--resolve-image", "changed", "-c", "one.yml", "app")
    assert not daemon.calls("GET", "/distribution")
    image = daemon.services[0]["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert image == "busybox:1@" + daemon.digest
    shoal("stack", "deploy", "-d", "--resolve-image", "changed", "-c", "two.yml", "app")
    assert daemon.calls("GET", "/distribution")
    labels = daemon.services[0]["Spec"]["Labels"]
    assert labels["com.docker.stack.image"] == "busybox:2"
    shoal("stack", "deploy", "-d", "--resolve-image", "never", "-c", "one.yml", "app")
    image = daemon.services[0]["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert image == "busybox:1"
