"""Image references are normalised the way docker's client does before create and update."""

from __future__ import annotations

import pytest

from shoal.cli.images import display_image, parse_image, tagged_familiar, with_digest

DIGEST = "sha256:" + "b" * 64


@pytest.mark.parametrize(
    ("image", "tagged"),
    [
        ("nginx", "nginx:latest"),
        ("prom/prometheus", "prom/prometheus:latest"),
        ("redis:7", "redis:7"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
        ("docker.io/library/nginx:1.25", "nginx:1.25"),
        ("Nginx", "Nginx"),
    ],
)
def test_tagged_familiar(image: str, tagged: str) -> None:
    assert tagged_familiar(image) == tagged


def test_pinning_and_display() -> None:
    assert with_digest("nginx:latest", DIGEST) == f"nginx:latest@{DIGEST}"
    assert with_digest("nginx:latest", "") == "nginx:latest"  # an empty digest pins nothing
    assert with_digest(f"nginx:1@{DIGEST}", "sha256:" + "c" * 64) == f"nginx:1@{DIGEST}"
    assert display_image(f"nginx:1.25@{DIGEST}") == "nginx:1.25"
    assert display_image("nginx") == "nginx"


def test_uppercase_repository_is_rejected() -> None:
    with pytest.raises(ValueError, match="must be lowercase"):
        parse_image("Nginx")
