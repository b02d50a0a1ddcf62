"""Public ids: type-prefixed, time-ordered 128-bit ids stored as native uuids.

A public id is `{prefix}_{26 Crockford base32 characters}` (the ULID alphabet) over the 128 bits
of an RFC 9562 UUIDv7, e.g. `inv_01JD6N8Q6Z7T3M3Y5C4V8R2K1P`. Encoded ids sort like the uuids,
which sort by creation time.
"""

from __future__ import annotations

import base64
import re
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from types import MappingProxyType

from service.kit.errors import DomainError, invalid

PREFIXES: Mapping[str, str] = MappingProxyType(
    {
        "invoice": "inv",
        "allocation": "alc",
        "transaction": "txn",
        "exchange_rate": "fxr",
        "connection": "con",
        "provenance": "prv",
    }
)

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ENCODED_LENGTH = 26
_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ALPHABET.encode())
_CHECKED_PREFIXES: set[str] = set()

_DECODE: Mapping[str, int] = MappingProxyType(
    {char: index for index, char in enumerate(ALPHABET)}
    | {char.lower(): index for index, char in enumerate(ALPHABET)}
)
_PREFIX_SHAPE = re.compile(r"[a-z][a-z0-9]*")
_UUID_SHAPE = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")

_MAX_MS = (1 << 48) - 1
_RANDOM_BITS = 74  # 12 bits of rand_a, then 62 bits of rand_b
_RAND_B_BITS = 62
_MAX_STEP = 1 << 32


class _Monotonic:
    """The last (ms, random) pair handed out by this process, so ids never go backwards."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last_ms = -1
        self.last_random = 0

    def next(self, now_ms: int) -> tuple[int, int]:
        with self.lock:
            if now_ms > self.last_ms:
                self.last_ms, self.last_random = now_ms, _random_field()
            else:
                self._step()
            return self.last_ms, self.last_random

    def _step(self) -> None:
        """Same or earlier millisecond: keep the last one and add a random increment."""
        self.last_random += 1 + secrets.randbelow(_MAX_STEP)
        if self.last_random >> _RANDOM_BITS:
            self.last_ms, self.last_random = self.last_ms + 1, _random_field()


_STATE = _Monotonic()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _random_field() -> int:
    """74 random bits with the top one clear, leaving room for increments within one ms."""
    return secrets.randbits(_RANDOM_BITS - 1)


def new_uuid7(now_ms: int | None = None) -> uuid.UUID:
    """An RFC 9562 UUIDv7: 48-bit unix ms timestamp, version 7, variant 10, 74 random bits.

    Without `now_ms`, ids from this process are strictly increasing (RFC 9562 section 6.2,
    monotonic random). With it, the id is that millisecond plus fresh random bits.
    """
    if now_ms is None:
        ms, random_field = _STATE.next(_now_ms())
    else:
        ms, random_field = now_ms, secrets.randbits(_RANDOM_BITS)
    if not 0 <= ms <= _MAX_MS:
        raise ValueError(f"timestamp {ms} ms does not fit in 48 bits")
    rand_a, rand_b = random_field >> _RAND_B_BITS, random_field & ((1 << _RAND_B_BITS) - 1)
    return uuid.UUID(int=ms << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b)


def encode_id(prefix: str, value: uuid.UUID) -> str:
    """`inv_` + the 128 bits as 26 uppercase Crockford base32 characters."""
    if prefix not in _CHECKED_PREFIXES:
        if _PREFIX_SHAPE.fullmatch(prefix) is None:
            raise ValueError(f"invalid id prefix {prefix!r}")
        _CHECKED_PREFIXES.add(prefix)
    # 26 characters x 5 bits = 130 bits: shifting the 128 bits left by 6 into 17 bytes
    # makes the standard base32 encoder (C) emit exactly those groups, which are then
    # translated to the Crockford alphabet.
    encoded = base64.b32encode((value.int << 6).to_bytes(17, "big"))[:ENCODED_LENGTH]
    return f"{prefix}_{encoded.translate(_TO_CROCKFORD).decode()}"


def decode_id(text: str, prefix: str, field_path: str) -> uuid.UUID:
    """A public id with exactly `prefix` -> its uuid. The base32 part is case-insensitive."""
    head = f"{prefix}_"
    if not text.startswith(head):
        raise _invalid_id(field_path, prefix, f"must be an id starting with {head!r}")
    body = text[len(head) :]
    if len(body) != ENCODED_LENGTH:
        raise _invalid_id(
            field_path, prefix, f"must have {ENCODED_LENGTH} characters after {head!r}"
        )
    number = 0
    for char in body:
        digit = _DECODE.get(char)
        if digit is None:
            raise _invalid_id(field_path, prefix, "contains a character outside Crockford base32")
        number = number << 5 | digit
    if number >> 128:
        raise _invalid_id(field_path, prefix, "is out of range (first character above 7)")
    return uuid.UUID(int=number)


def _invalid_id(field_path: str, prefix: str, description: str) -> DomainError:
    return invalid(field_path, description, reason="INVALID_ID", expectedPrefix=prefix)


def new_id(prefix: str) -> tuple[uuid.UUID, str]:
    """A fresh UUIDv7 and its public form."""
    value = new_uuid7()
    return value, encode_id(prefix, value)


def parse_uuid(text: str, field_path: str, *, empty_ok: bool = True) -> uuid.UUID | None:
    """An external reference in canonical 36-character form (any hex case); "" -> None."""
    if text == "":
        if empty_ok:
            return None
        raise invalid(field_path, "is required", reason="REQUIRED")
    if _UUID_SHAPE.fullmatch(text) is None:
        raise invalid(
            field_path,
            "must be a uuid like 123e4567-e89b-12d3-a456-426614174000",
            reason="INVALID_UUID",
        )
    return uuid.UUID(text)
