"""The unlock key: Docker's text form, wrapping, and the node key file encrypted under a password."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from shoal.errors import InvalidArgument, Unauthenticated, Unavailable
from shoal.manager.bootstrap import new_swarm
from shoal.model.requests import InitRequest
from shoal.pki.identity import NODE_KEY_FILE, NodeIdentity, key_is_encrypted
from shoal.pki.unlockkey import LOCKED, PREFIX, InvalidUnlockKey, SwarmLocked, UnlockKey


def test_text_is_swarmkits_and_parses_back() -> None:
    key = UnlockKey.generate()
    text = key.text
    assert text.startswith("SWMKEY-1-") and PREFIX == "SWMKEY-1-"
    assert len(text) == len(PREFIX) + 43 and "=" not in text  # raw base64 of 32 bytes
    assert UnlockKey.parse(text) == key and UnlockKey.parse(f"  {text}\n") == key
    assert key.same_as(UnlockKey.parse(text)) and not key.same_as(UnlockKey.generate())
    assert not key.same_as(None)
    assert text not in repr(key)


@pytest.mark.parametrize("text", [
    "", "SWMKEY-1-", "SWMTKN-1-abc", "swmkey-1-" + "A" * 43, "SWMKEY-1-" + "!" * 43,
    "SWMKEY-1-" + base64.b64encode(b"x" * 16).decode().rstrip("="),  # not 32 bytes
    "SWMKEY-1-" + base64.b64encode(b"x" * 32).decode() + "=",  # padded: swarmkit's RawStd refuses
])
def test_bad_key_strings_are_refused(text: str) -> None:
    with pytest.raises(InvalidArgument, match="^invalid key string$") as info:
        UnlockKey.parse(text)
    assert info.value.status == 400


def test_wrap_and_unwrap() -> None:
    key = UnlockKey.generate()
    wrapped = key.wrap(b"the store DEK", context="here")
    assert b"the store DEK" not in base64.b64decode(wrapped)
    assert key.unwrap(wrapped, context="here") == b"the store DEK"
    assert key.wrap(b"same", context="here") != key.wrap(b"same", context="here")  # fresh nonce


def test_a_wrong_key_or_place_is_dockers_invalid_key() -> None:
    key = UnlockKey.generate()
    wrapped = key.wrap(b"secret", context="here")
    for other, context in ((UnlockKey.generate(), "here"), (key, "elsewhere")):
        with pytest.raises(InvalidUnlockKey) as info:
            other.unwrap(wrapped, context=context)
        assert isinstance(info.value, Unauthenticated) and info.value.status == 401
        assert info.value.message == "swarm could not be unlocked: invalid key provided"
    with pytest.raises(InvalidUnlockKey):
        key.unwrap("not base64!", context="here")


def test_locked_is_dockers_503() -> None:
    exc = SwarmLocked()
    assert isinstance(exc, Unavailable) and exc.status == 503 and exc.message == LOCKED
    assert LOCKED == ('Swarm is encrypted and needs to be unlocked before it can be used. '
                      'Please use "docker swarm unlock" to unlock it.')


def test_node_key_encrypted_on_disk(tmp_path: Path) -> None:
    identity = asyncio.run(new_swarm(InitRequest(), hostname="h", advertise_ip="127.0.0.1",
                         manager_addr="127.0.0.1:2377")).identity
    identity.save(tmp_path, key_password=b"p" * 32)
    text = (tmp_path / NODE_KEY_FILE).read_text()
    assert text.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----") and key_is_encrypted(tmp_path)
    with pytest.raises(SwarmLocked):
        NodeIdentity.load(tmp_path)
    with pytest.raises(InvalidArgument, match="cannot be decrypted"):
        NodeIdentity.load(tmp_path, key_password=b"q" * 32)
    loaded = NodeIdentity.load(tmp_path, key_password=b"p" * 32)
    assert loaded is not None and loaded.node_id == identity.node_id
    assert "ENCRYPTED" not in loaded.key_pem  # in memory, in clear
    identity.save(tmp_path)
    assert not key_is_encrypted(tmp_path) and NodeIdentity.load(tmp_path) is not None
    # A clear key also loads when a password is given (a half-done turning on of autolock).
    assert NodeIdentity.load(tmp_path, key_password=b"p" * 32) is not None
    assert not key_is_encrypted(tmp_path / "none")
