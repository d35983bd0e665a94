"""Image references normalised as Docker does."""

from __future__ import annotations

import pytest

from shoal.errors import InvalidArgument
from shoal.image.reference import parse

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("name", "domain", "path", "tag", "digest", "familiar"), [
    ("redis", "docker.io", "library/redis", "latest", "", "redis"),
    ("redis:7", "docker.io", "library/redis", "7", "", "redis"),
    ("me/app:1.0", "docker.io", "me/app", "1.0", "", "me/app"),
    ("docker.io/library/busybox", "docker.io", "library/busybox", "latest", "", "busybox"),
    ("index.docker.io/me/app", "docker.io", "me/app", "latest", "", "me/app"),
    ("localhost:5000/app", "localhost:5000", "app", "latest", "", "localhost:5000/app"),
    ("localhost/app:v2", "localhost", "app", "v2", "", "localhost/app"),
    ("registry.example.com/team/web:prod", "registry.example.com", "team/web", "prod", "",
     "registry.example.com/team/web"),
    (f"redis@{DIGEST}", "docker.io", "library/redis", "", DIGEST, "redis"),
    (f"127.0.0.1:5000/a/b:t@{DIGEST}", "127.0.0.1:5000", "a/b", "t", DIGEST, "127.0.0.1:5000/a/b"),
])
def test_parse(name: str, domain: str, path: str, tag: str, digest: str, familiar: str) -> None:
    ref = parse(name)
    assert (ref.domain, ref.path, ref.tag, ref.digest, ref.familiar) == (domain, path, tag, digest, familiar)


def test_str_is_the_canonical_name() -> None:
    assert str(parse("redis")) == "docker.io/library/redis:latest"
    assert str(parse(f"me/app@{DIGEST}")) == f"docker.io/me/app@{DIGEST}"


def test_shown_is_the_familiar_name_with_its_digest_else_its_tag() -> None:
    assert parse("redis").shown == "redis:latest"
    assert parse(f"localhost:5000/app:1@{DIGEST}").shown == f"localhost:5000/app@{DIGEST}"


@pytest.mark.parametrize("name", ["", " redis", "Redis", "redis:", "redis@sha256:abc", "a//b",
                                  "redis:bad tag", "-lead/x", "UPPER/case:1"])
def test_bad_references_are_refused(name: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid reference format"):
        parse(name)
