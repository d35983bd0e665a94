"""Variable substitution as docker's compose template package does it."""

from __future__ import annotations

import pytest

from shoal.cli.compose.interpolate import InterpolationError, interpolate, substitute

ENV = {"TAG": "1.2", "EMPTY": "", "name": "low"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nginx:$TAG", "nginx:1.2"),
        ("nginx:${TAG}", "nginx:1.2"),
        ("${UNSET}", ""),
        ("${UNSET:-d}", "d"),
        ("${EMPTY:-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${UNSET-d}", "d"),
        ("${TAG:-d}", "1.2"),
        ("$$TAG costs $$5", "$TAG costs $5"),
        ("${name}", "low"),
        ("a ${UNSET:-with space} b", "a with space b"),
        ("${TAG?oops}", "1.2"),
    ],
)
def test_substitute(text: str, expected: str) -> None:
    assert substitute(text, ENV) == expected


def test_required_variables() -> None:
    with pytest.raises(InterpolationError, match="required variable UNSET is missing a value: say"):
        substitute("${UNSET:?say}", ENV)
    with pytest.raises(InterpolationError, match="required variable EMPTY"):
        substitute("${EMPTY:?}", ENV)
    assert substitute("${EMPTY?}", ENV) == ""


def test_invalid_template_names_the_path() -> None:
    with pytest.raises(InterpolationError) as info:
        interpolate({"services": {"web": {"image": "a${"}}}, ENV)
    assert str(info.value) == (
        'invalid interpolation format for services.web.image: "a${"; you may need to escape '
        "any $ with another $"
    )


def test_interpolate_walks_values_not_keys() -> None:
    data = {"$TAG": ["${TAG}", 3, None, {"k": "$TAG"}]}
    assert interpolate(data, ENV) == {"$TAG": ["1.2", 3, None, {"k": "1.2"}]}
