"""A port of Go's ``text/tabwriter`` (docker's table layout: minwidth 10, padding 3, spaces).

Columns are tab-terminated cells aligned per *block* of consecutive lines that have that
column, exactly as Go does; the last cell of a line is never padded.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

__all__ = ["TabWriter", "text_width"]


def text_width(text: str) -> int:
    """Display width: East Asian wide/fullwidth characters count 2, combining marks 0."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


@dataclass
class _Cell:
    text: str
    width: int
    htab: bool


class TabWriter:
    """Collects text, then `flush` returns it aligned (docker: ``TabWriter(10, 1, 3)``)."""

    def __init__(self, minwidth: int = 10, tabwidth: int = 1, padding: int = 3) -> None:
        self.minwidth, self.tabwidth, self.padding = minwidth, tabwidth, padding
        self._out: list[str] = []
        self._lines: list[list[_Cell]] = [[]]
        self._cell = ""
        self._widths: list[int] = []

    def write(self, text: str) -> None:
        for ch in text:
            if ch in "\t\v\n\f":
                cells = self._terminate_cell(ch == "\t")
                if ch in "\n\f":
                    self._lines.append([])
                    if ch == "\f" or cells == 1:
                        self._flush_lines()
            else:
                self._cell += ch

    def _terminate_cell(self, htab: bool) -> int:
        line = self._lines[-1]
        line.append(_Cell(self._cell, text_width(self._cell), htab))
        self._cell = ""
        return len(line)

    def flush(self) -> str:
        """Format everything written so far and return it."""
        if self._cell:
            self._terminate_cell(False)
        self._flush_lines()
        out = "".join(self._out)
        self._out = []
        return out

    def _flush_lines(self) -> None:
        self._format(0, len(self._lines))
        self._lines = [[]]
        self._widths = []

    def _write_lines(self, line0: int, line1: int) -> None:
        for i in range(line0, line1):
            line = self._lines[i]
            for j, cell in enumerate(line):
                if j < len(self._widths):
                    self._out.append(cell.text + " " * (self._widths[j] - cell.width))
                else:
                    self._out.append(cell.text)
            if i + 1 == len(self._lines):
                self._out.append(self._cell)  # the unterminated cell of the last line
            else:
                self._out.append("\n")

    def _format(self, line0: int, line1: int) -> None:
        column = len(self._widths)
        this = line0
        while this < line1:
            line = self._lines[this]
            if column >= len(line) - 1:
                this += 1
                continue
            self._write_lines(line0, this)
            line0 = this
            width = self.minwidth
            while this < line1:
                line = self._lines[this]
                if column >= len(line) - 1:
                    break
                width = max(width, line[column].width + self.padding)
                this += 1
            self._widths.append(width)
            self._format(line0, this)
            self._widths.pop()
            line0 = this
        self._write_lines(line0, line1)
