"""The image config merged with a service's ContainerSpec, as Docker merges them."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.errors import InvalidArgument
from shoal.exec.containerspec import HealthCheck, resolve

IMAGE: dict[str, Any] = {
    "Entrypoint": ["/entry.sh"], "Cmd": ["serve", "--port", "80"], "Env": ["PATH=/bin", "MODE=prod"],
    "WorkingDir": "/srv", "User": "www",
    "Healthcheck": {"Test": ["CMD-SHELL", "wget -q localhost"], "Interval": 5_000_000_000, "Retries": 2},
}


def test_the_image_alone() -> None:
    p = resolve(IMAGE, {"Image": "web"})
    assert p.args == ("/entry.sh", "serve", "--port", "80")
    assert p.env == ("PATH=/bin", "MODE=prod") and p.cwd == "/srv" and p.user == "www"
    assert p.health == HealthCheck(("CMD-SHELL", "wget -q localhost"), interval=5.0, retries=2)
    assert p.health is not None and p.health.argv == ["/bin/sh", "-c", "wget -q localhost"]


@pytest.mark.parametrize(("spec", "args"), [
    ({"Args": ["debug"]}, ("/entry.sh", "debug")),  # Args replace CMD
    ({"Command": ["/bin/sh", "-c"]}, ("/bin/sh", "-c")),  # Command replaces ENTRYPOINT, CMD dropped
    ({"Command": ["/bin/sh"], "Args": ["-c", "true"]}, ("/bin/sh", "-c", "true")),
])
def test_command_and_args(spec: dict[str, Any], args: tuple[str, ...]) -> None:
    assert resolve(IMAGE, spec).args == args


def test_the_service_wins() -> None:
    p = resolve(IMAGE, {"Env": ["MODE=dev", "EXTRA=1"], "Dir": "/tmp", "User": "1000:1000",
                        "Hostname": "web-1",
                        "Healthcheck": {"Test": ["CMD", "true"], "Timeout": 2_000_000_000}})
    assert p.env == ("PATH=/bin", "MODE=dev", "EXTRA=1")
    assert (p.cwd, p.user, p.hostname) == ("/tmp", "1000:1000", "web-1")
    # Fields the service leaves at zero come from the image's check.
    assert p.health == HealthCheck(("CMD", "true"), interval=5.0, timeout=2.0, retries=2)


def test_no_healthcheck_and_defaults() -> None:
    assert resolve(IMAGE, {"Healthcheck": {"Test": ["NONE"]}}).health is None
    p = resolve({"Cmd": ["sh"]}, {"Healthcheck": {"Test": ["CMD", "check"]}})
    assert p.health == HealthCheck(("CMD", "check"), interval=30.0, timeout=30.0, retries=3)
    assert (p.cwd, p.user, p.health.argv) == ("/", "", ["check"])


@pytest.mark.parametrize(("image", "spec", "message"), [
    ({}, {}, "No command specified"),
    ({"Cmd": "sh"}, {}, "image Cmd"),
    ({"Cmd": ["sh"]}, {"Healthcheck": {"Test": ["WHAT", "x"]}}, "health check"),
])
def test_bad_configs_are_refused(image: dict[str, Any], spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        resolve(image, spec)


def test_start_interval_docker_default_and_the_services() -> None:
    p = resolve({}, {"Command": ["x"], "Healthcheck": {"Test": ["CMD", "true"]}})
    assert p.health is not None and p.health.start_interval == 5.0  # Docker 25's default
    p = resolve({"Healthcheck": {"Test": ["CMD", "true"], "StartInterval": 2 * 10**9}},
                {"Command": ["x"], "Healthcheck": {"StartPeriod": 10**10}})
    assert p.health is not None and (p.health.start_interval, p.health.start_period) == (2.0, 10.0)
    p = resolve({}, {"Command": ["x"], "Healthcheck": {"Test": ["CMD", "true"],
                                                       "StartInterval": 500_000_000}})
    assert p.health is not None and p.health.start_interval == 0.5
