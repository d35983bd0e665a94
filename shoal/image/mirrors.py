"""Registry mirrors (dockerd's ``--registry-mirror``): where a Docker Hub image is pulled from.

A Docker Hub name (``redis:alpine`` is ``docker.io/library/redis:alpine``) is tried at each
mirror in the order given, then at Docker Hub itself; other registries are never mirrored, as in
dockerd. A mirror's URL scheme says whether it is spoken to over HTTPS or plain HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from shoal.errors import InvalidArgument
from shoal.image.reference import DEFAULT_DOMAIN, Reference

__all__ = ["HUB", "endpoints", "validate_mirror"]

HUB = "https://registry-1.docker.io"


def validate_mirror(value: str) -> str:
    """``value`` as dockerd keeps it (a trailing ``/``), or dockerd's error for it."""
    try:
        uri = urlsplit(value)
    except ValueError:
        raise InvalidArgument(f"invalid mirror: {value!r} is not a valid URI") from None
    if uri.scheme not in ("http", "https"):
        raise InvalidArgument(f"invalid mirror: unsupported scheme {uri.scheme!r} in {value!r}")
    if not uri.hostname:
        raise InvalidArgument(f"invalid mirror: no host in {value!r}")
    if uri.query or uri.fragment:
        raise InvalidArgument(f"invalid mirror: query or fragment at end of the URI {value!r}")
    if uri.username or uri.password:
        raise InvalidArgument(f"invalid mirror: username/password not allowed in URI {value!r}")
    return value.rstrip("/") + "/"


def endpoints(ref: Reference, mirrors: Iterable[str]) -> list[str]:
    """Base URLs to try for ``ref``, in order: ``""`` is the reference's own registry."""
    if ref.domain != DEFAULT_DOMAIN:
        return [""]
    return [*mirrors, ""]
