"""Image references as distribution/reference normalises them (``nginx`` -> ``nginx:latest``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

__all__ = ["ImageRef", "display_image", "parse_image", "tagged_familiar", "with_digest"]

_DEFAULT_DOMAIN = "docker.io"
_LEGACY_DOMAIN = "index.docker.io"
_OFFICIAL_PREFIX = "library/"

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[(?:[a-fA-F0-9:]+)\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"^((?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)(?::({_TAG}))?(?:@({_DIGEST}))?$"
)
_NAME = re.compile(rf"^(?:({_DOMAIN})/)?({_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)$")
_IDENTIFIER = re.compile(r"^[a-f0-9]{64}$")


@dataclass(frozen=True)
class ImageRef:
    """A parsed, normalised reference: ``docker.io`` / ``library/nginx`` : tag @ digest."""

    domain: str
    path: str
    tag: str = ""
    digest: str = ""

    def familiar_name(self) -> str:
        if self.domain != _DEFAULT_DOMAIN:
            return f"{self.domain}/{self.path}"
        if self.path.startswith(_OFFICIAL_PREFIX) and "/" not in self.path[len(_OFFICIAL_PREFIX) :]:
            return self.path[len(_OFFICIAL_PREFIX) :]
        return self.path

    def familiar(self) -> str:
        out = self.familiar_name()
        if self.tag:
            out += ":" + self.tag
        if self.digest:
            out += "@" + self.digest
        return out


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if not sep:
        return _DEFAULT_DOMAIN, _OFFICIAL_PREFIX + name
    if first == "localhost" or any(c in first for c in ".:") or first.lower() != first:
        domain, remote = first, rest
    elif first == _LEGACY_DOMAIN:
        domain, remote = _DEFAULT_DOMAIN, rest
    else:
        domain, remote = _DEFAULT_DOMAIN, name
    if domain == _DEFAULT_DOMAIN and "/" not in remote:
        remote = _OFFICIAL_PREFIX + remote
    return domain, remote


def parse_image(text: str) -> ImageRef:
    """``ParseNormalizedNamed``; raises ValueError with distribution's messages."""
    if _IDENTIFIER.match(text):
        raise ValueError(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = _split_domain(text)
    remote = remainder.split(":", 1)[0] if ":" in remainder else remainder
    remote = remote.split("@", 1)[0]
    if remote.lower() != remote:
        raise ValueError(f"invalid reference format: repository name ({remote}) must be lowercase")
    match = _REFERENCE.match(f"{domain}/{remainder}")
    if match is None:
        raise ValueError("invalid reference format")
    name_match = _NAME.match(match.group(1))
    if name_match is None or len(match.group(1)) > 255:
        raise ValueError("invalid reference format")
    return ImageRef(
        domain=name_match.group(1) or "",
        path=name_match.group(2),
        tag=match.group(2) or "",
        digest=match.group(3) or "",
    )


def tagged_familiar(image: str) -> str:
    """``imageWithTagString``: ``nginx`` -> ``nginx:latest``; unparsable input comes back as is."""
    try:
        ref = parse_image(image)
    except ValueError:
        return image
    if not ref.tag and not ref.digest:
        ref = replace(ref, tag="latest")
    return ref.familiar()


def with_digest(image: str, digest: str) -> str:
    """``imageWithDigestString``: pin ``name:tag@digest`` unless already pinned or invalid."""
    if not re.fullmatch(_DIGEST, digest or ""):
        return image
    try:
        ref = parse_image(image)
    except ValueError:
        return image
    if ref.digest:
        return image
    return replace(ref, digest=digest).familiar()


def display_image(image: str) -> str:
    """How ``service ls`` / ``service ps`` show an image: familiar name and tag, no digest."""
    try:
        ref = parse_image(image)
    except ValueError:
        return image
    if not ref.tag:
        return image
    return replace(ref, digest="").familiar()
