"""``--with-registry-auth``: the credentials ``docker login`` stored for an image's registry,
encoded as the X-Registry-Auth header (base64url JSON AuthConfig), as docker's client sends
them. Only the config file's ``auths`` entries are read; credential helpers are not run."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from shoal.cli.images import parse_image

__all__ = ["HEADER", "encoded_auth"]

HEADER = "X-Registry-Auth"
_INDEX_SERVER = "https://index.docker.io/v1/"


def _config() -> dict[str, Any]:
    base = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    try:
        data = json.loads((Path(base) / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def encoded_auth(image: str) -> str:
    try:
        domain = parse_image(image).domain
    except ValueError:
        domain = "docker.io"
    server = _INDEX_SERVER if domain == "docker.io" else domain
    auths = _config().get("auths") or {}
    entry: dict[str, Any] = {}
    for key in (server, f"https://{server}", f"http://{server}"):
        if isinstance(auths.get(key), dict):
            entry = auths[key]
            break
    auth: dict[str, str] = {"serveraddress": server}
    if entry.get("auth"):
        user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        auth.update(username=user, password=password)
    for key in ("username", "password", "identitytoken"):
        if entry.get(key):
            auth[key] = str(entry[key])
    return base64.urlsafe_b64encode(json.dumps(auth).encode()).decode()
