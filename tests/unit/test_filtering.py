"""Unit tests for service.kit.filtering: the AIP-160 subset compiled to SQLAlchemy (no database)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql

from service.kit import errors
from service.kit.errors import Code, DomainError
from service.kit.filtering import FieldType, FilterField, compile_filter
from service.kit.filtering.fields import (
    MAX_COMPARISONS,
    MAX_DEPTH,
    MAX_IN_VALUES,
    MAX_TEXT_LENGTH,
)

metadata = sa.MetaData()
invoices = sa.Table(
    "invoices",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("number", sa.Text),
    sa.Column("total", sa.Numeric),
    sa.Column("line_count", sa.BigInteger),
    sa.Column("issue_date", sa.Date),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.Text),
    sa.Column("customer_id", sa.Uuid),
    sa.Column("paid", sa.Boolean),
    sa.Column("tags", postgresql.ARRAY(sa.Text)),
)
customers = sa.Table("customers", metadata, sa.Column("id", sa.Uuid), sa.Column("name", sa.Text))

UUID_1 = "0190f3c4-5b6a-7c8d-9e0f-1a2b3c4d5e6f"


def decode_invoice_id(text: str) -> uuid.UUID:
    """A stand-in for the service's prefixed-id decoder: `inv_` + 32 hex digits."""
    if not text.startswith("inv_") or len(text) != 36:
        raise errors.invalid("id", "expected an invoice id (inv_...)", reason="INVALID_ID")
    try:
        return uuid.UUID(hex=text[4:])
    except ValueError:
        raise errors.invalid(
            "id", "expected an invoice id (inv_...)", reason="INVALID_ID"
        ) from None


STATUSES = {"draft": "DRAFT", "issued": "ISSUED", "paid": "PAID"}
FIELDS = {
    f.name: f
    for f in (
        FilterField("id", invoices.c.id, FieldType.UUID, id_decoder=decode_invoice_id),
        FilterField("number", invoices.c.number, FieldType.TEXT),
        FilterField("total", invoices.c.total, FieldType.NUMBER),
        FilterField("line_count", invoices.c.line_count, FieldType.INTEGER),
        FilterField("issue_date", invoices.c.issue_date, FieldType.DATE),
        FilterField("created_at", invoices.c.created_at, FieldType.TIMESTAMP),
        FilterField("status", invoices.c.status, FieldType.ENUM, enum_values=STATUSES),
        FilterField("customer_id", invoices.c.customer_id, FieldType.UUID),
        FilterField("paid", invoices.c.paid, FieldType.BOOL),
        FilterField("tags", invoices.c.tags, FieldType.TAGS),
        FilterField("customer.name", customers.c.name, FieldType.TEXT),
    )
}


DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


def render(expression: sa.ColumnElement[bool]) -> str:
    return str(expression.compile(dialect=DIALECT, compile_kwargs={"literal_binds": True}))


def sql(text: str) -> str:
    expression = compile_filter(text, FIELDS)
    assert expression is not None
    return render(expression)


def assert_invalid(text: str, reason: str, **expected_metadata: str) -> DomainError:
    with pytest.raises(DomainError) as info:
        compile_filter(text, FIELDS)
    error = info.value
    assert error.code is Code.INVALID_ARGUMENT
    assert error.reason == reason, error.message
    assert [v.field for v in error.violations] == ["filter"]
    for key, value in expected_metadata.items():
        assert error.metadata[key] == value
    if "filterField" in expected_metadata:
        assert expected_metadata["filterField"] in error.violations[0].description
    return error


# --- empty input ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", " ", "\n\t  \r"])
def test_compile_filter_returns_none_when_blank(text: str) -> None:
    assert compile_filter(text, FIELDS) is None


# --- operators per type -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('number = "INV-1"', "invoices.number = 'INV-1'"),
        ("number=INV-1", "invoices.number = 'INV-1'"),
        ("number != INV-1", "invoices.number != 'INV-1'"),
        ("number = 'single quoted'", "invoices.number = 'single quoted'"),
        (r'number = "say \"hi\" \\ bye"', "invoices.number = 'say \"hi\" \\ bye'"),
        ('number = "INV-2026-*"', "invoices.number LIKE 'INV-2026-%%' ESCAPE '\\'"),
        ("number = INV-2026-*", "invoices.number LIKE 'INV-2026-%%' ESCAPE '\\'"),
        ('number = "*-001"', "invoices.number LIKE '%%-001' ESCAPE '\\'"),
        ('number = "*mid*"', "invoices.number LIKE '%%mid%%' ESCAPE '\\'"),
        ('number = "50%_off\\\\*"', "invoices.number LIKE '50\\%%\\_off\\\\%%' ESCAPE '\\'"),
        ('number = "a*b"', "invoices.number = 'a*b'"),
        (r'number = "\*escaped"', "invoices.number = '*escaped'"),
        ('number != "INV-*"', "invoices.number != 'INV-*'"),
        ("number:acme", "invoices.number ILIKE '%%acme%%' ESCAPE '\\'"),
        ('number : "100%"', "invoices.number ILIKE '%%100\\%%%%' ESCAPE '\\'"),
        ('number : "a_b"', "invoices.number ILIKE '%%a\\_b%%' ESCAPE '\\'"),
        ('number IN (a, "b c")', "invoices.number IN ('a', 'b c')"),
        ("number IN (a*)", "invoices.number IN ('a*')"),
        ("number IS NULL", "invoices.number IS NULL"),
        ("number IS NOT NULL", "invoices.number IS NOT NULL"),
        ("customer.name:acme", "customers.name ILIKE '%%acme%%' ESCAPE '\\'"),
    ],
)
def test_text_operators(text: str, expected: str) -> None:
    assert sql(text) == expected


@pytest.mark.parametrize("operator", ["=", "!=", "<", "<=", ">", ">="])
def test_number_comparisons(operator: str) -> None:
    assert sql(f"total {operator} 1200.50") == f"invoices.total {operator} 1200.50"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("total = -3", "invoices.total = -3"),
        ("total > +0.001", "invoices.total > 0.001"),
        ('total = "42.00"', "invoices.total = 42.00"),
        ("total IN (1, 2.5, -7)", "invoices.total IN (1, 2.5, -7)"),
        ("total IS NULL", "invoices.total IS NULL"),
        ("total IS NOT NULL", "invoices.total IS NOT NULL"),
        ("line_count >= 3", "invoices.line_count >= 3"),
        ("line_count = -9223372036854775808", "invoices.line_count = -9223372036854775808"),
        ("line_count IN (1, 2)", "invoices.line_count IN (1, 2)"),
        ("line_count IS NULL", "invoices.line_count IS NULL"),
    ],
)
def test_number_and_integer_operators(text: str, expected: str) -> None:
    assert sql(text) == expected


def test_number_literal_is_a_decimal_never_a_float() -> None:
    expression = compile_filter("total = 0.1", FIELDS)
    assert expression is not None
    (value,) = expression.compile(dialect=DIALECT).params.values()
    assert value == Decimal("0.1")
    assert isinstance(value, Decimal)


@pytest.mark.parametrize("operator", ["=", "!=", "<", "<=", ">", ">="])
def test_date_and_timestamp_comparisons(operator: str) -> None:
    assert sql(f"issue_date {operator} 2026-01-31") == (
        f"invoices.issue_date {operator} '2026-01-31'"
    )
    assert sql(f'created_at {operator} "2026-01-31T09:00:00Z"') == (
        f"invoices.created_at {operator} '2026-01-31 09:00:00+00:00'"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("created_at < 2026-01-31T09:00:00.5+02:00", "'2026-01-31 09:00:00.500000+02:00'"),
        ("created_at < 2026-01-31t09:00:00z", "'2026-01-31 09:00:00+00:00'"),
        ("created_at < 2026-01-31", "'2026-01-31 00:00:00+00:00'"),
        ("created_at < 2026-01-31T09:00:00.123456789-05:00", "'2026-01-31 09:00:00.123456-05:00'"),
    ],
)
def test_timestamp_literals(text: str, expected: str) -> None:
    assert sql(text) == f"invoices.created_at < {expected}"


def test_timestamp_literal_is_timezone_aware() -> None:
    expression = compile_filter("created_at >= 2026-01-31", FIELDS)
    assert expression is not None
    value = expression.compile(dialect=DIALECT).params["created_at_1"]
    assert value == datetime(2026, 1, 31, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("issue_date IS NULL", "invoices.issue_date IS NULL"),
        ("created_at IS NOT NULL", "invoices.created_at IS NOT NULL"),
        ("status = draft", "invoices.status = 'DRAFT'"),
        ('status != "paid"', "invoices.status != 'PAID'"),
        ("status IN (draft, issued)", "invoices.status IN ('DRAFT', 'ISSUED')"),
        ("status IS NULL", "invoices.status IS NULL"),
        (f"customer_id = {UUID_1}", f"invoices.customer_id = '{UUID_1}'"),
        (f"customer_id != {UUID_1.upper()}", f"invoices.customer_id != '{UUID_1}'"),
        (f'customer_id IN ("{UUID_1}")', f"invoices.customer_id IN ('{UUID_1}')"),
        ("customer_id IS NOT NULL", "invoices.customer_id IS NOT NULL"),
        (f"id = inv_{uuid.UUID(UUID_1).hex}", f"invoices.id = '{UUID_1}'"),
        (f"id IN (inv_{uuid.UUID(UUID_1).hex})", f"invoices.id IN ('{UUID_1}')"),
        ("paid = true", "invoices.paid = true"),
        ("paid = false", "invoices.paid = false"),
        ("tags:urgent", "invoices.tags @> ARRAY['urgent']"),
        ('tags : "needs review"', "invoices.tags @> ARRAY['needs review']"),
    ],
)
def test_date_enum_uuid_bool_tags_operators(text: str, expected: str) -> None:
    assert sql(text) == expected


# --- precedence -------------------------------------------------------------------------

A = invoices.c.total > Decimal(1)
B = invoices.c.status == "DRAFT"
C = invoices.c.paid == True  # noqa: E712 (an SQL expression, not a Python comparison)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("total > 1 AND status = draft OR paid = true", sa.and_(A, sa.or_(B, C))),
        ("total > 1 OR status = draft AND paid = true", sa.and_(sa.or_(A, B), C)),
        ("(total > 1 AND status = draft) OR paid = true", sa.or_(sa.and_(A, B), C)),
        ("total > 1 OR status = draft OR paid = true", sa.or_(A, B, C)),
        ("total > 1 AND status = draft AND paid = true", sa.and_(A, B, C)),
        ("NOT total > 1 AND status = draft", sa.and_(sa.not_(A), B)),
        ("NOT (total > 1 OR status = draft)", sa.not_(sa.or_(A, B))),
        ("-(total > 1 AND status = draft)", sa.not_(sa.and_(A, B))),
        ("-total > 1 OR status = draft", sa.or_(sa.not_(A), B)),
        ("NOT NOT paid = true", sa.not_(sa.not_(C))),
        ("((total > 1))", A),
    ],
)
def test_precedence(text: str, expected: sa.ColumnElement[bool]) -> None:
    assert sql(text) == render(expected)


def test_or_binds_tighter_than_and_in_rendered_sql() -> None:
    assert sql("total > 1 AND status = draft OR paid = true") == (
        "invoices.total > 1 AND (invoices.status = 'DRAFT' OR invoices.paid = true)"
    )


def test_not_negates_the_comparison() -> None:
    assert sql("NOT number:acme") == "invoices.number NOT ILIKE '%%acme%%' ESCAPE '\\'"
    assert sql("-status IN (draft)") == "(invoices.status NOT IN ('DRAFT'))"
    assert sql("NOT number IS NULL") == "invoices.number IS NOT NULL"


def test_keywords_are_case_sensitive() -> None:
    assert_invalid("total > 1 and paid = true", "INVALID_FILTER_SYNTAX")


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("nope = 1", "nope"),
        ("total > 1 AND customer.nope:x", "customer.nope"),
        ("Total = 1", "Total"),
    ],
)
def test_unknown_field(text: str, name: str) -> None:
    assert_invalid(text, "UNKNOWN_FILTER_FIELD", filterField=name)


@pytest.mark.parametrize(
    ("text", "name", "operator"),
    [
        ("number < x", "number", "<"),
        ("number >= x", "number", ">="),
        ("total : 5", "total", ":"),
        ("line_count:5", "line_count", ":"),
        ("issue_date IN (2026-01-01)", "issue_date", "IN"),
        ("issue_date : 2026", "issue_date", ":"),
        ("created_at IN (2026-01-01)", "created_at", "IN"),
        ("status > draft", "status", ">"),
        ("status:dr", "status", ":"),
        (f"customer_id < {UUID_1}", "customer_id", "<"),
        ("paid != true", "paid", "!="),
        ("paid IN (true)", "paid", "IN"),
        ("paid IS NULL", "paid", "IS NULL"),
        ("paid IS NOT NULL", "paid", "IS NOT NULL"),
        ("tags = urgent", "tags", "="),
        ("tags IN (urgent)", "tags", "IN"),
        ("tags IS NULL", "tags", "IS NULL"),
    ],
)
def test_unsupported_operator(text: str, name: str, operator: str) -> None:
    assert_invalid(text, "UNSUPPORTED_FILTER_OPERATOR", filterField=name, operator=operator)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("total = 1e5", "total"),
        ("total = 1E-2", "total"),
        ("total = NaN", "total"),
        ("total = Infinity", "total"),
        ("total = -inf", "total"),
        ("total = 1.", "total"),
        ("total = .5", "total"),
        ("total = 0x10", "total"),
        ('total = "1,5"', "total"),
        ("total = 1_000", "total"),
        ("total = ١٢", "total"),
        ("total IN (1, x)", "total"),
        (f"total = {'9' * 65}", "total"),
        ("line_count = 1.5", "line_count"),
        ("line_count = 9223372036854775808", "line_count"),
        ("line_count = 99999999999999999999", "line_count"),
        ("issue_date = 2026-02-30", "issue_date"),
        ("issue_date = 20260101", "issue_date"),
        ("issue_date = 2026-01-01T00:00:00Z", "issue_date"),
        ("created_at > 2026-01-01T00:00:00", "created_at"),
        ('created_at > "2026-01-01 00:00:00Z"', "created_at"),
        ("created_at > 2026-13-01T00:00:00Z", "created_at"),
        ("created_at > 2026-01-01T24:00:00Z", "created_at"),
        ("created_at > 2026-01-01T00:00:00+24:00", "created_at"),
        ("created_at > yesterday", "created_at"),
        ("status = DRAFT", "status"),
        ("status IN (draft, void)", "status"),
        ("customer_id = 123", "customer_id"),
        (f"customer_id = {uuid.UUID(UUID_1).hex}", "customer_id"),
        (f"customer_id = {{{UUID_1}}}", "customer_id"),
        (f"id = {UUID_1}", "id"),
        ("id = inv_zz", "id"),
        ("paid = yes", "paid"),
        ("paid = 1", "paid"),
        ("paid = TRUE", "paid"),
    ],
)
def test_invalid_value(text: str, name: str) -> None:
    assert_invalid(text, "INVALID_FILTER_VALUE", filterField=name)


def test_invalid_enum_value_lists_allowed_values() -> None:
    error = assert_invalid("status = void", "INVALID_FILTER_VALUE", filterField="status")
    assert "draft, issued, paid" in error.violations[0].description


def test_invalid_prefixed_id_reports_the_decoders_reason_under_the_filter() -> None:
    error = assert_invalid("id = con_123", "INVALID_FILTER_VALUE", filterField="id")
    assert "expected an invoice id" in error.violations[0].description


@pytest.mark.parametrize(
    "text",
    [
        "total =",
        "total",
        "total 5",
        "(total = 1",
        "total = 1)",
        "total = 1 status = draft",
        "AND",
        "total = 1 AND",
        "total = 1 OR OR paid = true",
        'number = "abc',
        "number = 'abc",
        'number = "abc\\',
        "total ! 1",
        "total == 1",
        "total IN ()",
        "total IN (1 2)",
        "total IN (1,)",
        "total IN 1",
        "number IS NOT 5",
        "number IS",
        "= 5",
        '"number" = 5',
        "NOT",
        "-",
        "()",
        "total = (1)",
        "total = 1\x00",
    ],
)
def test_syntax_error(text: str) -> None:
    assert_invalid(text, "INVALID_FILTER_SYNTAX")


def test_syntax_error_reports_the_position() -> None:
    error = assert_invalid("total = 1 )", "INVALID_FILTER_SYNTAX", position="11")
    assert "position 11" in error.violations[0].description


def test_limits_accept_the_maximum() -> None:
    padding = "x" * (MAX_TEXT_LENGTH - len('number = ""'))
    assert compile_filter(f'number = "{padding}"', FIELDS) is not None
    assert compile_filter(" AND ".join(["paid = true"] * MAX_COMPARISONS), FIELDS) is not None
    nested = "(" * MAX_DEPTH + "paid = true" + ")" * MAX_DEPTH
    assert compile_filter(nested, FIELDS) is not None
    values = ", ".join(str(i) for i in range(MAX_IN_VALUES))
    assert compile_filter(f"total IN ({values})", FIELDS) is not None


@pytest.mark.parametrize(
    "text",
    [
        'number = "' + "x" * MAX_TEXT_LENGTH + '"',
        " AND ".join(["paid = true"] * (MAX_COMPARISONS + 1)),
        "(" * (MAX_DEPTH + 1) + "paid = true" + ")" * (MAX_DEPTH + 1),
        "NOT " * (MAX_DEPTH + 1) + "paid = true",
        "-" * (MAX_DEPTH + 1) + "paid = true",
        "(" * 1000,
        "total IN (" + ", ".join(str(i) for i in range(MAX_IN_VALUES + 1)) + ")",
    ],
)
def test_too_complex(text: str) -> None:
    assert_invalid(text, "FILTER_TOO_COMPLEX")


def test_errors_name_the_given_field_path() -> None:
    with pytest.raises(DomainError) as info:
        compile_filter("nope = 1", FIELDS, field_path="query.filter")
    assert [v.field for v in info.value.violations] == ["query.filter"]
    assert info.value.metadata["field"] == "query.filter"


# --- properties -------------------------------------------------------------------------

TOKENS = [
    *FIELDS,
    *("AND", "OR", "NOT", "IN", "IS", "NULL", "-", "(", ")", ",", ":", "=", "!=", "<", "<=", ">"),
    *(">=", "true", "false", '"', "'", "\\", "*", "draft", "1.5", "-3", "2026-01-31", UUID_1),
    *("2026-01-31T09:00:00Z", '"quoted *"', "inv_", "1e5", "NaN", "\x00", "é", "\ud800"),
]


def compile_and_render_or_domain_error(text: str) -> None:
    try:
        expression = compile_filter(text, FIELDS)
    except DomainError as error:
        assert error.code is Code.INVALID_ARGUMENT
        assert error.violations and error.violations[0].field == "filter"
        return
    if expression is not None:
        render(expression)


@settings(max_examples=500)
@given(st.text(max_size=300))
def test_arbitrary_text_only_raises_domain_errors(text: str) -> None:
    compile_and_render_or_domain_error(text)


@settings(max_examples=1000)
@given(
    st.lists(st.tuples(st.sampled_from(TOKENS), st.sampled_from(["", " ", "  "])), max_size=40).map(
        lambda parts: "".join(token + space for token, space in parts)
    )
)
def test_token_soup_only_raises_domain_errors(text: str) -> None:
    compile_and_render_or_domain_error(text)


@given(st.integers(0, 3000).map(lambda n: "(" * n), st.integers(0, 3000))
def test_deep_nesting_never_overflows_the_stack(opening: str, closing: int) -> None:
    compile_and_render_or_domain_error(f"{opening}paid = true{')' * closing}")


# --- generated valid filters ------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    text: str
    depth: int
    comparisons: int


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


plain_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)
decimals = st.decimals(allow_nan=False, allow_infinity=False, places=4).map(lambda d: f"{d:f}")
offsets = st.integers(-23 * 60, 23 * 60).map(lambda m: timezone(timedelta(minutes=m)))
timestamps = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(9000, 1, 1), timezones=offsets
).map(lambda d: d.isoformat())
ordering = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])
nullity = st.sampled_from(["IS NULL", "IS NOT NULL"])


def in_list(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(values, min_size=1, max_size=5).map(lambda v: f"IN ({', '.join(v)})")


def restriction(name: str, predicate: st.SearchStrategy[str]) -> st.SearchStrategy[Node]:
    return predicate.map(lambda p: Node(f"{name} {p}", 0, 1))


def pairs(ops: st.SearchStrategy[str], values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.builds(lambda op, value: f"{op} {value}", ops, values)


leaves = st.one_of(
    restriction("number", pairs(st.sampled_from(["=", "!=", ":"]), plain_text.map(quote))),
    restriction("number", in_list(plain_text.map(quote)) | nullity),
    restriction("total", pairs(ordering, decimals) | in_list(decimals) | nullity),
    restriction("line_count", pairs(ordering, st.integers(-(2**63), 2**63 - 1).map(str))),
    restriction("issue_date", pairs(ordering, st.dates().map(str)) | nullity),
    restriction("created_at", pairs(ordering, timestamps | timestamps.map(quote))),
    restriction("status", pairs(st.sampled_from(["=", "!="]), st.sampled_from(list(STATUSES)))),
    restriction("status", in_list(st.sampled_from(list(STATUSES))) | nullity),
    restriction("customer_id", pairs(st.sampled_from(["=", "!="]), st.uuids().map(str))),
    restriction("id", in_list(st.uuids().map(lambda u: f"inv_{u.hex}"))),
    restriction("paid", st.sampled_from(["= true", "= false"])),
    restriction("tags", plain_text.map(lambda t: f":{quote(t)}")),
    restriction("customer.name", pairs(st.just(":"), plain_text.map(quote))),
)


def combine(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    def binary(keyword: str) -> st.SearchStrategy[Node]:
        return st.builds(
            lambda a, b: Node(
                f"{a.text} {keyword} {b.text}",
                max(a.depth, b.depth),
                a.comparisons + b.comparisons,
            ),
            children,
            children,
        )

    return st.one_of(
        binary("AND"),
        binary("OR"),
        children.map(lambda n: Node(f"NOT {n.text}", n.depth + 1, n.comparisons)),
        children.map(lambda n: Node(f"-{n.text}", n.depth + 1, n.comparisons)),
        children.map(lambda n: Node(f"({n.text})", n.depth + 1, n.comparisons)),
    )


@settings(max_examples=400)
@given(st.recursive(leaves, combine, max_leaves=12))
def test_generated_valid_filters_compile(node: Node) -> None:
    assume(node.depth <= MAX_DEPTH and node.comparisons <= MAX_COMPARISONS)
    assume(len(node.text) <= MAX_TEXT_LENGTH)
    expression = compile_filter(node.text, FIELDS)
    assert expression is not None
    assert render(expression)
