"""``X-Registry-Auth``: the registry credentials a client sends with a pull or a service create.

The value is base64url (padding optional) JSON, as the docker CLI and docker-py encode it:
``{"username", "password", "serveraddress", "identitytoken"?, "auth"?}``. An empty value and
``e30=`` (``{}``) mean "no credentials". ``auth`` (base64 ``user:password``, as in
``~/.docker/config.json``) is accepted when username/password are absent.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from shoal.errors import InvalidArgument

__all__ = ["RegistryAuth", "decode_registry_auth"]


@dataclass(frozen=True, slots=True)
class RegistryAuth:
    username: str = ""
    password: str = ""
    server_address: str = ""
    identity_token: str = ""

    @property
    def credentials(self) -> tuple[str, str] | None:
        """(user, password) for the registry client; None when there is nothing to send. An
        identity token (an OAuth refresh token) is not supported by the registry client: it is
        sent as basic credentials with the user ``<token>``, which is what registries that
        accept it as a password expect."""
        if self.username or self.password:
            return self.username, self.password
        if self.identity_token:
            return "<token>", self.identity_token
        return None


def _b64(value: str) -> bytes:
    value = value.strip().replace("+", "-").replace("/", "_")
    value += "=" * (-len(value) % 4)
    return base64.urlsafe_b64decode(value)


def decode_registry_auth(header: str) -> RegistryAuth:
    """The credentials in an X-Registry-Auth value; InvalidArgument if it is malformed."""
    if not header or not header.strip():
        return RegistryAuth()
    try:
        doc = json.loads(_b64(header))
    except (binascii.Error, ValueError) as exc:
        raise InvalidArgument(f"invalid X-Registry-Auth header: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid X-Registry-Auth header: not a JSON object")
    fields = {str(k).lower(): v for k, v in doc.items() if isinstance(v, str)}
    username, password = fields.get("username", ""), fields.get("password", "")
    if not username and not password and fields.get("auth"):
        try:
            username, _, password = _b64(fields["auth"]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"invalid X-Registry-Auth header: auth: {exc}") from exc
    return RegistryAuth(username=username, password=password,
                        server_address=fields.get("serveraddress", ""),
                        identity_token=fields.get("identitytoken", ""))
