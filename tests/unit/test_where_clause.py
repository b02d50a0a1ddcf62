"""The where-clause JSON dialect (seed 003 records query) over the same engine as AIP-160."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql

from service.kit.errors import DomainError
from service.kit.filtering import FieldType, FilterField, compile_filter, compile_where

T = FieldType
table = sa.table(
    "t",
    sa.column("name", sa.Text),
    sa.column("amount", sa.Numeric),
    sa.column("due", sa.Date),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("kind", sa.Text),
    sa.column("flag", sa.Boolean),
    sa.column("rel_total", sa.Numeric),
)
c = table.c
FIELDS = {
    f.name: f
    for f in [
        FilterField("name", c.name, T.TEXT),
        FilterField("amount", c.amount, T.NUMBER),
        FilterField("due", c.due, T.DATE),
        FilterField("at", c.at, T.TIMESTAMP),
        FilterField("kind", c.kind, T.ENUM, {"A": "a", "B": "b"}),
        FilterField("flag", c.flag, T.BOOL),
        FilterField("invoice.total", c.rel_total, T.NUMBER),
    ]
}
SAMPLE = {
    "name": ("abc", '"abc"'),
    "amount": ("12.50", "12.50"),
    "due": ("2026-04-28", "2026-04-28"),
    "at": ("2026-04-28T10:00:00Z", '"2026-04-28T10:00:00Z"'),
    "kind": ("A", "A"),
    "flag": (True, "true"),
    "invoice.total": ("100", "100"),
}
# JSON operator -> the AIP-160 text it means (None: only a text match, no AIP symbol form).
EQUIVALENT = {
    "_eq": "{f} = {v}",
    "_neq": "{f} != {v}",
    "_gt": "{f} > {v}",
    "_gte": "{f} >= {v}",
    "_lt": "{f} < {v}",
    "_lte": "{f} <= {v}",
    "_in": "{f} IN ({v})",
    "_contains": "{f} : {v}",
}


def sql(clause: Any) -> str:
    """Literal SQL; the dialect's pyformat doubling of `%` is undone for readability."""
    compiled = clause.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    return str(compiled).replace("%%", "%")


def nested(name: str, ops: dict[str, Any]) -> dict[str, Any]:
    """`invoice.total` -> {"invoice": {"total": ops}}."""
    clause: dict[str, Any] = ops
    for part in reversed(name.split(".")):
        clause = {part: clause}
    return clause


def outcome(call: Any) -> str:
    try:
        return sql(call())
    except DomainError as exc:
        return f"{exc.reason}:{exc.metadata.get('filterField', '')}"


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(FIELDS)), op=st.sampled_from(sorted(EQUIVALENT)))
def test_both_dialects_admit_the_same_operators_and_compile_alike(name: str, op: str) -> None:
    json_value, text_value = SAMPLE[name]
    value: Any = [json_value] if op == "_in" else json_value
    where = outcome(lambda: compile_where(nested(name, {op: value}), FIELDS))
    text = EQUIVALENT[op].format(f=name, v=text_value)
    aip = outcome(lambda: compile_filter(text, FIELDS))
    assert where.split(":")[0] == aip.split(":")[0] or where == aip
    if not aip.startswith("UNSUPPORTED"):
        assert where == aip


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        ({"name": {"_starts_with": "a_%"}}, "t.name LIKE 'a\\_\\%%' ESCAPE '\\'"),
        ({"name": {"_ends_with": "x"}}, "t.name LIKE '%x' ESCAPE '\\'"),
        ({"name": {"_ilike": "%acme%"}}, "t.name ILIKE '%acme%'"),
        ({"amount": {"_is_null": True}}, "t.amount IS NULL"),
        ({"amount": {"_is_null": False}}, "t.amount IS NOT NULL"),
        ({"amount": {"_is_not_null": True}}, "t.amount IS NOT NULL"),
        ({"_not": {"flag": {"_eq": True}}}, "t.flag != true"),
        (
            {"_or": [{"amount": {"_gt": 1}}, {"invoice": {"total": {"_lt": "2.5"}}}]},
            "t.amount > 1 OR t.rel_total < 2.5",
        ),
        ({"amount": {"_gte": 1, "_lte": 2}}, "t.amount >= 1 AND t.amount <= 2"),
    ],
)
def test_where_clause_compiles(clause: dict[str, Any], expected: str) -> None:
    assert sql(compile_where(clause, FIELDS)) == expected


def test_empty_where_clause_is_no_condition() -> None:
    assert compile_where({}, FIELDS) is None
    assert compile_where(None, FIELDS) is None


@pytest.mark.parametrize(
    ("clause", "reason", "field"),
    [
        ({"amount": {"_contains": "1"}}, "UNSUPPORTED_FILTER_OPERATOR", "amount"),
        ({"flag": {"_gt": True}}, "UNSUPPORTED_FILTER_OPERATOR", "flag"),
        ({"due": {"_in": ["2026-01-01"]}}, "UNSUPPORTED_FILTER_OPERATOR", "due"),
        ({"colour": {"_eq": "red"}}, "UNKNOWN_FILTER_FIELD", "colour"),
        ({"invoice": {"colour": {"_eq": 1}}}, "UNKNOWN_FILTER_FIELD", "invoice.colour"),
        ({"amount": {"_eq": "abc"}}, "INVALID_FILTER_VALUE", "amount"),
        ({"amount": {"_eq": None}}, "INVALID_FILTER_VALUE", "amount"),
        ({"amount": {"_eq": float("nan")}}, "INVALID_FILTER_VALUE", "amount"),
        ({"amount": {"_in": []}}, "INVALID_FILTER_VALUE", "amount"),
        ({"amount": {"_is_null": "yes"}}, "INVALID_FILTER_VALUE", "amount"),
        ({"amount": {"eq": 1}}, "INVALID_WHERE_CLAUSE", ""),
        ({"amount": 5}, "INVALID_WHERE_CLAUSE", ""),
        ({"_and": {"amount": {"_eq": 1}}}, "INVALID_WHERE_CLAUSE", ""),
        ({"_eq": 1}, "INVALID_WHERE_CLAUSE", ""),
        ({"invoice": {}}, "INVALID_WHERE_CLAUSE", ""),
        ([1, 2], "INVALID_WHERE_CLAUSE", ""),
    ],
)
def test_bad_where_clause_names_the_field(clause: Any, reason: str, field: str) -> None:
    with pytest.raises(DomainError) as caught:
        compile_where(clause, FIELDS)
    err = caught.value
    assert err.reason == reason
    assert err.violations[0].field == "where_clause"
    assert err.metadata.get("filterField", "") == field


def test_error_names_the_json_operator_and_the_allowed_ones() -> None:
    with pytest.raises(DomainError) as caught:
        compile_where({"flag": {"_neq": True}}, FIELDS)
    assert caught.value.metadata["operator"] == "_neq"
    assert caught.value.violations[0].description.endswith("allowed: _eq")


def test_nesting_and_size_limits() -> None:
    deep: dict[str, Any] = {"amount": {"_eq": 1}}
    for _ in range(30):
        deep = {"_not": deep}
    with pytest.raises(DomainError) as caught:
        compile_where(deep, FIELDS)
    assert caught.value.reason == "FILTER_TOO_COMPLEX"
    wide = {"_and": [{"amount": {"_eq": i}} for i in range(60)]}
    with pytest.raises(DomainError) as caught:
        compile_where(wide, FIELDS)
    assert caught.value.reason == "FILTER_TOO_COMPLEX"
