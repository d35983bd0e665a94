"""How nodes print: the ``node ls`` row and the ``node inspect --pretty`` page."""

from __future__ import annotations

__all__: list[str] = []
