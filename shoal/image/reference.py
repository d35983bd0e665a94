"""Image references as Docker parses them (distribution/reference, "familiar" names).

``redis`` is ``docker.io/library/redis:latest``; ``me/app:1`` is ``docker.io/me/app:1``;
``localhost:5000/app`` names a registry (a first component with a dot, a colon or
``localhost``); ``name@sha256:<64 hex>`` pins a digest (a tag may come before it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shoal.errors import InvalidArgument

__all__ = ["DEFAULT_DOMAIN", "Reference", "parse"]

DEFAULT_DOMAIN = "docker.io"
_LEGACY_DOMAINS = ("index.docker.io", "registry-1.docker.io")
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_DOMAIN = re.compile(r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
                     r"(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?")


@dataclass(frozen=True, slots=True)
class Reference:
    domain: str  # registry host[:port]
    path: str  # repository path, e.g. library/redis
    tag: str = ""  # "" when only a digest is given
    digest: str = ""  # sha256:...

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}"

    @property
    def familiar(self) -> str:
        """The short name Docker shows: ``redis``, ``me/app``, ``localhost:5000/app``."""
        if self.domain == DEFAULT_DOMAIN:
            return self.path.removeprefix("library/")
        return self.repository

    @property
    def shown(self) -> str:
        """One name as Docker prints it: familiar, with its digest if it has one, else its tag
        (``redis:7``, ``me/app@sha256:...``)."""
        return f"{self.familiar}@{self.digest}" if self.digest else f"{self.familiar}:{self.tag}"

    def __str__(self) -> str:
        out = self.repository
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse(name: str, *, default_tag: str = "latest") -> Reference:
    """A reference from a name as users type it; InvalidArgument with Docker's wording if bad."""
    if not name or name != name.strip():
        raise InvalidArgument(f"invalid reference format: {name!r}")
    rest, digest = name, ""
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.fullmatch(digest):
            raise InvalidArgument(f"invalid reference format: {name!r} (bad digest)")
    tag = ""
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, tag = rest.rsplit(":", 1)
        if not _TAG.fullmatch(tag):
            raise InvalidArgument(f"invalid reference format: {name!r} (bad tag)")
    first, sep, remainder = rest.partition("/")
    if sep and (("." in first or ":" in first) or first == "localhost"):
        domain, path = first, remainder
        if not _DOMAIN.fullmatch(domain):
            raise InvalidArgument(f"invalid reference format: {name!r} (bad registry)")
    else:
        domain, path = DEFAULT_DOMAIN, rest
    if domain in _LEGACY_DOMAINS:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"library/{path}"
    if not path or any(not _COMPONENT.fullmatch(c) for c in path.split("/")):
        raise InvalidArgument(f"invalid reference format: repository name ({path}) must be lowercase")
    if len(domain) + 1 + len(path) > 255:
        raise InvalidArgument("invalid reference format: repository name must not be more than 255 characters")
    if not tag and not digest:
        tag = default_tag
    return Reference(domain, path, tag, digest)
