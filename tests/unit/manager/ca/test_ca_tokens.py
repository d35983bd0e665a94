"""Join tokens: format, digest check, rotation, matching, malformed tokens."""

from __future__ import annotations

import re

import pytest

from shoal.errors import InvalidArgument
from shoal.manager.ca import RootCA
from shoal.pki import digest_matches, generate_token, match_token, parse_token


def test_format(root: RootCA) -> None:
    token = generate_token(root.digest)
    assert len(token) == 85
    assert re.fullmatch(r"SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}", token)
    parsed = parse_token(token)
    assert parsed.version == "1"
    assert int(parsed.digest_b36, 36) == int.from_bytes(root.digest, "big")
    assert parsed.digest == root.digest
    assert len(parsed.secret) == 25


def test_digest_matches_only_its_ca(root: RootCA) -> None:
    token = generate_token(root.digest)
    assert digest_matches(token, root.cert_pem)
    assert digest_matches(token, root.cert_pem.encode())
    assert not digest_matches(token, RootCA.create().cert_pem)
    assert not digest_matches(token, "not a certificate")


def test_rotation_changes_only_the_secret(root: RootCA) -> None:
    first, second = generate_token(root.digest), generate_token(root.digest)
    assert first != second
    assert parse_token(first).digest_b36 == parse_token(second).digest_b36
    assert parse_token(first).secret != parse_token(second).secret
    other = generate_token(RootCA.create().digest)
    assert parse_token(other).digest_b36 != parse_token(first).digest_b36


def test_match_token(root: RootCA) -> None:
    worker, manager = generate_token(root.digest), generate_token(root.digest)
    assert match_token(worker, worker, manager) == "worker"
    assert match_token(manager, worker, manager) == "manager"
    assert match_token(f"  {manager}\n", worker, manager) == "manager"
    assert match_token(generate_token(root.digest), worker, manager) is None
    assert match_token(worker[:-1] + ("0" if worker[-1] != "0" else "1"), worker, manager) is None
    assert match_token("", "", None) is None
    assert match_token(worker, None, None) is None


def test_generate_needs_a_sha256_digest() -> None:
    with pytest.raises(InvalidArgument):
        generate_token(b"short")


_GOOD = "SWMTKN-1-" + "1" * 50 + "-" + "b" * 25


@pytest.mark.parametrize(
    "token",
    [
        "",
        "SWMTKN",
        "SWMTKN-1-abc-def",
        _GOOD.replace("SWMTKN", "SWMTKM"),
        _GOOD.replace("-1-", "-2-"),
        "SWMTKN-2-1-" + "a" * 50 + "-" + "b" * 25,
        _GOOD.upper(),
        _GOOD + "c",
        _GOOD[:-1],
        _GOOD + "-extra",
        "SWMTKN-1-" + "a" * 49 + "!-" + "b" * 25,
        "SWMTKN-1-" + "z" * 50 + "-" + "b" * 25,  # larger than any sha256
    ],
)
def test_malformed_tokens(token: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid join token"):
        parse_token(token)
    with pytest.raises(InvalidArgument, match="invalid join token"):
        digest_matches(token, "")


def test_well_formed_token_parses() -> None:
    assert parse_token(_GOOD).secret == "b" * 25
