"""GET /events filters as moby's daemon/events/filter.go: exact and prefix matches, names or
IDs on every event, images with or without their tags, labels, both JSON encodings."""

from __future__ import annotations

import json

import pytest

from shoal.api.eventfilter import EventFilter, parse_filters
from shoal.errors import InvalidArgument
from shoal.events import Event

SERVICE = Event("service", "update", "svc123", {"name": "web", "replicas.new": "3"}, "swarm", 1)
NODE = Event("node", "update", "node9", {"name": "host-1"}, "swarm", 1)
PULL = Event("image", "pull", "127.0.0.1:5000/shoal/bb:1", {"name": "127.0.0.1:5000/shoal/bb", "tier": "x"},
             "local", 1)
TAG = Event("image", "tag", "sha256:" + "a" * 64, {"name": "busybox:latest"}, "local", 1)
CONTAINER = Event("container", "health_status: healthy", "c1", {"image": "redis:7", "name": "cache"}, "local", 1)
VOLUME = Event("volume", "create", "data", {"driver": "local"}, "local", 1)
ALL = [SERVICE, NODE, PULL, TAG, CONTAINER, VOLUME]


def kept(raw: dict[str, object]) -> list[Event]:
    flt = EventFilter(parse_filters(json.dumps(raw)))
    return [e for e in ALL if flt.include(e)]


def test_both_encodings_and_bad_ones() -> None:
    assert parse_filters('{"type":{"service":true}}') == parse_filters('{"type":["service"]}')
    assert parse_filters("") == {}
    for bad in ('{"type":"service"}', "[]", "{", '{"type":{"a":"yes"}}', '{"a":["x"],"b":{"y":true}}'):
        with pytest.raises(InvalidArgument, match="^invalid filter$"):
            parse_filters(bad)


def test_type_scope_and_keys_and_or() -> None:
    assert kept({"type": ["service", "node"]}) == [SERVICE, NODE]
    assert kept({"type": ["service"], "scope": ["local"]}) == []
    assert kept({"scope": ["swarm"]}) == [SERVICE, NODE]
    assert kept({"unknown": ["x"]}) == ALL  # keys are not checked


def test_event_exact_or_prefix_for_health_and_exec() -> None:
    assert kept({"event": ["health_status"]}) == [CONTAINER]
    assert kept({"event": ["update"]}) == [SERVICE, NODE]
    assert kept({"event": ["upd"]}) == []
    assert kept({"event": ["health_status", "upd"]}) == [SERVICE, NODE, CONTAINER]  # prefix for all


def test_names_and_ids_apply_to_every_event() -> None:
    assert kept({"service": ["web"]}) == [SERVICE]
    assert kept({"service": ["svc"]}) == [SERVICE]  # an ID prefix
    assert kept({"node": ["host-"]}) == [NODE]
    assert kept({"container": ["cache"]}) == [CONTAINER]  # drops every other event too
    assert kept({"volume": ["data"]}) == [VOLUME]


def test_image_by_id_name_and_untagged_name() -> None:
    assert kept({"image": ["127.0.0.1:5000/shoal/bb"]}) == [PULL]
    assert kept({"image": ["127.0.0.1:5000/shoal/bb:1"]}) == [PULL]
    assert kept({"image": ["busybox"]}) == [TAG]
    assert kept({"image": ["redis"]}) == [CONTAINER]  # a container's image attribute
    assert kept({"image": ["redis:7"]}) == [CONTAINER]


def test_labels_every_one_must_hold() -> None:
    assert kept({"label": ["tier"]}) == [PULL]
    assert kept({"label": ["tier=x"]}) == [PULL]
    assert kept({"label": ["tier=y"]}) == []
    assert kept({"label": ["tier", "name=nope"]}) == []
