"""Text helpers that know nothing of templates or the daemon: Go's tabwriter, sizes and
durations, times, natural sort order, and the small helpers the row contexts share."""

from __future__ import annotations

__all__: list[str] = []
