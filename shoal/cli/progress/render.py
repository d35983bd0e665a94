"""Render progress records as docker's ``jsonmessage`` display does.

On a terminal every ID owns a line that is redrawn in place (cursor up, erase, rewrite, cursor
down) with a ``[=====>   ]`` bar when the terminal is wider than 110 columns.  Elsewhere each
record without a bar prints as a plain ``ID: text`` line and records with a bar are skipped,
exactly like docker (so non-TTY output shows ``overall progress: 1 out of 3 tasks`` lines and
the ``verify:`` lines, but not the per-task bars).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Progress", "ProgressDisplay", "human_size", "progress_bar"]

_ERASE_LINE = "\x1b[2K"


@dataclass(frozen=True)
class Progress:
    """One progress record (docker's ``progress.Progress``).

    `message` set: a status line with no bar.  Otherwise `action` is the status and
    `current`/`total` drive the bar.
    """

    id: str = ""
    action: str = ""
    message: str = ""
    current: int = 0
    total: int = 0
    hide_counts: bool = False
    units: str = ""  # "nodes": the counts read "1/3 nodes"


def human_size(size: float) -> str:
    """docker's ``units.HumanSizeWithPrecision(size, 4)``: decimal units, 4 significant digits."""
    unit = 0
    while size >= 1000 and unit < len(_UNITS) - 1:
        size /= 1000
        unit += 1
    return f"{size:.4g}{_UNITS[unit]}"


_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")


def progress_bar(current: int, total: int, *, hide_counts: bool, width: int, units: str = "") -> str:
    """docker's ``JSONProgress.String``: units "bytes" as human sizes (image pulls), others
    as counts."""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return human_size(current) if units == "bytes" else str(current)
    percentage = min(int(float(current) / float(total) * 100) // 2, 50)
    bar = ""
    if width > 110:
        bar = "[" + "=" * percentage + ">" + " " * max(50 - percentage, 0) + "] "
    if units == "bytes":
        numbers = "" if hide_counts else f"{human_size(current):>8}/{human_size(total)}"
    else:
        numbers = "" if hide_counts else f"{current}/{total}" + (f" {units}" if units else "")
    return bar + numbers


class ProgressDisplay:
    """Writes `Progress` records to `write`, redrawing lines in place when `tty`."""

    def __init__(self, write: Callable[[str], None], *, tty: bool, width: int) -> None:
        self._write, self.tty, self.width = write, tty, width
        self._lines: dict[str, int] = {}

    def __call__(self, record: Progress) -> None:
        self.show(record)

    def show(self, record: Progress) -> None:
        has_bar = not record.message
        diff = 0
        if record.id and has_bar:
            line = self._lines.get(record.id)
            if line is None:
                line = self._lines[record.id] = len(self._lines)
                if self.tty:
                    self._write("\n")
            diff = len(self._lines) - line
            if self.tty:
                self._write(f"\x1b[{diff}A")
        else:
            self._lines = {}
        self._display(record, has_bar)
        if record.id and self.tty and diff:
            self._write(f"\x1b[{diff}B")

    def _display(self, record: Progress, has_bar: bool) -> None:
        status = record.message or record.action
        bar = (
            progress_bar(
                record.current,
                record.total,
                hide_counts=record.hide_counts,
                width=self.width if self.tty else 200,
                units=record.units,
            )
            if has_bar
            else ""
        )
        end = ""
        if self.tty and has_bar:
            self._write(_ERASE_LINE + "\r")
            end = "\r"
        elif has_bar and bar:
            return  # docker hides progress bars when not on a terminal
        prefix = f"{record.id}: " if record.id else ""
        if has_bar and self.tty:
            self._write(f"{prefix}{status} {bar}{end}")
        else:
            self._write(f"{prefix}{status}{end}\n")
