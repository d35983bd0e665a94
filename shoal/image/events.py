"""The image events a node publishes (moby daemon/images ``LogImageEvent`` and its callers):
``pull`` (ID: the reference pulled, familiar, ``name``: its repository), ``tag`` (ID: the image
ID, ``name``: the new tag), ``untag`` and ``delete`` (ID and ``name``: the image ID), ``load``
and ``import`` (the same); each carries the image's labels while the image exists. Called by
the image service, from the event loop or from the API's worker threads.
"""

from __future__ import annotations

from shoal.errors import NotFound
from shoal.events import EventLog
from shoal.image.api_json import image_labels
from shoal.image.catalog import Catalog
from shoal.image.reference import Reference

__all__ = ["ImageEvents", "familiar_string"]


def familiar_string(ref: Reference) -> str:
    """distribution's FamiliarString: ``busybox:latest``, ``me/app@sha256:...``, both parts when
    both are given."""
    out = ref.familiar
    if ref.tag:
        out += f":{ref.tag}"
    if ref.digest:
        out += f"@{ref.digest}"
    return out


class ImageEvents:
    def __init__(self, catalog: Catalog, events: EventLog | None) -> None:
        self._catalog = catalog
        self._events = events

    def labels(self, image_id: str) -> dict[str, str]:
        try:
            _, record, _, _ = self._catalog.find(image_id)
        except NotFound:
            return {}  # gone already (a delete)
        return image_labels(self._catalog.store, record)

    def log(self, image_id: str, name: str, action: str, labels: dict[str, str] | None = None) -> None:
        """moby's LogImageEvent: the image's labels (looked up unless given), then ``name``."""
        if self._events is None:
            return
        attrs = dict(self.labels(image_id) if labels is None else labels)
        if name:
            attrs["name"] = name
        self._events.publish_threadsafe("image", action, image_id, attrs)

    def pulled(self, ref: Reference, image_id: str) -> None:
        if self._events is None:
            return
        attrs = {**self.labels(image_id), "name": ref.familiar}
        self._events.publish_threadsafe("image", "pull", familiar_string(ref), attrs)
