"""Filterable fields: their types, the operators each type admits, and how a literal
becomes a typed value. Shared by both filter dialects (`aip160`, `where_json`), so a field
filters the same way whichever dialect names it."""

from __future__ import annotations

import dataclasses
import enum
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement
from sqlalchemy.sql.util import ClauseAdapter

from service.kit import errors, ids
from service.kit.errors import DomainError
from service.kit.money import CURRENCY_EXPONENTS

MAX_TEXT_LENGTH = 2000
MAX_COMPARISONS = 50
MAX_DEPTH = 20
MAX_IN_VALUES = 100
_MAX_NUMBER_CHARS = 64
CURRENCIES: Mapping[str, str] = {code: code for code in CURRENCY_EXPONENTS} | {
    code.lower(): code for code in CURRENCY_EXPONENTS
}
_INT64 = range(-(2**63), 2**63)


class FieldType(enum.Enum):
    TEXT = "text"
    NUMBER = "number"
    INTEGER = "integer"
    DATE = "date"
    TIMESTAMP = "timestamp"
    ENUM = "enum"
    UUID = "uuid"
    BOOL = "bool"
    TAGS = "tags"


@dataclass(frozen=True)
class FilterField:
    """One filterable field. `name` may be dotted (`invoice.total`); joins are the caller's."""

    name: str
    column: ColumnElement[Any]
    type: FieldType
    enum_values: Mapping[str, str] = field(default_factory=dict)
    id_decoder: Callable[[str], uuid.UUID] | None = None
    # A field of a to-many relation: each comparison on `column` is wrapped by this (an
    # EXISTS over the related rows, correlated to the listed row), so `x = 1` reads "has a
    # related row whose x = 1".
    within: Callable[[ColumnElement[bool]], ColumnElement[bool]] | None = None

    def scoped(self, condition: ColumnElement[bool]) -> ColumnElement[bool]:
        return condition if self.within is None else self.within(condition)


def id_field(name: str, column: ColumnElement[Any], resource: str) -> FilterField:
    """A field holding a resource's public id (`inv_...`), compared as its uuid."""
    prefix = ids.PREFIXES[resource]

    def decode(text: str) -> uuid.UUID:
        return ids.decode_id(text, prefix, "filter")

    return FilterField(name, column, FieldType.UUID, id_decoder=decode)


def currency_field(name: str, column: ColumnElement[Any]) -> FilterField:
    """An ISO 4217 code, accepted in upper or lower case."""
    return FilterField(name, column, FieldType.ENUM, CURRENCIES)


def enum_values(values: Iterable[str], proto_prefix: str) -> dict[str, str]:
    """Accept `ISSUED`, `INVOICE_STATUS_ISSUED` and `issued` for the stored `issued`."""
    accepted: dict[str, str] = {}
    for value in values:
        upper = value.upper()
        accepted.update({value: value, upper: value, f"{proto_prefix}_{upper}": value})
    return accepted


def adapted(
    prefix: str, alias: Any, fields: Mapping[str, FilterField], names: Iterable[str]
) -> list[FilterField]:
    """`fields` of a related table as `<prefix>.<name>`, rewritten onto its alias (so a
    to-one relation filters exactly like the related resource's own list)."""
    adapter = ClauseAdapter(alias)
    return [
        dataclasses.replace(
            fields[name], name=f"{prefix}.{name}", column=adapter.traverse(fields[name].column)
        )
        for name in names
    ]


_NULL_OPS = ("IS NULL", "IS NOT NULL")
_ORDER_OPS = ("=", "!=", "<", "<=", ">", ">=")
ALLOWED: Mapping[FieldType, tuple[str, ...]] = {
    FieldType.TEXT: ("=", "!=", ":", "IN", *_NULL_OPS),
    FieldType.NUMBER: (*_ORDER_OPS, "IN", *_NULL_OPS),
    FieldType.INTEGER: (*_ORDER_OPS, "IN", *_NULL_OPS),
    FieldType.DATE: (*_ORDER_OPS, *_NULL_OPS),
    FieldType.TIMESTAMP: (*_ORDER_OPS, *_NULL_OPS),
    FieldType.ENUM: ("=", "!=", "IN", *_NULL_OPS),
    FieldType.UUID: ("=", "!=", "IN", *_NULL_OPS),
    FieldType.BOOL: ("=",),
    FieldType.TAGS: (":",),
}

Comparator = Callable[[ColumnElement[Any], Any], ColumnElement[bool]]
COMPARATORS: Mapping[str, Comparator] = {
    "=": lambda column, value: column == value,
    "!=": lambda column, value: column != value,
    "<": lambda column, value: column < value,
    "<=": lambda column, value: column <= value,
    ">": lambda column, value: column > value,
    ">=": lambda column, value: column >= value,
}


def check_operator(
    filter_field: FilterField,
    operator: str,
    field_path: str,
    *,
    spelled: str | None = None,
    spell: Callable[[str], Sequence[str]] = lambda op: (op,),
) -> None:
    """`operator` is the AIP-160 symbol; `spelled`/`spell` name it (and the allowed
    ones) as the caller wrote them, for the where-clause JSON dialect."""
    allowed = ALLOWED[filter_field.type]
    if operator not in allowed:
        shown = spelled or operator
        names = " ".join(name for op in allowed for name in spell(op))
        raise errors.invalid(
            field_path,
            f"operator {shown} is not supported on {filter_field.name} "
            f"({filter_field.type.value}); allowed: {names}",
            reason="UNSUPPORTED_FILTER_OPERATOR",
            filterField=filter_field.name,
            operator=shown,
        )


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def convert(filter_field: FilterField, raw: str, field_path: str) -> Any:
    try:
        return _CONVERTERS[filter_field.type](filter_field, raw)
    except (ValueError, DomainError) as exc:
        raise errors.invalid(
            field_path,
            f"invalid value {raw[:64]!r} for {filter_field.name}: {_reason_text(exc)}",
            reason="INVALID_FILTER_VALUE",
            filterField=filter_field.name,
        ) from None


def _reason_text(exc: ValueError | DomainError) -> str:
    if isinstance(exc, DomainError) and exc.violations:
        return exc.violations[0].description
    return str(exc)


_DECIMAL = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _to_text(_: FilterField, raw: str) -> str:
    return raw


def _to_number(_: FilterField, raw: str) -> Any:
    """Bound as an unconstrained NUMERIC: compared exactly with the column whatever its
    precision (a value with more digits than the column holds matches no row; it neither
    overflows the column's type nor rounds to it)."""
    if len(raw) > _MAX_NUMBER_CHARS or not _DECIMAL.fullmatch(raw):
        raise ValueError("expected a plain decimal number such as 1200.50")
    return sa.literal(Decimal(raw), sa.Numeric())


def _to_integer(_: FilterField, raw: str) -> Any:
    """Bound as BIGINT, whatever the column's width (int4 columns compare with it)."""
    if not _INTEGER.fullmatch(raw):
        raise ValueError("expected an integer")
    if int(raw) not in _INT64:
        raise ValueError("is out of the 64-bit integer range")
    return sa.literal(int(raw), sa.BigInteger())


def _to_date(_: FilterField, raw: str) -> date:
    if not _DATE.fullmatch(raw):
        raise ValueError("expected a date such as 2026-01-31")
    return date.fromisoformat(raw)


def _to_timestamp(_: FilterField, raw: str) -> datetime:
    if _DATE.fullmatch(raw):
        return datetime.combine(date.fromisoformat(raw), time(), UTC)
    if not _TIMESTAMP.fullmatch(raw):
        raise ValueError("expected an RFC 3339 timestamp with a time zone or a date")
    value = datetime.fromisoformat(raw.upper())
    try:
        value.astimezone(UTC)  # what the driver does; years 0 and 10000 do not exist
    except OverflowError:
        raise ValueError("is out of range once converted to UTC (years 1 to 9999)") from None
    return value


def _to_enum(filter_field: FilterField, raw: str) -> str:
    if raw not in filter_field.enum_values:
        raise ValueError(f"expected one of {', '.join(sorted(filter_field.enum_values))}")
    return filter_field.enum_values[raw]


def _to_uuid(filter_field: FilterField, raw: str) -> uuid.UUID:
    if filter_field.id_decoder is not None:
        return filter_field.id_decoder(raw)
    if not _UUID.fullmatch(raw):
        raise ValueError("expected a UUID in its hyphenated form")
    return uuid.UUID(raw)


def _to_bool(_: FilterField, raw: str) -> bool:
    if raw not in ("true", "false"):
        raise ValueError("expected true or false")
    return raw == "true"


_CONVERTERS: Mapping[FieldType, Callable[[FilterField, str], Any]] = {
    FieldType.TEXT: _to_text,
    FieldType.NUMBER: _to_number,
    FieldType.INTEGER: _to_integer,
    FieldType.DATE: _to_date,
    FieldType.TIMESTAMP: _to_timestamp,
    FieldType.ENUM: _to_enum,
    FieldType.UUID: _to_uuid,
    FieldType.BOOL: _to_bool,
    FieldType.TAGS: _to_text,
}


def too_complex(field_path: str, description: str) -> DomainError:
    return errors.invalid(field_path, description, reason="FILTER_TOO_COMPLEX")
