"""Go value parsing and printing: durations, sizes, CPUs, numbers, ages."""

from __future__ import annotations

import pytest

from shoal.cli.format import units
from shoal.cli.format.timefmt import ansic, go_time_string, human_duration, parse_timestamp

S = 1_000_000_000


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        ("5s", 5 * S),
        ("1h30m", 5400 * S),
        ("1.5s", 1_500_000_000),
        ("300ms", 300_000_000),
        ("0", 0),
        ("10m", 600 * S),
        ("2160h", 7_776_000 * S),
        ("1us", 1000),
        ("1µs", 1000),
        ("-3s", -3 * S),
    ],
)
def test_parse_duration(text: str, nanoseconds: int) -> None:
    assert units.parse_duration(text) == nanoseconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", 'time: invalid duration "abc"'),
        ("10", 'time: missing unit in duration "10"'),
        ("10x", 'time: unknown unit "x" in duration "10x"'),
        ("", 'time: invalid duration ""'),
    ],
)
def test_parse_duration_errors_read_like_go(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        units.parse_duration(text)


@pytest.mark.parametrize(
    ("nanoseconds", "text"),
    [
        (0, "0s"),
        (999, "999ns"),
        (1500, "1.5µs"),
        (1_500_000, "1.5ms"),
        (5 * S, "5s"),
        (90 * S, "1m30s"),
        (3600 * S, "1h0m0s"),
        (7_776_000 * S, "2160h0m0s"),
    ],
)
def test_format_duration(nanoseconds: int, text: str) -> None:
    assert units.format_duration(nanoseconds) == text


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("256M", 268435456),
        ("128m", 134217728),
        ("1g", 1073741824),
        ("1.5G", 1610612736),
        ("512kb", 524288),
        ("128 MiB", 134217728),
        ("100", 100),
        ("1b", 1),
    ],
)
def test_ram_in_bytes(text: str, size: int) -> None:
    assert units.ram_in_bytes(text) == size


@pytest.mark.parametrize(
    ("text", "message"), [("x", "invalid size: 'x'"), ("10q", "invalid suffix: 'q'")]
)
def test_ram_in_bytes_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        units.ram_in_bytes(text)


def test_cpus_are_exact_nanocpus() -> None:
    assert units.parse_cpus("0.5") == 500_000_000
    assert units.parse_cpus("0.25") == 250_000_000
    assert units.parse_cpus("2") == 2_000_000_000
    with pytest.raises(ValueError, match="value is too precise"):
        units.parse_cpus("0.0000000001")
    with pytest.raises(ValueError, match="failed to parse x as a rational number"):
        units.parse_cpus("x")


def test_uint_like_strconv() -> None:
    assert units.parse_uint("3") == 3
    assert units.parse_uint("0x10") == 16
    assert units.parse_uint("017") == 15
    for bad in ("abc", "-1", ""):
        with pytest.raises(ValueError, match=f'strconv.ParseUint: parsing "{bad}": invalid syntax'):
            units.parse_uint(bad)
    with pytest.raises(ValueError, match="value out of range"):
        units.parse_uint("70000", 16, base=10)


def test_bool_like_strconv() -> None:
    assert units.parse_bool("true") and units.parse_bool("1") and units.parse_bool("T")
    assert not units.parse_bool("false") and not units.parse_bool("0")
    with pytest.raises(ValueError, match='strconv.ParseBool: parsing "maybe": invalid syntax'):
        units.parse_bool("maybe")


def test_sizes_print_like_go_units() -> None:
    assert units.bytes_size(268435456) == "256MiB"
    assert units.bytes_size(1.5 * 1024**3) == "1.5GiB"
    assert units.bytes_size(1000) == "1000B"


def test_floats_print_like_go() -> None:
    assert [units.go_float(x) for x in (0.5, 1.0, 1e6, 123456.0, 1e-5, 0.0)] == [
        "0.5",
        "1",
        "1e+06",
        "123456",
        "1e-05",
        "0",
    ]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.5, "Less than a second"),
        (1, "1 second"),
        (5, "5 seconds"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (125, "2 minutes"),
        (3600, "About an hour"),
        (3 * 3600, "3 hours"),
        (3 * 86400, "3 days"),
        (20 * 86400, "2 weeks"),
        (90 * 86400, "3 months"),
        (800 * 86400, "2 years"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(int(seconds * S)) == text


def test_timestamps() -> None:
    base = parse_timestamp("2024-05-01T10:00:00Z")
    assert base is not None and base == 1714557600 * S
    assert parse_timestamp("2024-05-01T10:00:00.123456789Z") == base + 123456789
    assert parse_timestamp("2024-05-01T12:00:00+02:00") == base
    assert parse_timestamp("2024-05-01T10:00:00") is None  # no zone: not RFC 3339
    assert go_time_string(base + 871882000) == "2024-05-01 10:00:00.871882 +0000 UTC"
    assert ansic(base) == "Wed May  1 10:00:00 2024"
