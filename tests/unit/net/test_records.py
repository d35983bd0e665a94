"""The gossip records and the lookups the DNS server and the load balancer make on them."""

from __future__ import annotations

import msgspec

from shoal.model.objects import EncryptionKey
from shoal.net.netagent import gossip_keys
from shoal.net.records import Directory, Endpoint, PublishedPort, decode_endpoint, encode_endpoint


def _ep(ip: str, node: str, service: str, *, vip: str = "", task: str = "", kind: str = "task",
        aliases: tuple[str, ...] = (), ports: tuple[PublishedPort, ...] = ()) -> Endpoint:
    task = task or f"t{ip.rsplit('.', 1)[1]}"
    return Endpoint(ip=ip, vtep=f"172.31.7.{node[-1]}", node=node, kind=kind, task=task,
                    name=f"{service}.1.{task}" if kind == "task" else "", service=service,
                    service_id="s-" + service, vip=vip, aliases=aliases, ports=ports)


def _directory() -> Directory:
    front = {f"t{i}": encode_endpoint(_ep(f"10.0.1.{i}", f"n{i - 2}", "frontend", vip="10.0.1.2",
                                          aliases=("web",)))
             for i in (3, 4, 5)}
    front["node/n1"] = encode_endpoint(_ep("10.0.1.250", "n1", "", kind="node"))
    dnsrr = {"t9": encode_endpoint(_ep("10.0.1.9", "n2", "db"))}
    other = {"t7": encode_endpoint(_ep("10.0.2.7", "n1", "secret", vip="10.0.2.2"))}
    return Directory.build({"net1": {**front, **dnsrr}, "net2": other},
                           {"c1": {"net1": "front"}, "c2": {"net2": "back"}})


def test_an_endpoint_survives_the_wire_and_garbage_is_skipped() -> None:
    ep = _ep("10.0.1.3", "n1", "web", vip="10.0.1.2",
             ports=(PublishedPort("tcp", 8080, 80, "ingress"),))
    assert decode_endpoint(encode_endpoint(ep)) == ep
    assert decode_endpoint(b"\x00garbage") is None


def test_vip_service_names_resolve_to_the_vip_and_tasks_to_their_addresses() -> None:
    d = _directory()
    assert d.lookup_service("frontend", ["net1"]) == ["10.0.1.2"]
    assert d.lookup_service("web", ["net1"]) == ["10.0.1.2"]  # an alias
    assert sorted(d.lookup_tasks("frontend", ["net1"])) == ["10.0.1.3", "10.0.1.4", "10.0.1.5"]
    assert d.lookup_task_name("frontend.1.t4", ["net1"]) == ["10.0.1.4"]
    assert d.lookup_address("10.0.1.4", ["net1"]) == "frontend.1.t4"
    assert d.lookup_address("10.0.1.2", ["net1"]) == "frontend"


def test_dnsrr_names_answer_the_tasks_and_other_networks_stay_hidden() -> None:
    d = _directory()
    assert d.lookup_service("db", ["net1"]) == ["10.0.1.9"]
    assert d.lookup_service("secret", ["net1"]) == []
    assert d.lookup_service("secret", d.networks("c2")) == ["10.0.2.2"]
    assert d.networks("c1") == {"net1": "front"}
    assert d.networks("unknown") == {}


def test_backends_and_remote_endpoints() -> None:
    d = _directory()
    assert sorted(d.vip_backends("net1")["10.0.1.2"]) == ["10.0.1.3", "10.0.1.4", "10.0.1.5"]
    assert "" not in d.vip_backends("net1")  # dnsrr tasks have no VIP to balance
    remote = d.remote("net1", "n1")
    assert "10.0.1.3" not in remote and "10.0.1.250" not in remote  # n1's own
    assert remote["10.0.1.4"] == "172.31.7.2"
    assert remote["10.0.1.9"] == "172.31.7.2"


def test_the_second_newest_key_seals() -> None:
    keys = [EncryptionKey(key=bytes([i]) * 16, lamport_time=i) for i in (3, 1, 2)]
    assert gossip_keys(keys) == [b"\x02" * 16, b"\x03" * 16, b"\x01" * 16]
    assert gossip_keys(keys[:1]) == [b"\x03" * 16]
    assert gossip_keys([]) == []


def test_an_endpoint_that_does_not_serve_is_forwarded_to_but_never_balanced_or_resolved() -> None:
    stopping = msgspec.structs.replace(_ep("10.0.1.8", "n2", "frontend", vip="10.0.1.2"),
                                       serving=False)
    d = Directory.build({"net1": {"t8": encode_endpoint(stopping),
                                  "t3": encode_endpoint(_ep("10.0.1.3", "n2", "frontend",
                                                            vip="10.0.1.2"))}}, {})
    assert d.vip_backends("net1") == {"10.0.1.2": ["10.0.1.3"]}
    assert d.lookup_tasks("frontend", ["net1"]) == ["10.0.1.3"]
    assert d.lookup_task_name("frontend.1.t8", ["net1"]) == []
    assert d.remote("net1", "n1") == {"10.0.1.3": "172.31.7.2", "10.0.1.8": "172.31.7.2"}
