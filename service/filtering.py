"""A subset of AIP-160 filters, compiled to a SQLAlchemy boolean expression.

Grammar (OR binds tighter than AND, as AIP-160 says; keywords are upper case):

    filter      = [expression]
    expression  = factor {"AND" factor}
    factor      = term {"OR" term}
    term        = ("NOT" | "-") term | "(" expression ")" | restriction
    restriction = FIELD ( COMPARATOR value
                        | "IN" "(" value {"," value} ")"
                        | "IS" ["NOT"] "NULL" )
    COMPARATOR  = "=" | "!=" | "<" | "<=" | ">" | ">=" | ":"
    value       = '"' string '"' | "'" string "'" | bare word

Fields come from an allow-list mapping names to columns; each field type admits only
some operators. Any input string either compiles or raises a DomainError
(INVALID_ARGUMENT naming `field_path`); nothing user-typed ever reaches SQL as text.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement
from sqlalchemy.sql.util import ClauseAdapter

from service import errors
from service.errors import DomainError

MAX_TEXT_LENGTH = 2000
MAX_COMPARISONS = 50
MAX_DEPTH = 20
MAX_IN_VALUES = 100
_MAX_NUMBER_CHARS = 64
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
_ALLOWED: Mapping[FieldType, tuple[str, ...]] = {
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

_Comparator = Callable[[ColumnElement[Any], Any], ColumnElement[bool]]
_COMPARATORS: Mapping[str, _Comparator] = {
    "=": lambda column, value: column == value,
    "!=": lambda column, value: column != value,
    "<": lambda column, value: column < value,
    "<=": lambda column, value: column <= value,
    ">": lambda column, value: column > value,
    ">=": lambda column, value: column >= value,
}


def compile_filter(
    text: str, fields: Mapping[str, FilterField], *, field_path: str = "filter"
) -> ColumnElement[bool] | None:
    """Compile `text` over `fields`; None when it is empty or only whitespace."""
    if len(text) > MAX_TEXT_LENGTH:
        raise _too_complex(field_path, f"is longer than {MAX_TEXT_LENGTH} characters")
    _check_characters(text, field_path)
    if not text.strip():
        return None
    return _Parser(_tokenize(text, field_path), fields, field_path).parse()


# --- tokens ----------------------------------------------------------------------------


class _Kind(enum.Enum):
    WORD = "a word"
    STRING = "a string"
    OP = "an operator"
    LPAREN = "'('"
    RPAREN = "')'"
    COMMA = "','"
    MINUS = "'-'"
    END = "the end of the filter"


@dataclass(frozen=True)
class _Token:
    kind: _Kind
    text: str
    start: int
    end: int
    star_start: bool = False  # an unescaped leading `*` (wildcard)
    star_end: bool = False  # an unescaped trailing `*` (wildcard)

    def describe(self) -> str:
        return self.kind.value if self.kind is _Kind.END else repr(self.text[:40])


_KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "IS", "NULL"})
_OPERATORS = ("<=", ">=", "!=", "=", "<", ">", ":")
_PUNCTUATION = {"(": _Kind.LPAREN, ")": _Kind.RPAREN, ",": _Kind.COMMA}
_OPERATOR_START = frozenset("=!<>:")  # `a == 1` is a syntax error, not the value "="
_WORD_STOP = frozenset("()\"',:=!<>")
_VALUE_STOP = frozenset("()\"',")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def _check_characters(text: str, field_path: str) -> None:
    """NUL and lone surrogates cannot be sent to PostgreSQL as text."""
    if "\x00" in text:
        raise _syntax(field_path, text.index("\x00"), "NUL characters are not allowed")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _syntax(field_path, exc.start, "the filter is not valid Unicode") from None


def _tokenize(text: str, field_path: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            tokens.append(_Token(_Kind.END, "", position, position))
            return tokens
        token = _next_token(text, position, _value_expected(tokens), field_path)
        tokens.append(token)
        position = token.end


def _value_expected(tokens: Sequence[_Token]) -> bool:
    """Right after a comparator, a comma, or `IN (` the next word is a literal.

    Literals may then hold `:` and a leading `-` (timestamps, negative numbers).
    """
    if not tokens:
        return False
    last = tokens[-1]
    if last.kind in (_Kind.OP, _Kind.COMMA):
        return True
    if last.kind is not _Kind.LPAREN or len(tokens) < 2:
        return False
    return tokens[-2].kind is _Kind.WORD and tokens[-2].text == "IN"


def _next_token(text: str, start: int, value_expected: bool, field_path: str) -> _Token:
    char = text[start]
    if char in _PUNCTUATION:
        return _Token(_PUNCTUATION[char], char, start, start + 1)
    if char in "\"'":
        return _read_string(text, start, field_path)
    if value_expected and char not in _OPERATOR_START:
        return _read_word(text, start, _VALUE_STOP)
    if char == "-":
        return _Token(_Kind.MINUS, char, start, start + 1)
    for operator in _OPERATORS:
        if text.startswith(operator, start):
            return _Token(_Kind.OP, operator, start, start + len(operator))
    if char in _WORD_STOP:
        raise _syntax(field_path, start, f"unexpected character {char!r}")
    return _read_word(text, start, _WORD_STOP)


def _read_word(text: str, start: int, stop: frozenset[str]) -> _Token:
    end = start
    while end < len(text) and not text[end].isspace() and text[end] not in stop:
        end += 1
    word = text[start:end]
    return _Token(_Kind.WORD, word, start, end, word.startswith("*"), word.endswith("*"))


def _read_string(text: str, start: int, field_path: str) -> _Token:
    quote, index = text[start], start + 1
    chars: list[str] = []
    escaped: list[bool] = []
    while index < len(text) and text[index] != quote:
        is_escape = text[index] == "\\" and index + 1 < len(text)
        char = _ESCAPES.get(text[index + 1], text[index + 1]) if is_escape else text[index]
        chars.append(char)
        escaped.append(is_escape)
        index += 2 if is_escape else 1
    if index >= len(text):
        raise _syntax(field_path, start, "unterminated string")
    star_start = bool(chars) and chars[0] == "*" and not escaped[0]
    star_end = bool(chars) and chars[-1] == "*" and not escaped[-1]
    return _Token(_Kind.STRING, "".join(chars), start, index + 1, star_start, star_end)


# --- parser ----------------------------------------------------------------------------


class _Parser:
    def __init__(
        self, tokens: list[_Token], fields: Mapping[str, FilterField], field_path: str
    ) -> None:
        self._tokens = tokens
        self._index = 0
        self._fields = fields
        self._path = field_path
        self._comparisons = 0
        self._depth = 0

    def parse(self) -> ColumnElement[bool]:
        expression = self._expression()
        self._expect(_Kind.END, "AND, OR or the end of the filter")
        return expression

    def _expression(self) -> ColumnElement[bool]:
        parts = [self._factor()]
        while self._accept_keyword("AND"):
            parts.append(self._factor())
        return sa.and_(*parts) if len(parts) > 1 else parts[0]

    def _factor(self) -> ColumnElement[bool]:
        parts = [self._term()]
        while self._accept_keyword("OR"):
            parts.append(self._term())
        return sa.or_(*parts) if len(parts) > 1 else parts[0]

    def _term(self) -> ColumnElement[bool]:
        if self._accept_keyword("NOT") or self._accept(_Kind.MINUS):
            with self._nested():
                return sa.not_(self._term())
        if self._accept(_Kind.LPAREN):
            with self._nested():
                inner = self._expression()
            self._expect(_Kind.RPAREN, "')'")
            return inner
        return self._restriction()

    def _restriction(self) -> ColumnElement[bool]:
        name = self._next()
        if name.kind is not _Kind.WORD or name.text in _KEYWORDS:
            raise self._unexpected(name, "a field name")
        filter_field = self._lookup(name.text)
        self._comparisons += 1
        if self._comparisons > MAX_COMPARISONS:
            raise _too_complex(self._path, f"has more than {MAX_COMPARISONS} comparisons")
        if self._accept_keyword("IN"):
            return self._in_list(filter_field)
        if self._accept_keyword("IS"):
            return self._null_check(filter_field)
        operator = self._expect(_Kind.OP, "an operator, IN or IS").text
        _check_operator(filter_field, operator, self._path)
        return _compare(filter_field, operator, self._value(), self._path)

    def _in_list(self, filter_field: FilterField) -> ColumnElement[bool]:
        _check_operator(filter_field, "IN", self._path)
        self._expect(_Kind.LPAREN, "'(' after IN")
        values = [self._value()]
        while self._accept(_Kind.COMMA):
            values.append(self._value())
            if len(values) > MAX_IN_VALUES:
                raise _too_complex(self._path, f"has an IN list over {MAX_IN_VALUES} values")
        self._expect(_Kind.RPAREN, "',' or ')'")
        converted = [_convert(filter_field, value.text, self._path) for value in values]
        return filter_field.column.in_(converted)

    def _null_check(self, filter_field: FilterField) -> ColumnElement[bool]:
        negated = self._accept_keyword("NOT")
        token = self._next()
        if token.kind is not _Kind.WORD or token.text != "NULL":
            raise self._unexpected(token, "NULL")
        _check_operator(filter_field, "IS NOT NULL" if negated else "IS NULL", self._path)
        column = filter_field.column
        return column.is_not(None) if negated else column.is_(None)

    def _value(self) -> _Token:
        token = self._next()
        if token.kind not in (_Kind.WORD, _Kind.STRING):
            raise self._unexpected(token, "a value")
        return token

    def _lookup(self, name: str) -> FilterField:
        filter_field = self._fields.get(name)
        if filter_field is None:
            known = ", ".join(sorted(self._fields))
            raise errors.invalid(
                self._path,
                f"unknown field {name[:64]!r}; filterable fields: {known}",
                reason="UNKNOWN_FILTER_FIELD",
                filterField=name[:64],
            )
        return filter_field

    @contextmanager
    def _nested(self) -> Iterator[None]:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _too_complex(self._path, f"is nested more than {MAX_DEPTH} levels deep")
        yield
        self._depth -= 1

    def _next(self) -> _Token:
        token = self._tokens[self._index]
        self._index = min(self._index + 1, len(self._tokens) - 1)
        return token

    def _accept(self, kind: _Kind) -> bool:
        if self._tokens[self._index].kind is kind:
            self._next()
            return True
        return False

    def _accept_keyword(self, keyword: str) -> bool:
        token = self._tokens[self._index]
        if token.kind is _Kind.WORD and token.text == keyword:
            self._next()
            return True
        return False

    def _expect(self, kind: _Kind, wanted: str) -> _Token:
        token = self._next()
        if token.kind is not kind:
            raise self._unexpected(token, wanted)
        return token

    def _unexpected(self, token: _Token, wanted: str) -> DomainError:
        return _syntax(self._path, token.start, f"expected {wanted}, found {token.describe()}")


# --- compiling one comparison ----------------------------------------------------------


def _check_operator(
    filter_field: FilterField,
    operator: str,
    field_path: str,
    *,
    spelled: str | None = None,
    spell: Callable[[str], Sequence[str]] = lambda op: (op,),
) -> None:
    """`operator` is the AIP-160 symbol; `spelled`/`spell` name it (and the allowed
    ones) as the caller wrote them, for the where-clause JSON dialect."""
    allowed = _ALLOWED[filter_field.type]
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


def _compare(
    filter_field: FilterField, operator: str, literal: _Token, field_path: str
) -> ColumnElement[bool]:
    column = filter_field.column
    if filter_field.type is FieldType.TAGS:
        return column.contains([literal.text])
    if filter_field.type is FieldType.TEXT and operator == ":":
        return column.ilike(f"%{_escape_like(literal.text)}%", escape="\\")
    wildcard = literal.star_start or literal.star_end
    if filter_field.type is FieldType.TEXT and operator == "=" and wildcard:
        return column.like(_wildcard_pattern(literal), escape="\\")
    value = _convert(filter_field, literal.text, field_path)
    return _COMPARATORS[operator](column, value)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _wildcard_pattern(literal: _Token) -> str:
    """`*x` ends with x, `x*` starts with x, `*x*` contains x; inner stars are literal."""
    text = literal.text
    start = 1 if literal.star_start else 0
    end = len(text) - 1 if literal.star_end and len(text) > start else len(text)
    prefix = "%" if literal.star_start else ""
    suffix = "%" if literal.star_end else ""
    return f"{prefix}{_escape_like(text[start:end])}{suffix}"


def _convert(filter_field: FilterField, raw: str, field_path: str) -> Any:
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


def _to_number(_: FilterField, raw: str) -> Decimal:
    if len(raw) > _MAX_NUMBER_CHARS or not _DECIMAL.fullmatch(raw):
        raise ValueError("expected a plain decimal number such as 1200.50")
    return Decimal(raw)


def _to_integer(_: FilterField, raw: str) -> int:
    if not _INTEGER.fullmatch(raw) or int(raw) not in _INT64:
        raise ValueError("expected a 64-bit integer")
    return int(raw)


def _to_date(_: FilterField, raw: str) -> date:
    if not _DATE.fullmatch(raw):
        raise ValueError("expected a date such as 2026-01-31")
    return date.fromisoformat(raw)


def _to_timestamp(_: FilterField, raw: str) -> datetime:
    if _DATE.fullmatch(raw):
        return datetime.combine(date.fromisoformat(raw), time(), UTC)
    if not _TIMESTAMP.fullmatch(raw):
        raise ValueError("expected an RFC 3339 timestamp with a time zone or a date")
    return datetime.fromisoformat(raw.upper())


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


# --- where-clause JSON (seed 003 records query) -------------------------------------

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
            raise _too_complex(self._path, f"is nested more than {MAX_DEPTH} levels deep")
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
        parts = [self._comparison(filter_field, str(op), value) for op, value in ops.items()]
        return sa.and_(*parts) if len(parts) > 1 else parts[0]

    def _comparison(self, filter_field: FilterField, op: str, value: Any) -> ColumnElement[bool]:
        self._comparisons += 1
        if self._comparisons > MAX_COMPARISONS:
            raise _too_complex(self._path, f"has more than {MAX_COMPARISONS} comparisons")
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
        _check_operator(
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
        return _COMPARATORS[symbol](column, _convert(filter_field, text, self._path))

    def _in_values(self, filter_field: FilterField, value: Any) -> list[Any]:
        if not isinstance(value, list) or not value:
            raise self._bad_value(filter_field, value, "_in takes a non-empty list")
        if len(value) > MAX_IN_VALUES:
            raise _too_complex(self._path, f"has an _in list over {MAX_IN_VALUES} values")
        texts = [self._text(filter_field, item) for item in value]
        return [_convert(filter_field, text, self._path) for text in texts]

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
    escaped = _escape_like(text)
    if op == "_starts_with":
        return column.like(f"{escaped}%", escape="\\")
    if op == "_ends_with":
        return column.like(f"%{escaped}", escape="\\")
    if op == "_ilike":
        return column.ilike(text)
    return column.ilike(f"%{escaped}%", escape="\\")


# --- errors ----------------------------------------------------------------------------


def _syntax(field_path: str, offset: int, description: str) -> DomainError:
    return errors.invalid(
        field_path,
        f"{description} at position {offset + 1}",
        reason="INVALID_FILTER_SYNTAX",
        position=str(offset + 1),
    )


def _too_complex(field_path: str, description: str) -> DomainError:
    return errors.invalid(field_path, description, reason="FILTER_TOO_COMPLEX")
