"""Protobuf <-> Python value helpers shared by the edge converters (`*/convert.py`)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from google.protobuf import struct_pb2
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.type import date_pb2

from service.kit import errors, ids, listing
from service.kit.money import parse_currency

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Calendar dates a client may send (an invoice of year 1 would be numbered INV-1-0001).
MIN_YEAR, MAX_YEAR = 1900, 9999
T = TypeVar("T")
R = TypeVar("R", bound=Message)


def ts(value: datetime | None) -> Timestamp | None:
    """Timestamp from an aware datetime (timedelta arithmetic: exact, and C-fast)."""
    if value is None:
        return None
    delta = value - _EPOCH
    return Timestamp(seconds=delta.days * 86400 + delta.seconds, nanos=delta.microseconds * 1000)


def pb_date(value: date | None) -> date_pb2.Date | None:
    if value is None:
        return None
    return date_pb2.Date(year=value.year, month=value.month, day=value.day)


def date_from_pb(value: date_pb2.Date, field_path: str) -> date | None:
    """None for an unset (all zero) Date; INVALID_ARGUMENT for a non-calendar one."""
    if value.year == 0 and value.month == 0 and value.day == 0:
        return None
    try:
        parsed = date(value.year, value.month, value.day)
    except ValueError as exc:
        raise errors.invalid(
            field_path, "is not a valid calendar date", reason="INVALID_DATE"
        ) from exc
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise errors.invalid(
            field_path, f"must be in the years {MIN_YEAR} to {MAX_YEAR}", reason="OUT_OF_RANGE"
        )
    return parsed


def text(value: str, field_path: str, *, max_length: int) -> str:
    if "\x00" in value:
        raise errors.invalid(field_path, "must not contain NUL characters", reason="INVALID_TEXT")
    if len(value) > max_length:
        raise errors.invalid(
            field_path,
            f"must be at most {max_length} characters",
            reason="TOO_LONG",
            maxLength=str(max_length),
        )
    return value


def required_id(value: str, resource: str, field_path: str) -> uuid.UUID:
    if value == "":
        raise errors.invalid(field_path, "is required", reason="REQUIRED")
    return ids.decode_id(value, ids.PREFIXES[resource], field_path)


def optional_id(value: str, resource: str, field_path: str) -> uuid.UUID | None:
    return None if value == "" else ids.decode_id(value, ids.PREFIXES[resource], field_path)


def public_id(resource: str, value: uuid.UUID | None) -> str:
    return "" if value is None else ids.encode_id(ids.PREFIXES[resource], value)


def page_to_pb(response_cls: type[R], page: listing.Page[T], encode: Callable[[T], Any]) -> R:
    """A List*Response (`data`, `next_cursor`, `total`) from a page of domain items."""
    return response_cls(
        data=[encode(item) for item in page.items], next_cursor=page.next_cursor, total=page.total
    )


def currency(value: str, field_path: str) -> str:
    """A required ISO 4217 code."""
    if value == "":
        raise errors.invalid(field_path, "is required", reason="REQUIRED")
    return parse_currency(value, field_path)


def optional_currency(value: str, field_path: str) -> str | None:
    return None if value == "" else parse_currency(value, field_path)


def struct_to_python(value: struct_pb2.Struct, field_path: str) -> dict[str, Any]:
    """A Struct as plain Python (json_format's MessageToDict raises a bare ValueError on a
    NaN or infinite number; this names the field instead)."""
    return {key: _value(item, field_path) for key, item in value.fields.items()}


def _value(value: struct_pb2.Value, field_path: str) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        if not math.isfinite(value.number_value):
            raise errors.invalid(
                field_path, "holds a number that is not finite", reason="INVALID_NUMBER"
            )
        return value.number_value
    if kind == "struct_value":
        return struct_to_python(value.struct_value, field_path)
    if kind == "list_value":
        return [_value(item, field_path) for item in value.list_value.values]
    if kind in ("string_value", "bool_value"):
        return getattr(value, kind)
    return None


def mask_paths(
    paths: Sequence[str],
    updatable: Sequence[str],
    read_only: Sequence[str],
    present: Callable[[], set[str]],
) -> set[str]:
    """The fields an update names: its mask's paths (`*`: every updatable field), or
    without a mask the fields the request populates (`present()`). A path that is read-only
    or unknown is INVALID_ARGUMENT on `update_mask`."""
    if not paths:
        return present()
    if list(paths) == ["*"]:
        return set(updatable)
    for path in paths:
        if path not in updatable:
            kind = "read-only" if path in read_only else "unknown"
            shown = path[:64]
            raise errors.invalid(
                "update_mask",
                f"{kind} path {shown!r}; updatable: {', '.join(updatable)}",
                reason="INVALID_UPDATE_MASK",
                path=shown,
            )
    return set(paths)
