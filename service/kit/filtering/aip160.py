"""AIP-160 filter text, compiled to a SQLAlchemy boolean expression.

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

import enum
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

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


def compile_filter(
    text: str, fields: Mapping[str, FilterField], *, field_path: str = "filter"
) -> ColumnElement[bool] | None:
    """Compile `text` over `fields`; None when it is empty or only whitespace."""
    if len(text) > MAX_TEXT_LENGTH:
        raise too_complex(field_path, f"is longer than {MAX_TEXT_LENGTH} characters")
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
            raise too_complex(self._path, f"has more than {MAX_COMPARISONS} comparisons")
        if self._accept_keyword("IN"):
            return filter_field.scoped(self._in_list(filter_field))
        if self._accept_keyword("IS"):
            return filter_field.scoped(self._null_check(filter_field))
        operator = self._expect(_Kind.OP, "an operator, IN or IS").text
        check_operator(filter_field, operator, self._path)
        return filter_field.scoped(_compare(filter_field, operator, self._value(), self._path))

    def _in_list(self, filter_field: FilterField) -> ColumnElement[bool]:
        check_operator(filter_field, "IN", self._path)
        self._expect(_Kind.LPAREN, "'(' after IN")
        values = [self._value()]
        while self._accept(_Kind.COMMA):
            values.append(self._value())
            if len(values) > MAX_IN_VALUES:
                raise too_complex(self._path, f"has an IN list over {MAX_IN_VALUES} values")
        self._expect(_Kind.RPAREN, "',' or ')'")
        converted = [convert(filter_field, value.text, self._path) for value in values]
        return filter_field.column.in_(converted)

    def _null_check(self, filter_field: FilterField) -> ColumnElement[bool]:
        negated = self._accept_keyword("NOT")
        token = self._next()
        if token.kind is not _Kind.WORD or token.text != "NULL":
            raise self._unexpected(token, "NULL")
        check_operator(filter_field, "IS NOT NULL" if negated else "IS NULL", self._path)
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
            raise too_complex(self._path, f"is nested more than {MAX_DEPTH} levels deep")
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


def _compare(
    filter_field: FilterField, operator: str, literal: _Token, field_path: str
) -> ColumnElement[bool]:
    column = filter_field.column
    if filter_field.type is FieldType.TAGS:
        return column.contains([literal.text])
    if filter_field.type is FieldType.TEXT and operator == ":":
        return column.ilike(f"%{escape_like(literal.text)}%", escape="\\")
    wildcard = literal.star_start or literal.star_end
    if filter_field.type is FieldType.TEXT and operator == "=" and wildcard:
        return column.like(_wildcard_pattern(literal), escape="\\")
    value = convert(filter_field, literal.text, field_path)
    return COMPARATORS[operator](column, value)


def _wildcard_pattern(literal: _Token) -> str:
    """`*x` ends with x, `x*` starts with x, `*x*` contains x; inner stars are literal."""
    text = literal.text
    start = 1 if literal.star_start else 0
    end = len(text) - 1 if literal.star_end and len(text) > start else len(text)
    prefix = "%" if literal.star_start else ""
    suffix = "%" if literal.star_end else ""
    return f"{prefix}{escape_like(text[start:end])}{suffix}"


def _syntax(field_path: str, offset: int, description: str) -> DomainError:
    return errors.invalid(
        field_path,
        f"{description} at position {offset + 1}",
        reason="INVALID_FILTER_SYNTAX",
        position=str(offset + 1),
    )
