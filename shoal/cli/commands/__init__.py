"""The click command groups, one module per docker noun (``service ls/ps/inspect`` and
``service logs`` have their own modules); `shoal.cli.main` hooks them into the root group."""

from __future__ import annotations

__all__: list[str] = []
