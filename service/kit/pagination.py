"""Keyset pagination (AIP-158): page sizes, one sort field plus the id, signed cursors."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import ColumnElement

from service.kit import errors
from service.kit.errors import DomainError
from service.kit.filtering import FieldType

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_DIRECTIONS = {"asc": False, "desc": True}
_MAX_TOKEN_LENGTH = 4096
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_T = TypeVar("_T")


def parse_limit(value: int, *, field_path: str = "limit") -> int:
    """0 means the default; above the maximum is coerced to it (AIP-158)."""
    if value < 0:
        raise errors.invalid(field_path, "must not be negative", reason="INVALID_LIMIT")
    return min(value, MAX_LIMIT) if value else DEFAULT_LIMIT


@dataclass(frozen=True)
class SortField:
    name: str
    column: ColumnElement[Any]
    type: FieldType
    nullable: bool = False


def parse_order(
    order_by: str,
    direction: str,
    sortable: Mapping[str, SortField],
    *,
    default: str,
    field_path: str = "order_by",
) -> tuple[SortField, bool]:
    """Return the sort field and whether it is descending (the default)."""
    name, suffix = _split_order_by(order_by, default)
    sort = sortable.get(name)
    if sort is None:
        raise errors.invalid(
            field_path,
            f"unknown sort field {name[:64]!r}; sortable fields: {', '.join(sorted(sortable))}",
            reason="UNKNOWN_ORDER_FIELD",
            orderField=name[:64],
        )
    explicit = _parse_direction(direction)
    if suffix is not None and explicit is not None and suffix != explicit:
        raise errors.invalid(
            "direction", "contradicts the direction in order_by", reason="CONFLICTING_DIRECTION"
        )
    return sort, next((d for d in (suffix, explicit) if d is not None), True)


def _split_order_by(order_by: str, default: str) -> tuple[str, bool | None]:
    """`name` or AIP-132 `name asc|desc`; one field only (the id is appended anyway)."""
    if "," in order_by:
        raise errors.invalid(
            "order_by", "only one sort field is supported", reason="UNSUPPORTED_ORDER_BY"
        )
    words = order_by.split()
    if not words:
        return default, None
    if len(words) == 1:
        return words[0], None
    if len(words) == 2 and words[1].lower() in _DIRECTIONS:
        return words[0], _DIRECTIONS[words[1].lower()]
    raise errors.invalid(
        "order_by", 'expected "<field>" or "<field> asc|desc"', reason="INVALID_ORDER_BY"
    )


def _parse_direction(direction: str) -> bool | None:
    key = direction.strip().lower()
    if not key:
        return None
    if key not in _DIRECTIONS:
        raise errors.invalid("direction", "must be asc or desc", reason="INVALID_DIRECTION")
    return _DIRECTIONS[key]


def order_clauses(
    sort: SortField, descending: bool, id_column: ColumnElement[Any]
) -> list[ColumnElement[Any]]:
    """ORDER BY sort NULLS LAST, id. NULLS LAST only when nullable, so that a plain
    (sort, id) btree index still serves DESC on non-nullable columns."""
    column = sort.column.desc() if descending else sort.column.asc()
    first = column.nulls_last() if sort.nullable else column
    return [first, id_column.desc() if descending else id_column.asc()]


def keyset_after(
    sort: SortField,
    descending: bool,
    id_column: ColumnElement[Any],
    last_value: Any,
    last_id: uuid.UUID | ColumnElement[Any],
) -> ColumnElement[bool]:
    """Rows strictly after (last_value, last_id) in the order of `order_clauses`.

    Either value may be a bind parameter (for statements compiled once per shape); a
    None last_value selects the branch for rows whose sort value is NULL.
    """
    column = sort.column
    after_id = id_column < last_id if descending else id_column > last_id
    if last_value is None:
        return sa.and_(column.is_(None), after_id)
    value = _bound(last_value, column)
    if not sort.nullable:
        row = sa.tuple_(column, id_column)
        last = sa.tuple_(value, _bound(last_id, id_column))
        return row < last if descending else row > last
    beyond = column < value if descending else column > value
    return sa.or_(column.is_(None), beyond, sa.and_(column == value, after_id))


def _bound(value: Any, column: ColumnElement[Any]) -> ColumnElement[Any]:
    if isinstance(value, sa.ColumnElement):
        return value
    return sa.literal(value, column.type)


class CursorCodec:
    """Opaque page tokens: `base64url(payload).base64url(hmac)`, bound to one query.

    The payload is compact JSON {v: last sort value, i: last id hex, s: sort field,
    t: issued at}. The HMAC covers the query fingerprint too, so a token replayed with
    another filter or order fails verification.
    """

    def __init__(
        self,
        secret: bytes,
        *,
        max_age_seconds: int = 3 * 86400,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not secret:
            raise ValueError("the cursor secret must not be empty")
        self._secret = secret
        self._max_age = max_age_seconds
        self._now = now

    def encode(
        self, *, query_fingerprint: bytes, sort: SortField, last_value: Any, last_id: uuid.UUID
    ) -> str:
        value, issued = _encode_value(last_value), int(self._now())
        body = {"v": value, "i": last_id.hex, "s": sort.name, "t": issued}
        payload = json.dumps(body, separators=(",", ":")).encode()
        signature = self._sign(query_fingerprint, payload)
        return f"{_b64encode(payload)}.{_b64encode(signature)}"

    def decode(
        self, token: str, *, query_fingerprint: bytes, sort: SortField, field_path: str = "cursor"
    ) -> tuple[Any, uuid.UUID]:
        """Verify `token` for this query and sort; return (last_value, last_id)."""
        payload = self._verified(token, query_fingerprint, field_path)
        raw_value, last_id, sort_name, issued = _parse_payload(payload, field_path)
        if sort_name != sort.name:
            raise errors.invalid(
                field_path, "cursor was made for another sort order", reason="CURSOR_MISMATCH"
            )
        if self._now() - issued > self._max_age:
            raise errors.invalid(field_path, "cursor has expired", reason="CURSOR_EXPIRED")
        return _decode_value(raw_value, sort.type, field_path), last_id

    def _verified(self, token: str, fingerprint: bytes, field_path: str) -> bytes:
        if len(token) > _MAX_TOKEN_LENGTH or token.count(".") != 1:
            raise _malformed(field_path)
        encoded_payload, encoded_signature = token.split(".")
        payload, signature = _b64decode(encoded_payload), _b64decode(encoded_signature)
        if payload is None or signature is None:
            raise _malformed(field_path)
        if not hmac.compare_digest(signature, self._sign(fingerprint, payload)):
            raise _malformed(field_path)
        return payload

    def _sign(self, fingerprint: bytes, payload: bytes) -> bytes:
        # Length-prefixed so a fingerprint of any length cannot run into the payload.
        message = len(fingerprint).to_bytes(4, "big") + fingerprint + payload
        return hmac.new(self._secret, message, hashlib.sha256).digest()


def query_fingerprint(*parts: str) -> bytes:
    """SHA-256 over length-prefixed parts, so ("a", "bc") and ("ab", "c") differ."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.digest()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """Strict: only the URL-safe alphabet, and only the canonical encoding (the unused
    low bits of the last character must be zero, so no two tokens decode alike)."""
    if not _BASE64URL.fullmatch(text):
        return None
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:
        return None
    return data if _b64encode(data) == text else None


def _malformed(field_path: str) -> DomainError:
    return errors.invalid(
        field_path, "cursor is malformed or was tampered with", reason="INVALID_CURSOR"
    )


def _parse_payload(payload: bytes, field_path: str) -> tuple[Any, uuid.UUID, str, int]:
    try:
        body = json.loads(payload)
        last_id, sort_name, issued = body["i"], body["s"], body["t"]
        if not (isinstance(last_id, str) and isinstance(sort_name, str)):
            raise TypeError
        if not isinstance(issued, int) or isinstance(issued, bool):
            raise TypeError
        return body["v"], uuid.UUID(hex=last_id), sort_name, issued
    except (ValueError, KeyError, TypeError):
        raise _malformed(field_path) from None


def _encode_value(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError("cursor timestamps must carry a time zone")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot put a {type(value).__name__} in a cursor")


def _decode_value(raw: Any, kind: FieldType, field_path: str) -> Any:
    if raw is None:
        return None
    try:
        return _VALUE_DECODERS[kind](raw)
    except (KeyError, ValueError, TypeError, ArithmeticError):
        raise _malformed(field_path) from None


def _of_type(raw: Any, kind: type[_T]) -> _T:
    if not isinstance(raw, kind) or (kind is int and isinstance(raw, bool)):
        raise TypeError(f"expected {kind.__name__}")
    return raw


def _aware(raw: Any) -> datetime:
    value = datetime.fromisoformat(_of_type(raw, str))
    if value.tzinfo is None:
        raise ValueError("timestamp without a time zone")
    return value


_VALUE_DECODERS: Mapping[FieldType, Callable[[Any], Any]] = {
    FieldType.TEXT: lambda raw: _of_type(raw, str),
    FieldType.ENUM: lambda raw: _of_type(raw, str),
    FieldType.NUMBER: lambda raw: Decimal(_of_type(raw, str)),
    FieldType.INTEGER: lambda raw: _of_type(raw, int),
    FieldType.BOOL: lambda raw: _of_type(raw, bool),
    FieldType.DATE: lambda raw: date.fromisoformat(_of_type(raw, str)),
    FieldType.TIMESTAMP: _aware,
    FieldType.UUID: lambda raw: uuid.UUID(_of_type(raw, str)),
}
