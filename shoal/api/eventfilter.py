"""``GET /events``'s ``filters``, exactly as moby's daemon/events/filter.go reads them.

Keys are not checked (an unknown one filters nothing); keys AND, the values of one key OR.
``type`` and ``scope`` match exactly; ``event`` exactly, or as a prefix once any of its values
is ``health_status``, ``exec_create`` or ``exec_start``; ``container``, ``daemon``, ``plugin``,
``volume``, ``network``, ``service``, ``node``, ``secret`` and ``config`` match the actor's ID or
its ``name`` attribute, exactly or as a prefix, on every event (so ``container=x`` also drops
the events of other types whose ID and name do not start with ``x``); ``image`` matches the
ID or the name (an image event's ``name``, another's ``image`` attribute), with or without its
tag; ``label`` is ``key`` or ``key=value`` against the attributes, every one of them.

Both encodings of the query: the CLI's ``{"type":{"service":true}}`` and docker-py's
``{"type":["service"]}`` (moby's ``filters.FromJSON``).
"""

from __future__ import annotations

import json

from shoal.errors import InvalidArgument, ShoalError
from shoal.events import Event
from shoal.image.reference import parse

__all__ = ["EventFilter", "parse_filters"]

Args = dict[str, dict[str, bool]]  # moby's filters.Args: key -> value -> true
_FUZZY_EVENTS = frozenset({"health_status", "exec_create", "exec_start"})
# matched on the actor's ID or name, in filter.go's order
_BY_NAME = ("daemon", "container", "plugin", "volume", "network", "node", "service", "secret", "config")


def parse_filters(raw: str) -> Args:
    """moby's ``filters.FromJSON``: the map of bools, else the legacy map of lists."""
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise InvalidArgument("invalid filter") from None
    if not isinstance(data, dict):
        raise InvalidArgument("invalid filter")
    if all(isinstance(v, dict) and all(isinstance(b, bool) for b in v.values())
           or v is None for v in data.values()):
        return {str(k): {str(x): b for x, b in (v or {}).items()} for k, v in data.items()}
    if all(isinstance(v, list) and all(isinstance(x, str) for x in v) or v is None
           for v in data.values()):
        return {str(k): dict.fromkeys(v or [], True) for k, v in data.items()}
    raise InvalidArgument("invalid filter")


def _strip_tag(image: str) -> str:
    """distribution's FamiliarName of a normalized reference, or the text as it is."""
    try:
        return parse(image, default_tag="").familiar
    except ShoalError:
        return image


class EventFilter:
    def __init__(self, args: Args) -> None:
        self.args = args

    def __bool__(self) -> bool:
        return bool(self.args)

    # moby's filters.Args matching -------------------------------------------------------------
    def _exact(self, key: str, source: str) -> bool:
        values = self.args.get(key)
        if not values:
            return True
        return values.get(source, False)

    def _fuzzy(self, key: str, source: str) -> bool:
        if self._exact(key, source):
            return True
        return any(source.startswith(prefix) for prefix in self.args.get(key, {}))

    def _kv_list(self, key: str, sources: dict[str, str]) -> bool:
        values = self.args.get(key)
        if not values:
            return True
        if not sources:
            return False
        for value in values:
            k, eq, v = value.partition("=")
            if k not in sources or (eq and sources[k] != v):
                return False
        return True

    # filter.go ----------------------------------------------------------------------------------
    def include(self, ev: Event) -> bool:
        attrs = dict(ev.attributes)
        return (self._match_event(ev) and self._exact("type", ev.type)
                and ("scope" not in self.args or self._exact("scope", ev.scope))
                and all(self._fuzzy_name(ev, kind) for kind in _BY_NAME)
                and self._match_image(ev) and self._kv_list("label", attrs))

    def _match_event(self, ev: Event) -> bool:
        if any(v in _FUZZY_EVENTS for v in self.args.get("event", {})):
            return self._fuzzy("event", ev.action)
        return self._exact("event", ev.action)

    def _fuzzy_name(self, ev: Event, kind: str) -> bool:
        return self._fuzzy(kind, ev.actor_id) or self._fuzzy(kind, ev.attributes.get("name", ""))

    def _match_image(self, ev: Event) -> bool:
        name = ev.attributes.get("name" if ev.type == "image" else "image", "")
        return (self._exact("image", ev.actor_id) or self._exact("image", name)
                or self._exact("image", _strip_tag(ev.actor_id)) or self._exact("image", _strip_tag(name)))
