"""A node's volumes in the Engine API's JSON shape (API 1.50 ``volume.Volume``,
``volume.CreateOptions``). Local to one node: never in the swarm's store."""

from __future__ import annotations

from typing import Any

import msgspec

from shoal.model.specs import Struct

__all__ = ["ANONYMOUS_LABEL", "Volume", "VolumeCreateRequest"]

# moby volume/service: set on a volume created without a name; prune takes only these unless
# asked for all (API 1.42+).
ANONYMOUS_LABEL = "com.docker.volume.anonymous"


class Volume(Struct):
    """``Labels`` and ``Options`` are what the creator gave (null when none), as dockerd keeps
    them; ``CreatedAt`` is RFC 3339 to the second. No Status or UsageData: the local driver
    reports no status, and usage is only in ``/system/df`` (omitempty in moby)."""

    name: str
    driver: str = "local"
    mountpoint: str = ""
    created_at: str = ""
    labels: dict[str, str] | None = None
    scope: str = "local"
    options: dict[str, str] | None = None


class VolumeCreateRequest(Struct):
    name: str = ""
    driver: str = ""
    driver_opts: dict[str, str] | None = None
    labels: dict[str, str] | None = None
    cluster_volume_spec: dict[str, Any] | None = msgspec.field(default=None, name="ClusterVolumeSpec")
