"""Image handling before ``service create/update``, as docker's client does it: tag the
reference (``nginx`` -> ``nginx:latest``) and pin its digest via ``/distribution``."""

from __future__ import annotations

from typing import Any

from shoal.cli.app import App
from shoal.cli.client import DaemonError
from shoal.cli.images import tagged_familiar, with_digest

__all__ = ["digest_warning", "resolve_image"]


def digest_warning(image: str) -> str:
    return (
        f"image {image} could not be accessed on a registry to record\n"
        f"its digest. Each node will access {image} independently,\n"
        "possibly leading to different nodes running different\n"
        "versions of the image.\n"
    )


def resolve_image(app: App, task: dict[str, Any], *, query_registry: bool) -> str | None:
    """Tag the image (``nginx`` -> ``nginx:latest``) and, when asked, pin its digest and
    platforms from ``GET /distribution/{image}/json``; return docker's warning on failure."""
    container = task.get("ContainerSpec")
    if not isinstance(container, dict):
        return None
    image = tagged_familiar(str(container.get("Image", "")))
    container["Image"] = image
    if not query_registry:
        return None
    try:
        answer = app.client.get(f"/distribution/{image}/json") or {}
    except DaemonError:
        return digest_warning(image)
    container["Image"] = with_digest(image, str((answer.get("Descriptor") or {}).get("digest", "")))
    platforms = [
        {
            "Architecture": ""
            if str(p.get("architecture", "")).lower() == "arm"
            else p.get("architecture", ""),
            "OS": p.get("os", ""),
        }
        for p in answer.get("Platforms") or []
    ]
    if platforms:
        placement = task.get("Placement")
        if not isinstance(placement, dict):
            placement = task["Placement"] = {}
        placement["Platforms"] = platforms
    return None
