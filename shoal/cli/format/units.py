"""Go's value parsers and printers the docker CLI relies on: durations, sizes, CPUs, numbers.

Each parser raises `ValueError` with the text Go would give (``time: invalid duration "x"``,
``strconv.ParseUint: parsing "x": invalid syntax``) so flag errors read like docker's.
"""

from __future__ import annotations

import re
from fractions import Fraction

from shoal.gotemplate.printf import go_float  # Go's %v of a float64, shared with the templates

__all__ = [
    "bytes_size",
    "format_duration",
    "go_float",
    "human_size",
    "parse_bool",
    "parse_cpus",
    "parse_duration",
    "parse_float",
    "parse_int",
    "parse_uint",
    "ram_in_bytes",
]

NANOSECOND = 1
MICROSECOND = 1000
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

_UNITS = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "µs": MICROSECOND,  # U+00B5
    "μs": MICROSECOND,  # U+03BC
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}
_MAX_INT64 = (1 << 63) - 1
_MAX_UINT64 = (1 << 64) - 1


def parse_duration(text: str) -> int:
    """Go's ``time.ParseDuration``: ``1h30m``, ``1.5s``, ``300ms`` -> integer nanoseconds."""
    invalid = ValueError(f'time: invalid duration "{text}"')
    s = text
    negative = False
    if s[:1] in ("-", "+"):
        negative = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if s == "":
        raise invalid
    total = 0
    while s:
        if not (s[0] == "." or s[0].isdigit()):
            raise invalid
        match = re.match(r"(\d*)(?:\.(\d*))?", s)
        assert match is not None
        whole, frac = match.group(1), match.group(2)
        if not whole and not frac:
            raise invalid
        s = s[match.end() :]
        end = 0
        while end < len(s) and not (s[end] == "." or s[end].isdigit()):
            end += 1
        if end == 0:
            raise ValueError(f'time: missing unit in duration "{text}"')
        unit_name, s = s[:end], s[end:]
        unit = _UNITS.get(unit_name)
        if unit is None:
            raise ValueError(f'time: unknown unit "{unit_name}" in duration "{text}"')
        value = int(whole or "0") * unit
        if frac:
            value += int(float(int(frac)) * (float(unit) / float(10 ** len(frac))))
        total += value
        if total > _MAX_INT64:
            raise invalid
    return -total if negative else total


def _fmt_frac(value: int, precision: int) -> tuple[str, int]:
    digits = ""
    printed = False
    for _ in range(precision):
        digit = value % 10
        printed = printed or digit != 0
        if printed:
            digits = str(digit) + digits
        value //= 10
    return ("." + digits if printed else ""), value


def format_duration(nanoseconds: int) -> str:
    """Go's ``time.Duration.String``: ``5s``, ``1m30s``, ``1h0m0s``, ``1.5ms``."""
    u = abs(nanoseconds)
    sign = "-" if nanoseconds < 0 else ""
    if u < SECOND:
        if u == 0:
            return "0s"
        if u < MICROSECOND:
            return f"{sign}{u}ns"
        if u < MILLISECOND:
            frac, whole = _fmt_frac(u, 3)
            return f"{sign}{whole}{frac}µs"
        frac, whole = _fmt_frac(u, 6)
        return f"{sign}{whole}{frac}ms"
    frac, secs = _fmt_frac(u, 9)
    out = f"{secs % 60}{frac}s"
    minutes = secs // 60
    if minutes > 0:
        out = f"{minutes % 60}m" + out
        hours = minutes // 60
        if hours > 0:
            out = f"{hours}h" + out
    return sign + out


_BINARY = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def ram_in_bytes(text: str) -> int:
    """go-units ``RAMInBytes``: ``256M``, ``1.5g``, ``512kb``, ``128 MiB`` -> bytes (binary)."""
    sep = max(text.rfind(c) for c in "0123456789. ")
    if sep == -1:
        raise ValueError(f"invalid size: '{text}'")
    if text[sep] != " ":
        number, suffix = text[: sep + 1], text[sep + 1 :]
    else:
        number, suffix = text[:sep], text[sep + 1 :]
    size = parse_float(number, bits=64)
    if size < 0:
        raise ValueError(f"invalid size: '{text}'")
    if not suffix:
        return int(size)
    lowered = suffix.lower()
    bad = ValueError(f"invalid suffix: '{lowered if len(suffix) <= 3 else suffix}'")
    if len(suffix) > 3:
        raise bad
    if lowered[0] == "b":
        if len(lowered) > 1:
            raise bad
        return int(size)
    multiplier = _BINARY.get(lowered[0])
    if multiplier is None:
        raise bad
    if (len(lowered) == 2 and lowered[1] != "b") or (len(lowered) == 3 and lowered[1:] != "ib"):
        raise bad
    return int(size * multiplier)


def _custom_size(size: float, base: float, abbrs: list[str]) -> str:
    index = 0
    while size >= base and index < len(abbrs) - 1:
        size /= base
        index += 1
    return f"{_go_g(size, 4)}{abbrs[index]}"


def bytes_size(size: float) -> str:
    """go-units ``BytesSize``: ``268435456`` -> ``256MiB``."""
    return _custom_size(size, 1024.0, ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"])


def human_size(size: float) -> str:
    """go-units ``HumanSize``: decimal units, ``1.5MB``."""
    return _custom_size(size, 1000.0, ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"])


def _go_g(value: float, precision: int) -> str:
    return f"{value:.{precision}g}"


def parse_cpus(text: str) -> int:
    """docker's ``ParseCPUs``: ``0.5`` -> 500000000 NanoCPUs (exact rational arithmetic)."""
    try:
        value = Fraction(text.strip()) if text.strip() else None
    except (ValueError, ZeroDivisionError):
        value = None
    if value is None:
        raise ValueError(f"failed to parse {text} as a rational number")
    nano = value * 1_000_000_000
    if nano.denominator != 1:
        raise ValueError("value is too precise")
    return int(nano)


def _base0(text: str) -> int:
    body = text.replace("_", "") if "_" in text and not text.startswith("_") else text
    if re.fullmatch(r"0[0-7]+", body):
        return int(body, 8)
    return int(body, 0)


def parse_uint(text: str, bits: int = 64, *, base: int = 0) -> int:
    """Go's ``strconv.ParseUint(text, base, bits)``."""
    if not re.fullmatch(r"[+]?[0-9a-fA-FxXoObB_]+", text) or text.startswith("+"):
        raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax')
    try:
        value = _base0(text) if base == 0 else int(text, base)
    except ValueError:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax') from None
    if value > (1 << bits) - 1:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": value out of range')
    return value


def parse_int(text: str, bits: int = 64) -> int:
    """Go's ``strconv.ParseInt(text, 0, bits)``."""
    body = text[1:] if text[:1] in "+-" else text
    try:
        value = _base0(body) if body and re.fullmatch(r"[0-9a-fA-FxXoObB_]+", body) else None
    except ValueError:
        value = None
    if value is None:
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
    value = -value if text.startswith("-") else value
    if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
        raise ValueError(f'strconv.ParseInt: parsing "{text}": value out of range')
    return value


def parse_float(text: str, bits: int = 64) -> float:
    """Go's ``strconv.ParseFloat``."""
    try:
        if not re.fullmatch(
            r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|infinity|nan)", text, re.IGNORECASE
        ):
            raise ValueError
        value = float(text)
    except ValueError:
        raise ValueError(f'strconv.ParseFloat: parsing "{text}": invalid syntax') from None
    if bits == 32:
        import struct

        try:
            value = struct.unpack("f", struct.pack("f", value))[0]
        except OverflowError:
            raise ValueError(f'strconv.ParseFloat: parsing "{text}": value out of range') from None
    return value


def parse_bool(text: str) -> bool:
    """Go's ``strconv.ParseBool``."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


MAX_UINT64 = _MAX_UINT64
