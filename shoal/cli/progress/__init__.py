"""The progress display of ``service create/update/scale`` without ``-d``: the bars, the
per-mode counters, and the watch loop that polls the daemon."""

from __future__ import annotations

__all__: list[str] = []
