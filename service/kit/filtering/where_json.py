"""Seed 003's where-clause JSON (`{"invoice": {"total": {"_gt": 100}}}`), compiled over the
same fields and per-type operator gates as the AIP-160 filters."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement

from service.kit import errors
from service.kit.errors import DomainError
from service.kit.filtering.fields import (
    COMPARATORS,
    MAX_COMPARISONS,
    MAX_DEPTH,
    MAX_IN_VALUES,
    MAX_TEXT_LENGTH,
    FieldType,
    FilterField,
    check_operator,
    convert,
    escape_like,
    too_complex,
)

# Each JSON operator is gated as the AIP-160 operator it means (so both dialects admit
# the same operators per field type); `_starts_with`, `_ends_with` and `_ilike` are text
# matches like `:`.
_JSON_OPERATORS: Mapping[str, str] = {
    "_eq": "=",
    "_neq": "!=",
    "_gt": ">",
    "_gte": ">=",
    "_lt": "<",
    "_lte": "<=",
    "_in": "IN",
    "_is_null": "IS NULL",
    "_is_not_null": "IS NOT NULL",
    "_contains": ":",
    "_starts_with": ":",
    "_ends_with": ":",
    "_ilike": ":",
}
_JSON_SPELLINGS: Mapping[str, tuple[str, ...]] = {
    symbol: tuple(name for name, op in _JSON_OPERATORS.items() if op == symbol)
    for symbol in set(_JSON_OPERATORS.values())
}
_BOOLEAN_KEYS = ("_and", "_or", "_not")


def compile_where(
    clause: Any, fields: Mapping[str, FilterField], *, field_path: str = "where_clause"
) -> ColumnElement[bool] | None:
    """Compile a where-clause object (`{"invoice": {"total": {"_gt": 100}}}`) over the
    same fields as `compile_filter`; None when it is empty."""
    if clause is None or clause == {}:
        return None
    return _WhereCompiler(fields, field_path).clause(clause, prefix="", depth=0)


class _WhereCompiler:
    def __init__(self, fields: Mapping[str, FilterField], field_path: str) -> None:
        self._fields = fields
        self._path = field_path
        self._comparisons = 0

    def clause(self, node: Any, *, prefix: str, depth: int) -> ColumnElement[bool]:
        if depth > MAX_DEPTH:
            raise too_complex(self._path, f"is nested more than {MAX_DEPTH} levels deep")
        if not isinstance(node, Mapping) or not node:
            raise self._malformed(f"expected a non-empty object at {prefix or 'the top'}")
        parts = [self._entry(str(key), value, prefix, depth) for key, value in node.items()]
        return sa.and_(*parts) if len(parts) > 1 else parts[0]

    def _entry(self, key: str, value: Any, prefix: str, depth: int) -> ColumnElement[bool]:
        if key in ("_and", "_or"):
            if not isinstance(value, list) or not value:
                raise self._malformed(f"{key} takes a non-empty list of clauses")
            parts = [self.clause(item, prefix=prefix, depth=depth + 1) for item in value]
            return sa.and_(*parts) if key == "_and" else sa.or_(*parts)
        if key == "_not":
            return sa.not_(self.clause(value, prefix=prefix, depth=depth + 1))
        if key.startswith("_"):
            raise self._malformed(f"operator {key[:64]!r} needs a field before it")
        name = f"{prefix}{key}"
        filter_field = self._fields.get(name)
        if filter_field is not None:
            return self._comparisons_of(filter_field, value)
        if any(known.startswith(f"{name}.") for known in self._fields):
            return self.clause(value, prefix=f"{name}.", depth=depth + 1)
        known = ", ".join(sorted(self._fields))
        raise errors.invalid(
            self._path,
            f"unknown field {name[:64]!r}; filterable fields: {known}",
            reason="UNKNOWN_FILTER_FIELD",
            filterField=name[:64],
        )

    def _comparisons_of(self, filter_field: FilterField, ops: Any) -> ColumnElement[bool]:
        if not isinstance(ops, Mapping) or not ops:
            raise self._malformed(
                f'{filter_field.name} takes an object of operators such as {{"_eq": ...}}'
            )
        parts = [
            filter_field.scoped(self._comparison(filter_field, str(op), value))
            for op, value in ops.items()
        ]
        return sa.and_(*parts) if len(parts) > 1 else parts[0]

    def _comparison(self, filter_field: FilterField, op: str, value: Any) -> ColumnElement[bool]:
        self._comparisons += 1
        if self._comparisons > MAX_COMPARISONS:
            raise too_complex(self._path, f"has more than {MAX_COMPARISONS} comparisons")
        symbol = _JSON_OPERATORS.get(op)
        if symbol is None:
            raise self._malformed(
                f"unknown operator {op[:64]!r} on {filter_field.name}; "
                f"operators: {' '.join(_JSON_OPERATORS)}"
            )
        if op in ("_is_null", "_is_not_null"):
            if not isinstance(value, bool):
                raise self._bad_value(filter_field, value, f"{op} takes true or false")
            symbol = "IS NULL" if (op == "_is_null") == value else "IS NOT NULL"
        check_operator(
            filter_field,
            symbol,
            self._path,
            spelled=op,
            spell=lambda s: _JSON_SPELLINGS.get(s, ()),
        )
        column = filter_field.column
        if symbol == "IS NULL":
            return column.is_(None)
        if symbol == "IS NOT NULL":
            return column.is_not(None)
        if symbol == "IN":
            return column.in_(self._in_values(filter_field, value))
        text = self._text(filter_field, value)
        if symbol == ":":
            return _text_match(filter_field, op, text)
        return COMPARATORS[symbol](column, convert(filter_field, text, self._path))

    def _in_values(self, filter_field: FilterField, value: Any) -> list[Any]:
        if not isinstance(value, list) or not value:
            raise self._bad_value(filter_field, value, "_in takes a non-empty list")
        if len(value) > MAX_IN_VALUES:
            raise too_complex(self._path, f"has an _in list over {MAX_IN_VALUES} values")
        texts = [self._text(filter_field, item) for item in value]
        return [convert(filter_field, text, self._path) for text in texts]

    def _text(self, filter_field: FilterField, value: Any) -> str:
        """A JSON scalar as the literal text the converters take (strings are exact;
        JSON numbers arrive as doubles, so decimals should be sent as strings)."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self._bad_value(filter_field, value, "must be a finite number")
            return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
        if isinstance(value, str):
            if len(value) > MAX_TEXT_LENGTH or "\x00" in value:
                raise self._bad_value(filter_field, value, "is too long or holds NUL")
            return value
        raise self._bad_value(filter_field, value, "must be a string, number or boolean")

    def _bad_value(self, filter_field: FilterField, value: Any, description: str) -> DomainError:
        return errors.invalid(
            self._path,
            f"invalid value {str(value)[:64]!r} for {filter_field.name}: {description}",
            reason="INVALID_FILTER_VALUE",
            filterField=filter_field.name,
        )

    def _malformed(self, description: str) -> DomainError:
        return errors.invalid(self._path, description, reason="INVALID_WHERE_CLAUSE")


def _text_match(filter_field: FilterField, op: str, text: str) -> ColumnElement[bool]:
    column = filter_field.column
    if filter_field.type is FieldType.TAGS:
        return column.contains([text])
    escaped = escape_like(text)
    if op == "_starts_with":
        return column.like(f"{escaped}%", escape="\\")
    if op == "_ends_with":
        return column.like(f"%{escaped}", escape="\\")
    if op == "_ilike":
        return column.ilike(text)
    return column.ilike(f"%{escaped}%", escape="\\")
