"""Unit tests for service.kit.pagination: limits, ordering, keyset predicates, signed cursors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql

from service.kit.errors import Code, DomainError
from service.kit.filtering import FieldType
from service.kit.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    CursorCodec,
    SortField,
    keyset_after,
    order_clauses,
    parse_limit,
    parse_order,
    query_fingerprint,
)

metadata = sa.MetaData()
invoices = sa.Table(
    "invoices",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("number", sa.Text, nullable=False),
    sa.Column("total", sa.Numeric, nullable=False),
    sa.Column("line_count", sa.BigInteger),
    sa.Column("issue_date", sa.Date),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.Text),
    sa.Column("customer_id", sa.Uuid),
    sa.Column("paid", sa.Boolean),
)
c = invoices.c
SORTS = {
    s.name: s
    for s in (
        SortField("number", c.number, FieldType.TEXT),
        SortField("total", c.total, FieldType.NUMBER),
        SortField("line_count", c.line_count, FieldType.INTEGER, nullable=True),
        SortField("issue_date", c.issue_date, FieldType.DATE, nullable=True),
        SortField("created_at", c.created_at, FieldType.TIMESTAMP),
        SortField("status", c.status, FieldType.ENUM, nullable=True),
        SortField("customer_id", c.customer_id, FieldType.UUID, nullable=True),
        SortField("paid", c.paid, FieldType.BOOL, nullable=True),
    )
}
LAST_ID = uuid.UUID("0190f3c4-5b6a-7c8d-9e0f-1a2b3c4d5e6f")
FINGERPRINT = query_fingerprint("ListInvoices", "tenant-1", "status = draft", "total desc")


DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


def render(expression: sa.ClauseElement) -> str:
    return str(expression.compile(dialect=DIALECT, compile_kwargs={"literal_binds": True}))


def raises_invalid(call: Callable[[], object], field: str, reason: str) -> DomainError:
    with pytest.raises(DomainError) as info:
        call()
    error = info.value
    assert error.code is Code.INVALID_ARGUMENT
    assert error.reason == reason, error.message
    assert [v.field for v in error.violations] == [field]
    return error


# --- limit ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 50), (1, 1), (50, 50), (199, 199), (200, 200), (201, 200)]
)
def test_parse_limit(value: int, expected: int) -> None:
    assert parse_limit(value) == expected


def test_parse_limit_rejects_negative_with_the_field_path() -> None:
    raises_invalid(lambda: parse_limit(-1), "limit", "INVALID_LIMIT")
    raises_invalid(lambda: parse_limit(-5, field_path="page_size"), "page_size", "INVALID_LIMIT")


@given(st.integers())
def test_parse_limit_over_all_integers(value: int) -> None:
    if value < 0:
        raises_invalid(lambda: parse_limit(value), "limit", "INVALID_LIMIT")
        return
    limit = parse_limit(value)
    assert 1 <= limit <= MAX_LIMIT
    assert limit == (DEFAULT_LIMIT if value == 0 else min(value, MAX_LIMIT))


# --- order_by and direction -------------------------------------------------------------


@pytest.mark.parametrize(
    ("order_by", "direction", "name", "descending"),
    [
        ("", "", "created_at", True),
        ("   ", "", "created_at", True),
        ("", "asc", "created_at", False),
        ("total", "", "total", True),
        ("total", "asc", "total", False),
        ("total", "ASC", "total", False),
        ("total", " Desc ", "total", True),
        ("total desc", "", "total", True),
        ("total asc", "", "total", False),
        ("  total   ASC ", "", "total", False),
        ("total asc", "asc", "total", False),
        ("total desc", "DESC", "total", True),
    ],
)
def test_parse_order(order_by: str, direction: str, name: str, descending: bool) -> None:
    sort, desc = parse_order(order_by, direction, SORTS, default="created_at")
    assert (sort, desc) == (SORTS[name], descending)


def test_parse_order_unknown_field_names_it() -> None:
    error = raises_invalid(
        lambda: parse_order("nope", "", SORTS, default="created_at"),
        "order_by",
        "UNKNOWN_ORDER_FIELD",
    )
    assert error.metadata["orderField"] == "nope"
    assert "nope" in error.violations[0].description


@pytest.mark.parametrize(
    ("order_by", "direction", "field"),
    [
        ("total desc, number", "", "order_by"),
        ("total,number", "", "order_by"),
        ("total sideways", "", "order_by"),
        ("total desc asc", "", "order_by"),
        ("total", "up", "direction"),
        ("total", "descending", "direction"),
        ("total desc", "asc", "direction"),
        ("total asc", "desc", "direction"),
    ],
)
def test_parse_order_rejects(order_by: str, direction: str, field: str) -> None:
    with pytest.raises(DomainError) as info:
        parse_order(order_by, direction, SORTS, default="created_at")
    assert info.value.code is Code.INVALID_ARGUMENT
    assert [v.field for v in info.value.violations] == [field]


# --- ORDER BY and keyset predicates -----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "descending", "expected"),
    [
        ("total", False, ["invoices.total ASC", "invoices.id ASC"]),
        ("total", True, ["invoices.total DESC", "invoices.id DESC"]),
        ("issue_date", False, ["invoices.issue_date ASC NULLS LAST", "invoices.id ASC"]),
        ("issue_date", True, ["invoices.issue_date DESC NULLS LAST", "invoices.id DESC"]),
    ],
)
def test_order_clauses(name: str, descending: bool, expected: list[str]) -> None:
    assert [render(e) for e in order_clauses(SORTS[name], descending, c.id)] == expected


ID = f"'{LAST_ID}'"


@pytest.mark.parametrize(
    ("name", "descending", "value", "expected"),
    [
        ("total", False, Decimal("12.50"), f"(invoices.total, invoices.id) > (12.50, {ID})"),
        ("total", True, Decimal("12.50"), f"(invoices.total, invoices.id) < (12.50, {ID})"),
        (
            "issue_date",
            False,
            date(2026, 1, 31),
            "invoices.issue_date IS NULL OR invoices.issue_date > '2026-01-31' OR "
            f"invoices.issue_date = '2026-01-31' AND invoices.id > {ID}",
        ),
        (
            "issue_date",
            True,
            date(2026, 1, 31),
            "invoices.issue_date IS NULL OR invoices.issue_date < '2026-01-31' OR "
            f"invoices.issue_date = '2026-01-31' AND invoices.id < {ID}",
        ),
        ("issue_date", False, None, f"invoices.issue_date IS NULL AND invoices.id > {ID}"),
        ("issue_date", True, None, f"invoices.issue_date IS NULL AND invoices.id < {ID}"),
    ],
)
def test_keyset_after(name: str, descending: bool, value: Any, expected: str) -> None:
    assert render(keyset_after(SORTS[name], descending, c.id, value, LAST_ID)) == expected


# The keyset predicate must agree with the ORDER BY. SQLite (in memory, standard library)
# supports row values and NULLS LAST, so every page boundary can be checked end to end.
rows_table = sa.Table(
    "rows",
    sa.MetaData(),
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("score", sa.Integer),
)
nullable_score = SortField("score", rows_table.c.score, FieldType.INTEGER, nullable=True)
required_score = SortField("score", rows_table.c.score, FieldType.INTEGER)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.integers(-3, 3)), max_size=15),
    st.booleans(),
    st.booleans(),
    st.integers(1, 4),
)
def test_keyset_pages_walk_the_order_exactly(
    scores: list[int | None], nullable: bool, descending: bool, page_size: int
) -> None:
    sort = nullable_score if nullable else required_score
    if not nullable:
        scores = [s if s is not None else 0 for s in scores]
    engine = sa.create_engine("sqlite://")
    with engine.begin() as connection:
        rows_table.create(connection)
        if scores:
            values = [{"id": uuid.uuid4(), "score": s} for s in scores]
            connection.execute(rows_table.insert(), values)
        ordered = sa.select(rows_table).order_by(*order_clauses(sort, descending, rows_table.c.id))
        expected = [tuple(row) for row in connection.execute(ordered)]
        walked: list[tuple[Any, ...]] = []
        while True:
            query = ordered.limit(page_size)
            if walked:
                last_id, last_score = walked[-1]
                query = query.where(
                    keyset_after(sort, descending, rows_table.c.id, last_score, last_id)
                )
            page = [tuple(row) for row in connection.execute(query)]
            walked += page
            if len(page) < page_size:
                break
    assert walked == expected


# --- cursors ----------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


SECRET = b"test-secret-0123456789abcdef"


def codec(clock: Clock | None = None) -> CursorCodec:
    return CursorCodec(SECRET, now=clock or Clock())


def token_for(value: Any, sort: SortField, codec_: CursorCodec | None = None) -> str:
    return (codec_ or codec()).encode(
        query_fingerprint=FINGERPRINT, sort=sort, last_value=value, last_id=LAST_ID
    )


def decode(token: str, sort: SortField, codec_: CursorCodec | None = None) -> tuple[Any, uuid.UUID]:
    return (codec_ or codec()).decode(token, query_fingerprint=FINGERPRINT, sort=sort)


def test_cursor_round_trip_and_shape() -> None:
    token = token_for(Decimal("1200.50"), SORTS["total"])
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)
    assert decode(token, SORTS["total"]) == (Decimal("1200.50"), LAST_ID)


def test_cursor_payload_is_compact_json() -> None:
    payload = token_for(Decimal("1.5"), SORTS["total"]).split(".")[0]
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert body == {"v": "1.5", "i": LAST_ID.hex, "s": "total", "t": 1_800_000_000}


offsets = st.integers(-23 * 60, 23 * 60).map(lambda m: timezone(timedelta(minutes=m)))
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "number": st.text(),
    "status": st.text(),
    "total": st.decimals(allow_nan=False, allow_infinity=False),
    "line_count": st.integers(),
    "paid": st.booleans(),
    "issue_date": st.dates(),
    "created_at": st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets
    ),
    "customer_id": st.uuids(),
}
typed_values = st.sampled_from(sorted(VALUES)).flatmap(
    lambda name: st.tuples(st.just(SORTS[name]), st.none() | VALUES[name])
)


def test_every_sortable_type_has_a_round_trip_strategy() -> None:
    assert {s.type for s in SORTS.values()} == set(FieldType) - {FieldType.TAGS}
    assert set(VALUES) == set(SORTS)


@given(typed_values, st.uuids())
def test_cursor_round_trip_for_every_type(typed: tuple[SortField, Any], last_id: uuid.UUID) -> None:
    sort, value = typed
    token = codec().encode(
        query_fingerprint=FINGERPRINT, sort=sort, last_value=value, last_id=last_id
    )
    decoded, decoded_id = codec().decode(token, query_fingerprint=FINGERPRINT, sort=sort)
    assert decoded_id == last_id
    assert decoded == value
    assert type(decoded) is type(value)
    if isinstance(value, datetime):
        assert decoded.utcoffset() == value.utcoffset()


BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@settings(max_examples=300)
@given(typed_values, st.data())
def test_flipping_any_character_is_rejected(typed: tuple[SortField, Any], data: Any) -> None:
    sort, value = typed
    token = token_for(value, sort)
    index = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(
        st.sampled_from(BASE64URL + ".=+/ ~é").filter(lambda ch: ch != token[index])
    )
    tampered = token[:index] + replacement + token[index + 1 :]
    with pytest.raises(DomainError) as info:
        decode(tampered, sort)
    assert info.value.reason in {"INVALID_CURSOR", "CURSOR_MISMATCH"}


def test_flipping_every_character_of_one_token_is_rejected() -> None:
    token = token_for(date(2026, 1, 31), SORTS["issue_date"])
    for index, original in enumerate(token):
        for replacement in BASE64URL + ".":
            if replacement == original:
                continue
            tampered = token[:index] + replacement + token[index + 1 :]
            with pytest.raises(DomainError) as info:
                decode(tampered, SORTS["issue_date"])
            assert info.value.reason == "INVALID_CURSOR"


@pytest.mark.parametrize(
    "token",
    ["", ".", "abc", "a.b.c", "!!!.???", "YQ.YQ", "YQ==.YQ==", "x" * 5000 + "." + "y"],
)
def test_garbage_cursor_is_invalid(token: str) -> None:
    raises_invalid(lambda: decode(token, SORTS["total"]), "cursor", "INVALID_CURSOR")


def test_cursor_errors_name_the_given_field_path() -> None:
    raises_invalid(
        lambda: codec().decode(
            "junk", query_fingerprint=FINGERPRINT, sort=SORTS["total"], field_path="page_token"
        ),
        "page_token",
        "INVALID_CURSOR",
    )


def test_cursor_from_another_query_is_rejected() -> None:
    token = token_for(Decimal(1), SORTS["total"])
    other = query_fingerprint("ListInvoices", "tenant-1", "status = paid", "total desc")
    raises_invalid(
        lambda: codec().decode(token, query_fingerprint=other, sort=SORTS["total"]),
        "cursor",
        "INVALID_CURSOR",
    )


def test_cursor_signed_with_another_secret_is_rejected() -> None:
    token = token_for(Decimal(1), SORTS["total"], CursorCodec(b"another secret"))
    raises_invalid(lambda: decode(token, SORTS["total"]), "cursor", "INVALID_CURSOR")


def test_cursor_for_another_sort_field_is_a_mismatch() -> None:
    token = token_for(Decimal(1), SORTS["total"])
    raises_invalid(lambda: decode(token, SORTS["line_count"]), "cursor", "CURSOR_MISMATCH")


def test_cursor_expires_after_max_age() -> None:
    clock = Clock()
    codec_ = CursorCodec(SECRET, max_age_seconds=3600, now=clock)
    token = token_for(Decimal(1), SORTS["total"], codec_)
    clock.now += 3600
    assert decode(token, SORTS["total"], codec_) == (Decimal(1), LAST_ID)
    clock.now += 1
    raises_invalid(lambda: decode(token, SORTS["total"], codec_), "cursor", "CURSOR_EXPIRED")


def test_cursor_default_max_age_is_three_days() -> None:
    clock = Clock()
    token = token_for(Decimal(1), SORTS["total"], codec(clock))
    clock.now += 3 * 86400 + 1
    raises_invalid(lambda: decode(token, SORTS["total"], codec(clock)), "cursor", "CURSOR_EXPIRED")


def signed(body: object) -> str:
    """A correctly signed token around an arbitrary payload (mirrors the token format)."""
    payload = json.dumps(body).encode()
    message = len(FINGERPRINT).to_bytes(4, "big") + FINGERPRINT + payload
    signature = hmac.new(SECRET, message, hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return f"{b64(payload)}.{b64(signature)}"


def test_signed_helper_matches_the_codec() -> None:
    body = {"v": "1.5", "i": LAST_ID.hex, "s": "total", "t": 1_800_000_000}
    assert decode(signed(body), SORTS["total"]) == (Decimal("1.5"), LAST_ID)


GOOD = {"v": "x", "i": LAST_ID.hex, "s": "number", "t": 1_800_000_000}


@pytest.mark.parametrize(
    ("body", "sort"),
    [
        ([], "number"),
        ("string", "number"),
        ({**GOOD, "i": "not-hex"}, "number"),
        ({**GOOD, "i": 5}, "number"),
        ({k: v for k, v in GOOD.items() if k != "i"}, "number"),
        ({k: v for k, v in GOOD.items() if k != "v"}, "number"),
        ({**GOOD, "t": "1800000000"}, "number"),
        ({**GOOD, "t": True}, "number"),
        ({**GOOD, "s": 5}, "number"),
        ({**GOOD, "v": 5}, "number"),
        ({**GOOD, "v": "abc", "s": "total"}, "total"),
        ({**GOOD, "v": 1.5, "s": "total"}, "total"),
        ({**GOOD, "v": "1", "s": "line_count"}, "line_count"),
        ({**GOOD, "v": True, "s": "line_count"}, "line_count"),
        ({**GOOD, "v": 1, "s": "paid"}, "paid"),
        ({**GOOD, "v": "2026-02-30", "s": "issue_date"}, "issue_date"),
        ({**GOOD, "v": "2026-01-31T09:00:00", "s": "created_at"}, "created_at"),
        ({**GOOD, "v": "zz", "s": "customer_id"}, "customer_id"),
    ],
)
def test_signed_but_malformed_payload_is_invalid(body: object, sort: str) -> None:
    raises_invalid(lambda: decode(signed(body), SORTS[sort]), "cursor", "INVALID_CURSOR")


def test_encode_rejects_values_it_cannot_type_back() -> None:
    with pytest.raises(ValueError, match="time zone"):
        token_for(datetime(2026, 1, 31), SORTS["created_at"])
    with pytest.raises(TypeError):
        token_for(1.5, SORTS["total"])


def test_codec_requires_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        CursorCodec(b"")


def test_timestamp_cursor_keeps_the_instant() -> None:
    value = datetime(2026, 1, 31, 9, 0, 0, 123456, tzinfo=UTC)
    assert decode(token_for(value, SORTS["created_at"]), SORTS["created_at"])[0] == value


# --- query fingerprint ------------------------------------------------------------------


def test_query_fingerprint_is_length_prefixed() -> None:
    assert query_fingerprint("a", "bc") != query_fingerprint("ab", "c")
    assert query_fingerprint("a") != query_fingerprint("a", "")
    assert query_fingerprint() != query_fingerprint("")


def test_query_fingerprint_is_a_stable_sha256() -> None:
    assert query_fingerprint("x", "y") == query_fingerprint("x", "y")
    assert len(query_fingerprint("x")) == 32


@given(st.lists(st.text(), max_size=4), st.lists(st.text(), max_size=4))
def test_query_fingerprints_differ_when_parts_differ(a: list[str], b: list[str]) -> None:
    assert (query_fingerprint(*a) == query_fingerprint(*b)) == (a == b)
