"""What ``service create/update`` need besides the click commands: the flags, their value
types, building and updating a spec, resolving the image, and how a service prints."""

from __future__ import annotations

__all__: list[str] = []
