"""The gossip protocol's messages and their encryption (see gossip.py for the protocol).

Every UDP datagram and every TCP frame is ``VERSION (1 byte) | nonce (12) | AES-GCM ciphertext``
of one msgpack-encoded message (msgspec structs, array-like so field names are not sent; one
holding what no node sends, a name too long, a port past 65535, a clock past ``MAX_CLOCK``, is
refused like one that does not decode). The
keyring encrypts with its first key and tries every key to decrypt, so a key rotation works by
installing the new key everywhere before dropping the old one; anything that fails to decrypt or
decode is dropped by the caller and counted.

Message types (tag: name, size):

- 1 ``Ping`` / 2 ``Ack``: the SWIM probe and its answer, with piggybacked member and entry updates
  filling the datagram up to the packet size (1400 bytes by default);
- 3 ``PingReq``: "probe this member for me" (indirect probe), about 60 bytes;
- 4 ``Gossip``: piggybacked updates only, sent every gossip interval to a few members;
- 5 ``SyncRequest`` / 6 ``SyncReply`` / 7 ``SyncEntries``: push-pull anti-entropy over one TCP
  connection (length-prefixed frames of at most ``MAX_FRAME``, the first ``MAX_REQUEST_FRAME``): the initiator's members and
  entry digest, the answer's members, the entries the initiator lacks and the keys it wants, then
  those entries.
"""

from __future__ import annotations

import ipaddress
import os
import struct
from enum import IntEnum

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "AAD",
    "MAX_CLOCK",
    "MAX_FRAME",
    "MAX_NAME",
    "MAX_REQUEST_FRAME",
    "MAX_VALUE",
    "OVERHEAD",
    "Ack",
    "DigestItem",
    "EntryMsg",
    "Gossip",
    "Keyring",
    "MemberMsg",
    "Message",
    "Ping",
    "PingReq",
    "State",
    "SyncEntries",
    "SyncReply",
    "SyncRequest",
    "decode",
    "encode",
    "frame_header",
    "read_frame_length",
]

VERSION = 1
AAD = b"shoal-gossip-1"
NONCE = 12
TAG = 16
OVERHEAD = 1 + NONCE + TAG  # bytes added to a message by the encryption
# A push-pull frame: memberlist's maxPushStateBytes. An entry is at most about 1.3 KB (the names
# and value below), an endpoint record about 300 bytes: tens of thousands of endpoints fit.
MAX_FRAME = 20 * 1024 * 1024
# The first frame of a connection served, read before its sender has shown it holds a key: the
# members and the digest (about 100 bytes an entry), not the entries. What a stranger can make a
# node buffer is this, times ``GossipConfig.max_push_pulls`` connections, for ``tcp_timeout``.
MAX_REQUEST_FRAME = 4 * 1024 * 1024
# An entry's value, its table's and key's names and a node ID: small enough that any entry rides in
# one datagram with the message's headers.
MAX_VALUE = 1000
MAX_NAME = 100
KEY_SIZES = (16, 24, 32)
# Incarnations and entry versions are Lamport clocks that only count up by one: a value past this
# comes from a broken or hostile peer, and adopting it would soon overflow msgpack's 64 bits (the
# node could then encode none of its messages).
MAX_CLOCK = 2**62


class State(IntEnum):
    ALIVE = 0
    SUSPECT = 1
    DEAD = 2
    LEFT = 3


class MemberMsg(msgspec.Struct, array_like=True, frozen=True):
    """What one node says about a member: its address, incarnation and state."""

    id: str
    host: str
    port: int
    inc: int
    state: State


class EntryMsg(msgspec.Struct, array_like=True, frozen=True):
    """One table entry; ``value is None`` is a tombstone (a delete)."""

    table: str
    key: str
    value: bytes | None
    owner: str
    version: int


class DigestItem(msgspec.Struct, array_like=True, frozen=True):
    table: str
    key: str
    owner: str
    version: int
    deleted: bool


class Ping(msgspec.Struct, tag=1, array_like=True):
    seq: int
    src: str
    target: str
    members: list[MemberMsg] = []
    entries: list[EntryMsg] = []


class Ack(msgspec.Struct, tag=2, array_like=True):
    seq: int
    src: str
    members: list[MemberMsg] = []
    entries: list[EntryMsg] = []


class PingReq(msgspec.Struct, tag=3, array_like=True):
    seq: int
    src: str
    target: str
    host: str
    port: int


class Gossip(msgspec.Struct, tag=4, array_like=True):
    src: str
    members: list[MemberMsg] = []
    entries: list[EntryMsg] = []


class SyncRequest(msgspec.Struct, tag=5, array_like=True):
    src: str
    members: list[MemberMsg]
    digest: list[DigestItem]


class SyncReply(msgspec.Struct, tag=6, array_like=True):
    src: str
    members: list[MemberMsg]
    entries: list[EntryMsg]
    want: list[tuple[str, str]]


class SyncEntries(msgspec.Struct, tag=7, array_like=True):
    src: str
    entries: list[EntryMsg]


Message = Ping | Ack | PingReq | Gossip | SyncRequest | SyncReply | SyncEntries

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)


def check_keys(keys: list[bytes]) -> list[bytes]:
    if not keys:
        raise ValueError("gossip needs at least one key")
    for key in keys:
        if len(key) not in KEY_SIZES:
            raise ValueError(f"a gossip key is 16, 24 or 32 bytes, not {len(key)}")
    return list(keys)


class Keyring:
    """AES-GCM keys: the first encrypts, every one may decrypt."""

    def __init__(self, keys: list[bytes]) -> None:
        self._ciphers = [AESGCM(k) for k in check_keys(keys)]

    def set_keys(self, keys: list[bytes]) -> None:
        self._ciphers = [AESGCM(k) for k in check_keys(keys)]

    def seal(self, plain: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return bytes([VERSION]) + nonce + self._ciphers[0].encrypt(nonce, plain, AAD)

    def open(self, sealed: bytes) -> bytes | None:
        """The plaintext, or None when no key opens it (or it is not ours)."""
        if len(sealed) < OVERHEAD or sealed[0] != VERSION:
            return None
        nonce, body = sealed[1:1 + NONCE], sealed[1 + NONCE:]
        for cipher in self._ciphers:
            try:
                return cipher.decrypt(nonce, body, AAD)
            except InvalidTag:
                continue
        return None


def encode(msg: Message | MemberMsg | EntryMsg) -> bytes:
    return _encoder.encode(msg)


def decode(plain: bytes) -> Message | None:
    """The message, or None when it does not decode or holds what no node sends (a newer or
    broken peer): see ``_valid``."""
    try:
        msg: Message = _decoder.decode(plain)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return msg if _valid(msg) else None


def _name(text: str) -> bool:
    return 0 < len(text) <= MAX_NAME


def _addr(host: str, port: int) -> bool:
    """An address the node will send to: an IP (never a name to resolve) and a port."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return 0 < port < 65536


def _member(m: MemberMsg) -> bool:
    return _name(m.id) and _addr(m.host, m.port) and 0 <= m.inc < MAX_CLOCK


def _entry(e: EntryMsg) -> bool:
    return (_name(e.table) and _name(e.key) and _name(e.owner) and 0 <= e.version < MAX_CLOCK
            and (e.value is None or len(e.value) <= MAX_VALUE))


def _valid(msg: Message) -> bool:
    """What a node's own ``set`` and config allow: names of 1 to MAX_NAME characters, values of at
    most MAX_VALUE bytes, IP addresses and ports, clocks below MAX_CLOCK. A member with a port past
    65535 would make the UDP transport fail for good at the first probe."""
    if not _name(msg.src):
        return False
    if isinstance(msg, PingReq):
        return _name(msg.target) and _addr(msg.host, msg.port)
    members = getattr(msg, "members", [])
    entries = getattr(msg, "entries", [])
    if isinstance(msg, SyncRequest):
        entries = []
        if not all(_name(d.table) and _name(d.key) and _name(d.owner) and 0 <= d.version < MAX_CLOCK
                   for d in msg.digest):
            return False
    if isinstance(msg, SyncReply) and not all(_name(t) and _name(k) for t, k in msg.want):
        return False
    return all(_member(m) for m in members) and all(_entry(e) for e in entries)


_LEN = struct.Struct("!I")


def frame_header(size: int) -> bytes:
    return _LEN.pack(size)


def read_frame_length(header: bytes) -> int:
    return int(_LEN.unpack(header)[0])
