"""X-Registry-Auth decoding, as lenient as the docker CLI's and docker-py's encodings need."""

from __future__ import annotations

import base64
import json

import pytest

from shoal.errors import InvalidArgument
from shoal.image.auth import decode_registry_auth


def _header(doc: dict[str, str], *, pad: bool = True) -> str:
    value = base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()
    return value if pad else value.rstrip("=")


def test_registry_auth_is_decoded_leniently() -> None:
    auth = decode_registry_auth(_header({"username": "alice", "password": "s3cr=t/+",
                                         "serveraddress": "127.0.0.1:5000"}, pad=False))
    assert auth.credentials == ("alice", "s3cr=t/+") and auth.server_address == "127.0.0.1:5000"
    assert decode_registry_auth("").credentials is None
    assert decode_registry_auth("e30=").credentials is None and decode_registry_auth("e30").credentials is None
    legacy = decode_registry_auth(_header({"auth": base64.b64encode(b"bob:pw").decode()}))
    assert legacy.credentials == ("bob", "pw")
    assert decode_registry_auth(_header({"identitytoken": "tok"})).credentials == ("<token>", "tok")
    with pytest.raises(InvalidArgument, match="X-Registry-Auth"):
        decode_registry_auth("!!!not base64 json")
