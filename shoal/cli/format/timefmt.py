"""Timestamps as the docker CLI reads and shows them: RFC 3339 parsing, ages, Go time strings."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone

__all__ = ["ansic", "go_time_string", "human_duration", "parse_timestamp", "since"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?\s*(Z|z|[+-]\d{2}:?\d{2})"
)
_MAX_DURATION = (1 << 63) - 1


def parse_timestamp(text: str | None) -> int | None:
    """RFC 3339 (up to 9 fractional digits) -> nanoseconds since the epoch; None if unparsable."""
    if not text:
        return None
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = (match.group(7) or "").ljust(9, "0")
    zone = match.group(8)
    offset = timedelta(0)
    if zone not in ("Z", "z"):
        digits = zone.replace(":", "")
        offset = timedelta(hours=int(digits[1:3]), minutes=int(digits[3:5]))
        if digits[0] == "-":
            offset = -offset
    moment = datetime(year, month, day, hour, minute, second, tzinfo=timezone(offset))
    delta = moment - _EPOCH
    seconds = delta.days * 86400 + delta.seconds
    return seconds * 1_000_000_000 + int(fraction)


def since(timestamp_ns: int | None, now_ns: int | None = None) -> int:
    """Go's ``time.Since`` in nanoseconds, saturating like ``time.Duration`` does."""
    now = time.time_ns() if now_ns is None else now_ns
    start = parse_timestamp("0001-01-01T00:00:00Z") if timestamp_ns is None else timestamp_ns
    assert start is not None
    return max(min(now - start, _MAX_DURATION), -_MAX_DURATION - 1)


def human_duration(nanoseconds: int) -> str:
    """go-units ``HumanDuration``: ``Less than a second``, ``5 seconds``, ``About a minute``..."""
    seconds = int(nanoseconds / 1e9)
    if seconds < 1:
        return "Less than a second"
    if seconds == 1:
        return "1 second"
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = int(nanoseconds / 6e10)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(nanoseconds / 3.6e12 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(nanoseconds / 3.6e12) // 24 // 365} years"


def _utc(timestamp_ns: int) -> tuple[datetime, int]:
    seconds, nanos = divmod(timestamp_ns, 1_000_000_000)
    return _EPOCH + timedelta(seconds=seconds), nanos


def go_time_string(timestamp_ns: int) -> str:
    """Go's ``time.Time.String`` for a UTC time: ``2024-05-01 10:00:00.871882 +0000 UTC``."""
    moment, nanos = _utc(timestamp_ns)
    fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    return f"{moment:%Y-%m-%d %H:%M:%S}{fraction} +0000 UTC"


def ansic(timestamp_ns: int) -> str:
    """Go's ``time.ANSIC`` layout: ``Mon Jan  2 15:04:05 2006``."""
    moment, _ = _utc(timestamp_ns)
    return f"{moment:%a %b} {moment.day:>2} {moment:%H:%M:%S %Y}"
