"""Parsing of --publish, --mount, --network and --placement-pref values."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.cli.service.mounts import parse_mount
from shoal.cli.service.opts import parse_network, parse_placement_pref, parse_ports


def port(
    target: int, published: int = 0, protocol: str = "tcp", mode: str = "ingress"
) -> dict[str, Any]:
    out: dict[str, Any] = {"Protocol": protocol, "TargetPort": target}
    if published:
        out["PublishedPort"] = published
    out["PublishMode"] = mode
    return out


@pytest.mark.parametrize(
    ("value", "ports"),
    [
        ("8080:80", [port(80, 8080)]),
        ("80", [port(80)]),
        ("53:53/udp", [port(53, 53, "udp")]),
        ("8080-8081:80-81", [port(80, 8080), port(81, 8081)]),
        ("mode=host,target=443,published=8443", [port(443, 8443, mode="host")]),
        ("target=80", [port(80)]),
        ("published=8080,target=80,protocol=udp", [port(80, 8080, "udp")]),
    ],
)
def test_publish(value: str, ports: list[dict[str, Any]]) -> None:
    assert parse_ports(value) == ports


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "invalid containerPort: abc"),
        ("x:80", "invalid hostPort: x"),
        ("80/foo", "invalid proto: foo"),
        ("1.2.3.4:80:80", "hostip is not supported"),
        (
            "8080-8082:80-81",
            "invalid ranges specified for container and host Ports: 80-81 and 8080-8082",
        ),
        (
            "mode=foo,target=1",
            "invalid publish mode value \\(foo\\): must be either 'ingress' or 'host'",
        ),
        ("published=80", "missing mandatory field 'target'"),
        ("target=x1,z=1", "invalid target port"),
        ("target=1,color=red", "invalid field key: color"),
    ],
)
def test_publish_errors(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_ports(value)


def test_mounts() -> None:
    assert parse_mount("type=bind,source=/a,target=/b,readonly") == {
        "Type": "bind",
        "Source": "/a",
        "Target": "/b",
        "ReadOnly": True,
    }
    assert parse_mount("source=v,target=/data") == {
        "Type": "volume",
        "Source": "v",
        "Target": "/data",
    }
    assert parse_mount("type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1777") == {
        "Type": "tmpfs",
        "Target": "/t",
        "TmpfsOptions": {"SizeBytes": 67108864, "Mode": 0o1777},
    }
    assert parse_mount("type=volume,src=v,dst=/d,volume-label=a=b,volume-nocopy") == {
        "Type": "volume",
        "Source": "v",
        "Target": "/d",
        "VolumeOptions": {"NoCopy": True, "Labels": {"a": "b"}, "DriverConfig": {}},
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("type=bind", "target is required"),
        ("target=/a,bogus", "invalid field 'bogus' must be a key=value pair"),
        (
            "type=bind,target=/a,volume-nocopy",
            "cannot mix 'volume-\\*' options with mount type 'bind'",
        ),
        ("target=/a,color=red", "unexpected key 'color' in 'color=red'"),
    ],
)
def test_mount_errors(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_mount(value)


def test_networks_and_placement() -> None:
    assert parse_network("mynet") == {"Target": "mynet"}
    assert parse_network("name=mynet,alias=web,driver-opt=k=v") == {
        "Target": "mynet",
        "Aliases": ["web"],
        "DriverOpts": {"k": "v"},
    }
    assert parse_placement_pref("spread=node.labels.zone") == {
        "Spread": {"SpreadDescriptor": "node.labels.zone"}
    }
    with pytest.raises(ValueError, match="only spread is supported"):
        parse_placement_pref("pack=x")
