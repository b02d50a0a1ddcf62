"""RecordsService.QueryRecords over the real gRPC port, the REST gateway and PostgreSQL.

docs/allocations-contract.md, "Records query": root `invoice_transactions`, the seed's
where-clause JSON (every `_op`, relation nesting, `_and` / `_or` / `_not`), order_by on
related fields, cursor pagination, records as snake_case proto JSON, and the errors.
Every query is checked twice: against the expected allocations of the dataset, and
against ListAllocations with the equivalent AIP-160 filter (same ids, same order).

The dataset is the one of test_allocations_filters.py, built once more in this module's
own tenant. Sections:

  helpers · where clauses · ordering and pages · records' shape · errors · workspaces · REST
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format, struct_pb2
from invoicing.v1 import allocations_pb2 as apb
from invoicing.v1 import allocations_pb2_grpc, invoices_pb2_grpc, records_pb2, records_pb2_grpc

from tests.conftest import Tokens, error_info, violations
from tests.factories import fails, invalid
from tests.integration.test_allocations_filters import (
    CONVERTED,
    FULLS,
    LIVE,
    PARTIALS,
    SAME_CURRENCY,
    SUBSCRIPTION,
    World,
    build_world,
    expected_order,
)

AllocStub = allocations_pb2_grpc.AllocationServiceStub
RecordsStub = records_pb2_grpc.RecordsServiceStub
Metadata = tuple[tuple[str, str], ...]
Json = dict[str, Any]
Code = grpc.StatusCode

DOMAIN = "invoicing.v1"
ROOT = "invoice_transactions"
TIMESTAMP_KEYS = ("created_at", "updated_at", "deleted_at")


@pytest.fixture(scope="module")
async def world(
    invoices: invoices_pb2_grpc.InvoiceServiceStub, allocations: AllocStub, tokens: Tokens
) -> World:
    return await build_world(invoices, allocations, tokens)


# ---- helpers ----------------------------------------------------------------------------


def struct(value: Json) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(value)
    return result


def fill(template: Any, values: dict[str, str]) -> Any:
    """Format every string of a JSON template with the World placeholders."""
    if isinstance(template, str):
        return template.format(**values)
    if isinstance(template, list):
        return [fill(item, values) for item in template]
    if isinstance(template, dict):
        return {key: fill(item, values) for key, item in template.items()}
    return template


async def query(
    records: RecordsStub,
    md: Metadata,
    where: Json | None = None,
    order: tuple[str, str] | None = None,
    **kwargs: Any,
) -> records_pb2.QueryRecordsResponse:
    request = records_pb2.QueryRecordsRequest(root=kwargs.pop("root", ROOT), **kwargs)
    if where is not None:
        request.where_clause.CopyFrom(struct(where))
    if order is not None:
        request.order_by.CopyFrom(records_pb2.RecordsOrderBy(field=order[0], direction=order[1]))
    result: records_pb2.QueryRecordsResponse = await records.QueryRecords(request, metadata=md)
    return result


def record_id(record: struct_pb2.Struct) -> str:
    value = record.fields["invoice_transaction_id"].string_value
    assert value and value == record.fields["id"].string_value, record
    return value


async def query_all(
    records: RecordsStub,
    md: Metadata,
    where: Json | None = None,
    order: tuple[str, str] | None = None,
    limit: int = 2,
    **kwargs: Any,
) -> list[str]:
    """Every page of a records query, following next_cursor; the ids in order."""
    found: list[str] = []
    cursor = ""
    for _ in range(100):
        page = await query(records, md, where, order, limit=limit, cursor=cursor, **kwargs)
        assert len(page.data) <= limit
        found += [record_id(r) for r in page.data]
        if not page.next_cursor:
            assert len(found) == len(set(found)), f"duplicates: {found}"
            return found
        assert page.data, "a page with a next cursor must not be empty"
        cursor = page.next_cursor
    raise AssertionError(f"no end after 100 pages: {found}")


async def list_all(
    allocations: AllocStub, md: Metadata, filter_text: str, order_by: str, **kwargs: Any
) -> list[str]:
    found: list[str] = []
    cursor = ""
    for _ in range(100):
        page = await allocations.ListAllocations(
            apb.ListAllocationsRequest(
                filter=filter_text, order_by=order_by, limit=2, cursor=cursor, **kwargs
            ),
            metadata=md,
        )
        found += [a.id for a in page.data]
        if not page.next_cursor:
            return found
        cursor = page.next_cursor
    raise AssertionError(f"no end after 100 pages: {found}")


# ---- where clauses ----------------------------------------------------------------------

# (where-clause template, equivalent AIP-160 filter template, expected allocation names)
WHERE_CASES: list[tuple[Json, str, set[str]]] = [
    ({"currency": {"_eq": "USD"}}, "currency = USD", {"b_usd", "d_usd"}),
    ({"allocation_type": {"_neq": "FULL"}}, "allocation_type != FULL", PARTIALS),
    ({"amount": {"_gt": "500"}}, "amount > 500", {"c_jpy", "c_eur", "sup"}),
    ({"amount": {"_gte": 500}}, "amount >= 500", {"a_full", "b_usd", "c_jpy", "c_eur", "sup"}),
    ({"invoice_amount": {"_lt": "460"}}, "invoice_amount < 460", {"d_usd"}),
    ({"accounting_amount": {"_lte": 460.0}}, "accounting_amount <= 460", {"b_usd", "d_usd"}),
    ({"amount": {"_eq": "500.00"}}, "amount = 500", {"a_full", "b_usd"}),
    (
        {"invoice_id": {"_in": ["{inv_a}", "{inv_c}"]}},
        "invoice_id IN ({inv_a}, {inv_c})",
        {"a_full", "c_jpy", "c_eur"},
    ),
    ({"amount": {"_in": ["800", 400]}}, "amount IN (800, 400)", {"sup", "d_usd"}),
    ({"currency": {"_in": ["EUR", "JPY"]}}, "currency IN (EUR, JPY)", SAME_CURRENCY | {"c_jpy"}),
    ({"composite_fx_rate": {"_is_null": True}}, "composite_fx_rate IS NULL", SAME_CURRENCY),
    ({"composite_fx_rate": {"_is_null": False}}, "composite_fx_rate IS NOT NULL", CONVERTED),
    ({"exchange_rate_id": {"_is_not_null": True}}, "exchange_rate_id IS NOT NULL", CONVERTED),
    (
        {"subscription_id": {"_is_not_null": False}},
        "subscription_id IS NULL",
        set(LIVE) - {"c_eur"},
    ),
    (
        {"composite_invoice_transaction_summary": {"_contains": "USD"}},
        'composite_invoice_transaction_summary : "USD"',
        {"b_usd", "d_usd"},
    ),
    (
        {"composite_fx_rate": {"_starts_with": "1 USD"}},
        'composite_fx_rate = "1 USD*"',
        {"b_usd", "d_usd"},
    ),
    (
        {"composite_invoice_transaction_summary": {"_ends_with": "(full)"}},
        'composite_invoice_transaction_summary = "*(full)"',
        FULLS,
    ),
    ({"composite_fx_rate": {"_ilike": "%usd%"}}, 'composite_fx_rate : "usd"', {"b_usd", "d_usd"}),
    (
        {"composite_invoice_transaction_summary": {"_ilike": "inv-2026-000_ <-%"}},
        'composite_invoice_transaction_summary = "INV-*"',
        set(LIVE) - {"sup"},
    ),
    ({"is_partial": {"_eq": True}}, "is_partial = true", PARTIALS),
    ({"is_partial": {"_eq": False}}, "is_partial = false", FULLS),
    ({"created_at": {"_lt": "{at_c_jpy}"}}, 'created_at < "{at_c_jpy}"', {"a_full", "b_usd"}),
    (
        {"created_at": {"_gte": "{at_c_eur}"}},
        'created_at >= "{at_c_eur}"',
        {"c_eur", "sup", "d_usd"},
    ),
    ({"transaction_id": {"_eq": "{txn_usd}"}}, "transaction_id = {txn_usd}", {"b_usd", "d_usd"}),
    ({"id": {"_neq": "{alc_sup}"}}, "id != {alc_sup}", set(LIVE) - {"sup"}),
    # relations
    (
        {"workspace": {"name": {"_ilike": "%acme%"}}},
        'workspace.name : "acme"',
        set(LIVE),
    ),
    ({"workspace": {"name": {"_ilike": "%globex%"}}}, 'workspace.name : "globex"', set()),
    (
        {"invoice": {"total": {"_gt": "1000"}}},
        "invoice.total > 1000",
        {"b_usd", "c_jpy", "c_eur", "d_usd"},
    ),
    (
        {"invoice": {"grand_total": {"_gt": 1000}}},
        "invoice.grand_total > 1000",
        {"b_usd", "c_jpy", "c_eur", "d_usd"},
    ),
    (
        {"invoice": {"number": {"_starts_with": "INV-"}}},
        'invoice.number = "INV-*"',
        set(LIVE) - {"sup"},
    ),
    (
        {"exchange_rate": {"rate_date": {"_is_null": True}}},
        "exchange_rate.rate_date IS NULL",
        SAME_CURRENCY,
    ),
    (
        {"exchange_rate": {"rate_date": {"_eq": "2026-04-28"}}},
        "exchange_rate.rate_date = 2026-04-28",
        {"b_usd"},
    ),
    (
        {"transaction": {"instructed_amount": {"_gte": "1000"}, "currency": {"_eq": "USD"}}},
        "transaction.instructed_amount >= 1000 AND transaction.currency = USD",
        {"b_usd", "d_usd"},
    ),
    ({"transaction": {"amount": {"_lt": 1000}}}, "transaction.amount < 1000", {"sup"}),
    (
        {"subscription": {"id": {"_eq": SUBSCRIPTION}}},
        f"subscription.id = {SUBSCRIPTION}",
        {"c_eur"},
    ),
    # boolean structure
    (
        {"_and": [{"is_partial": {"_eq": True}}, {"invoice": {"total": {"_gt": "1000"}}}]},
        "is_partial = true AND invoice.total > 1000",
        {"b_usd", "c_jpy", "d_usd"},
    ),
    (
        {"_or": [{"currency": {"_eq": "JPY"}}, {"allocation_type": {"_eq": "FULL"}}]},
        "currency = JPY OR allocation_type = FULL",
        FULLS | {"c_jpy"},
    ),
    ({"_not": {"currency": {"_eq": "EUR"}}}, "NOT currency = EUR", CONVERTED),
    (
        {
            "_and": [
                {"_or": [{"currency": {"_eq": "USD"}}, {"currency": {"_eq": "JPY"}}]},
                {"_not": {"invoice": {"number": {"_eq": "INV-2026-0004"}}}},
            ]
        },
        '(currency = USD OR currency = JPY) AND NOT invoice.number = "INV-2026-0004"',
        {"b_usd", "c_jpy"},
    ),
    (
        {"amount": {"_gte": "400", "_lt": "800"}},
        "amount >= 400 AND amount < 800",
        {"a_full", "b_usd", "d_usd"},
    ),
    (
        {"currency": {"_eq": "EUR"}, "is_partial": {"_eq": False}},
        "currency = EUR AND is_partial = false",
        FULLS,
    ),
    (
        {"_or": [{"workspace": {"name": {"_ilike": "%acme%"}}}, {"amount": {"_gt": 0}}]},
        'workspace.name : "acme" OR amount > 0',
        set(LIVE),
    ),
    ({}, "", set(LIVE)),
]


def _case_id(case: tuple[Json, str, set[str]]) -> str:
    return case[1] or "empty"


@pytest.mark.parametrize(
    ("where", "aip", "expected"), WHERE_CASES, ids=[_case_id(c) for c in WHERE_CASES]
)
async def test_where_clause_matches_list_allocations_filter(
    records: RecordsStub,
    allocations: AllocStub,
    world: World,
    where: Json,
    aip: str,
    expected: set[str],
) -> None:
    values = world.vars()
    ids = await query_all(records, world.md, fill(where, values), ("created_at", "asc"))
    assert {world.alloc_name(i) for i in ids} == expected
    listed = await list_all(allocations, world.md, aip.format(**values), "created_at asc")
    assert ids == listed, "QueryRecords and ListAllocations differ"
    counted = await query(records, world.md, fill(where, values), include_total=True, limit=1)
    assert counted.HasField("total") and counted.total == len(expected)


async def test_show_deleted_includes_the_reversed_allocation(
    records: RecordsStub, world: World
) -> None:
    where = {"deleted_at": {"_is_not_null": True}}
    assert await query_all(records, world.md, where) == []
    ids = await query_all(records, world.md, where, show_deleted=True)
    assert ids == [world.allocs["b_rev"].id]
    by_invoice = {"invoice_id": {"_eq": world.allocs["b_rev"].invoice_id}}
    got = await query_all(records, world.md, by_invoice, ("created_at", "asc"), show_deleted=True)
    assert [world.alloc_name(i) for i in got] == ["b_usd", "b_rev"]


# ---- ordering and pages -----------------------------------------------------------------

RECORD_SORTS: list[tuple[tuple[str, str] | None, str, bool]] = [
    # (records order_by, ListAllocations order_by, descending)
    (("workspace.name", "asc"), "workspace.name asc", False),
    (("workspace.name", "desc"), "workspace.name desc", True),
    (("invoice.total", "desc"), "invoice.total desc", True),
    (("invoice.total", "asc"), "invoice.total asc", False),
    (("transaction.amount", "desc"), "transaction.amount desc", True),
    (("exchange_rate.rate_date", "asc"), "exchange_rate.rate_date asc", False),
    (("exchange_rate.rate_date", ""), "exchange_rate.rate_date", True),
    (("invoice.number", "asc"), "invoice.number asc", False),
    (("amount", "asc"), "amount asc", False),
    (("composite_fx_rate", "desc"), "composite_fx_rate desc", True),
    (None, "", True),
]


@pytest.mark.parametrize(
    ("order", "list_order", "descending"),
    RECORD_SORTS,
    ids=[c[1] or "default" for c in RECORD_SORTS],
)
async def test_order_by_and_pages_match_list_allocations(
    records: RecordsStub,
    allocations: AllocStub,
    world: World,
    order: tuple[str, str] | None,
    list_order: str,
    descending: bool,
) -> None:
    sort_field = order[0] if order else "created_at"
    expected = expected_order(
        LIVE,
        lambda n: world.alloc_key(n, sort_field),
        lambda n: world.allocs[n].id,
        descending,
    )
    for limit in (1, 2, 50):
        ids = await query_all(records, world.md, None, order, limit=limit)
        assert [world.alloc_name(i) for i in ids] == expected, f"limit {limit}"
    assert await query_all(records, world.md, None, order) == await list_all(
        allocations, world.md, "", list_order
    )


async def test_workspace_name_order_with_where_clause_and_pages(
    records: RecordsStub, allocations: AllocStub, world: World
) -> None:
    where = {"workspace": {"name": {"_ilike": "%acme%"}}, "invoice": {"total": {"_gt": "1000"}}}
    ids = await query_all(records, world.md, where, ("workspace.name", "asc"), limit=1)
    # All in one workspace: the name ties, so the id (ascending) decides.
    expected = sorted(world.allocs[n].id for n in ("b_usd", "c_jpy", "c_eur", "d_usd"))
    assert ids == expected
    listed = await list_all(
        allocations,
        world.md,
        'workspace.name : "acme" AND invoice.total > 1000',
        "workspace.name asc",
    )
    assert ids == listed


async def test_cursor_is_bound_to_its_query(records: RecordsStub, world: World) -> None:
    where = {"amount": {"_gt": "0"}}
    first = await query(records, world.md, where, ("invoice.total", "asc"), limit=1)
    assert first.next_cursor
    await query(
        records, world.md, where, ("invoice.total", "asc"), limit=1, cursor=first.next_cursor
    )
    for other_where, other_order in [
        ({"amount": {"_gt": "1"}}, ("invoice.total", "asc")),
        (where, ("invoice.total", "desc")),
        (where, ("transaction.amount", "asc")),
    ]:
        err = await fails(
            query(records, world.md, other_where, other_order, limit=1, cursor=first.next_cursor),
            Code.INVALID_ARGUMENT,
        )
        assert "cursor" in violations(err)


# ---- records' shape ---------------------------------------------------------------------


def as_json(message: apb.Allocation) -> Json:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def comparable(record: Json) -> Json:
    """Timestamps as instants (proto JSON may print 0, 3, 6 or 9 fractional digits)."""
    result = dict(record)
    for key in TIMESTAMP_KEYS:
        if isinstance(result.get(key), str):
            result[key] = datetime.fromisoformat(result[key].replace("Z", "+00:00"))
    if result.get("deleted_at") is None:
        result.pop("deleted_at", None)  # unset: omitted or null
    return result


async def test_records_are_allocations_in_snake_case_proto_json(
    records: RecordsStub, world: World
) -> None:
    page = await query(records, world.md, limit=50, show_deleted=True)
    got = {record_id(r): json_format.MessageToDict(r) for r in page.data}
    assert set(got) == {a.id for a in world.allocs.values()}
    for name, alloc in world.allocs.items():
        record = got[alloc.id]
        assert comparable(record) == comparable(as_json(alloc)), name
    some = got[world.allocs["a_full"].id]
    for key in (
        "invoice_transaction_id",
        "accounting_amount",
        "accounting_currency",
        "invoice_amount",
        "composite_invoice_transaction_summary",
        "workspace_id",
        "accounting_exchange_rate_id",
    ):
        assert key in some, key
    # Zero values are included.
    assert some["composite_fx_rate"] == ""
    assert some["exchange_rate_id"] == ""
    assert some["is_partial"] is False
    assert some["allocation_type"] == "ALLOCATION_TYPE_FULL"
    assert not any(key != key.lower() for key in some), "camelCase key"


# ---- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "root", ["invoices", "invoice_transaction", "allocations", "INVOICE_TRANSACTIONS"]
)
async def test_unknown_root(records: RecordsStub, world: World, root: str) -> None:
    err = await invalid(query(records, world.md, root=root), "root", "UNKNOWN_ROOT")
    assert error_info(err).reason == "UNKNOWN_ROOT"


@pytest.mark.parametrize(
    ("where", "filter_field"),
    [
        ({"colour": {"_eq": "red"}}, "colour"),
        ({"invoice": {"colour": {"_eq": "red"}}}, "invoice.colour"),
        # The dotted path of the key that does not resolve: here the relation itself.
        ({"customer": {"name": {"_eq": "acme"}}}, "customer"),
        ({"_and": [{"amount": {"_gt": 0}}, {"nope": {"_is_null": True}}]}, "nope"),
        ({"_not": {"workspace": {"secret": {"_eq": "x"}}}}, "workspace.secret"),
    ],
)
async def test_unknown_field(
    records: RecordsStub, world: World, where: Json, filter_field: str
) -> None:
    err = await invalid(query(records, world.md, where), "where_clause", "UNKNOWN_FILTER_FIELD")
    assert error_info(err).metadata["filterField"] == filter_field


@pytest.mark.parametrize(
    ("where", "filter_field", "operator"),
    [
        ({"amount": {"_contains": "5"}}, "amount", "_contains"),
        ({"amount": {"_ilike": "%5%"}}, "amount", "_ilike"),
        ({"invoice": {"total": {"_starts_with": "1"}}}, "invoice.total", "_starts_with"),
        ({"currency": {"_ends_with": "D"}}, "currency", "_ends_with"),
        ({"allocation_type": {"_gt": "FULL"}}, "allocation_type", "_gt"),
        ({"is_partial": {"_neq": True}}, "is_partial", "_neq"),
        ({"is_partial": {"_in": [True]}}, "is_partial", "_in"),
        ({"created_at": {"_in": ["2026-01-01T00:00:00Z"]}}, "created_at", "_in"),
        ({"created_at": {"_contains": "2026"}}, "created_at", "_contains"),
        ({"composite_fx_rate": {"_gt": "a"}}, "composite_fx_rate", "_gt"),
        ({"workspace": {"name": {"_lte": "a"}}}, "workspace.name", "_lte"),
        ({"invoice_id": {"_ilike": "inv%"}}, "invoice_id", "_ilike"),
    ],
)
async def test_operator_not_allowed_for_the_type(
    records: RecordsStub, world: World, where: Json, filter_field: str, operator: str
) -> None:
    err = await invalid(
        query(records, world.md, where), "where_clause", "UNSUPPORTED_FILTER_OPERATOR"
    )
    info = error_info(err)
    assert (info.metadata["filterField"], info.metadata["operator"]) == (filter_field, operator)


@pytest.mark.parametrize(
    ("where", "filter_field"),
    [
        ({"amount": {"_eq": "abc"}}, "amount"),
        ({"amount": {"_gt": "1e3"}}, "amount"),
        ({"is_partial": {"_eq": "yes"}}, "is_partial"),
        ({"allocation_type": {"_eq": "HALF"}}, "allocation_type"),
        ({"created_at": {"_gt": "yesterday"}}, "created_at"),
        ({"invoice_id": {"_eq": "txn_01JD6N8Q6Z7T3M3Y5C4V8R2K1P"}}, "invoice_id"),
        ({"exchange_rate": {"rate_date": {"_eq": "2026-04-31"}}}, "exchange_rate.rate_date"),
        ({"composite_fx_rate": {"_is_null": "yes"}}, "composite_fx_rate"),
    ],
)
async def test_ill_typed_value(
    records: RecordsStub, world: World, where: Json, filter_field: str
) -> None:
    err = await invalid(query(records, world.md, where), "where_clause", "INVALID_FILTER_VALUE")
    assert error_info(err).metadata["filterField"] == filter_field


@pytest.mark.parametrize(
    "where",
    [
        {"amount": {"gt": "5"}},
        {"amount": {"eq": 5, "_lt": 10}},
        {"amount": "5"},
        {"amount": 5},
        {"amount": ["_gt", 5]},
        {"invoice": {"total": "1000"}},
        {"_and": {"amount": {"_gt": 0}}},
        {"_or": "amount > 0"},
        {"_not": [{"amount": {"_gt": 0}}]},
        {"_and": ["amount"]},
        {"_gt": 5},
    ],
    ids=repr,
)
async def test_malformed_where_clause(records: RecordsStub, world: World, where: Json) -> None:
    await invalid(query(records, world.md, where), "where_clause", "INVALID_WHERE_CLAUSE")


async def test_unknown_order_by_field_names_order_by_field(
    records: RecordsStub, world: World
) -> None:
    for field_name in ("colour", "invoice.colour", "is_partial"):
        err = await fails(
            query(records, world.md, None, (field_name, "asc")), Code.INVALID_ARGUMENT
        )
        assert "order_by.field" in violations(err), violations(err)


async def test_negative_limit_and_tampered_cursor(records: RecordsStub, world: World) -> None:
    err = await fails(query(records, world.md, limit=-1), Code.INVALID_ARGUMENT)
    assert "limit" in violations(err)
    page = await query(records, world.md, limit=1)
    tampered = page.next_cursor[:-2] + ("AA" if not page.next_cursor.endswith("AA") else "BB")
    err = await fails(query(records, world.md, limit=1, cursor=tampered), Code.INVALID_ARGUMENT)
    assert "cursor" in violations(err)


# ---- workspaces -------------------------------------------------------------------------


async def test_workspace_id_not_in_token_is_permission_denied(
    records: RecordsStub, world: World, tokens: Tokens
) -> None:
    stranger = tokens.md(uuid.uuid4())
    err = await fails(
        query(records, stranger, workspace_id=str(world.tenant)), Code.PERMISSION_DENIED
    )
    assert error_info(err).reason == "WORKSPACE_NOT_ALLOWED"
    # Another workspace than the own one, from the own tenant's token, too.
    err = await fails(
        query(records, world.md, workspace_id=str(uuid.uuid4())), Code.PERMISSION_DENIED
    )
    assert error_info(err).reason == "WORKSPACE_NOT_ALLOWED"


async def test_workspace_id_from_the_workspaces_claim_reads_that_workspace(
    records: RecordsStub, world: World, tokens: Tokens
) -> None:
    member = tokens.md(uuid.uuid4(), workspaces=[str(world.tenant)])
    where = {"workspace": {"name": {"_ilike": "%acme%"}}}
    ids = await query_all(
        records, member, where, ("workspace.name", "asc"), workspace_id=str(world.tenant)
    )
    assert ids == sorted(world.allocs[n].id for n in LIVE)
    # Without workspace_id the member reads its own (empty) tenant.
    assert await query_all(records, member, where) == []
    # Its own tenant's id is always allowed.
    own = await query_all(records, world.md, where, workspace_id=str(world.tenant))
    assert own == await query_all(records, world.md, where)
    assert sorted(own) == sorted(world.allocs[n].id for n in LIVE)


async def test_malformed_workspace_id(records: RecordsStub, world: World) -> None:
    for workspace_id in ("acme", f"{world.tenant}x", str(world.tenant)[:-1]):
        err = await fails(
            query(records, world.md, workspace_id=workspace_id), Code.INVALID_ARGUMENT
        )
        assert "workspace_id" in violations(err), violations(err)


async def test_read_permission_is_required(
    records: RecordsStub, world: World, tokens: Tokens
) -> None:
    no_read = tokens.md(world.tenant, permissions=["invoices.read", "invoices.write"])
    await fails(query(records, no_read), Code.PERMISSION_DENIED)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await records.QueryRecords(records_pb2.QueryRecordsRequest(root=ROOT))
    assert caught.value.code() == Code.UNAUTHENTICATED


# ---- REST: POST /v1/records/query -------------------------------------------------------


@pytest.fixture
async def http(rest_base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=rest_base_url, timeout=30) as client:
        yield client


def bearer(tokens: Tokens, world: World) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.token(world.tenant)}"}


def seed_page(response: httpx.Response) -> Json:
    """A records query answered on a seed 003 path: a JSON:API list document (`data[]`,
    `meta.total`, `meta.count`, `links.next`), read with money as exact Decimals."""
    assert response.status_code == 200, response.text
    payload: Json = json.loads(response.text, parse_float=Decimal)
    assert set(payload) == {"data", "meta", "links"}, payload
    assert payload["meta"]["count"] == len(payload["data"]), payload["meta"]
    return payload


def seed_record_id(record: Json, world: World) -> str:
    """One row: an `invoice_transaction` resource object carrying the allocation's facts
    (amounts as JSON numbers with exactly the stored digits, enums short, ids as
    relationships); its id."""
    assert record["type"] == "invoice_transaction", record
    value: str = record["id"]
    attributes, relationships = record["attributes"], record["relationships"]
    assert attributes["invoice_transaction_id"] == value, record
    alloc = next(a for a in world.allocs.values() if a.id == value)
    for name in ("amount", "invoice_amount", "accounting_amount"):
        number = attributes[name]
        assert isinstance(number, Decimal | int) and not isinstance(number, bool), record
        assert str(number) == getattr(alloc, name), (name, record)
    assert attributes["allocation_type"] in ("full", "partial"), record
    assert (
        attributes["allocation_type"]
        == apb.AllocationType.Name(alloc.allocation_type).removeprefix("ALLOCATION_TYPE_").lower()
    )
    assert relationships["invoice"]["data"] == {"type": "invoice", "id": alloc.invoice_id}
    assert relationships["transaction"]["data"] == {
        "type": "transaction",
        "id": alloc.transaction_id,
    }
    rate = relationships["exchange_rate"]["data"]
    if alloc.exchange_rate_id:
        assert rate == {"type": "exchange_rate", "id": alloc.exchange_rate_id}, record
    else:
        assert rate is None, record
    assert "invoice_id" not in attributes and "transaction_id" not in attributes, record
    return value


async def test_rest_query_with_the_seed_json_shape(
    http: httpx.AsyncClient, records: RecordsStub, world: World, tokens: Tokens
) -> None:
    body = {
        "root": "invoice_transactions",
        "whereClause": {"workspace": {"name": {"_ilike": "%acme%"}}},
        "orderBy": {"field": "workspace.name", "direction": "asc"},
    }
    response = await http.post("/v1/records/query", json=body, headers=bearer(tokens, world))
    payload = seed_page(response)
    rest_ids = [seed_record_id(r, world) for r in payload["data"]]
    grpc_ids = await query_all(
        records, world.md, body["whereClause"], ("workspace.name", "asc"), limit=50
    )
    assert rest_ids == grpc_ids == sorted(world.allocs[n].id for n in LIVE)
    assert payload["meta"]["total"] == len(LIVE) and payload["links"]["next"] is None
    for record in payload["data"]:
        attributes = record["attributes"]
        assert "accounting_amount" in attributes and "accountingAmount" not in attributes


async def test_rest_query_snake_case_body_pages_and_nested_relation(
    http: httpx.AsyncClient, allocations: AllocStub, world: World, tokens: Tokens
) -> None:
    body: Json = {
        "root": "invoice_transactions",
        "where_clause": {"invoice": {"total": {"_gt": "1000"}}},
        "order_by": {"field": "invoice.total", "direction": "desc"},
        "limit": 1,
    }
    ids: list[str] = []
    for _ in range(20):
        response = await http.post("/v1/records/query", json=body, headers=bearer(tokens, world))
        payload = seed_page(response)
        assert payload["meta"]["count"] == 1 and payload["meta"]["total"] == 4, payload
        ids += [seed_record_id(r, world) for r in payload["data"]]
        cursor = payload["links"]["next"]  # the next page's cursor, null on the last
        assert "next_cursor" not in payload and "nextCursor" not in payload
        if cursor is None:
            break
        assert isinstance(cursor, str) and cursor, payload
        body["cursor"] = cursor
    assert ids == await list_all(
        allocations, world.md, "invoice.total > 1000", "invoice.total desc"
    )
    assert {world.alloc_name(i) for i in ids} == {"b_usd", "c_jpy", "c_eur", "d_usd"}


async def test_rest_query_errors(http: httpx.AsyncClient, world: World, tokens: Tokens) -> None:
    headers = bearer(tokens, world)
    unknown_root = await http.post("/v1/records/query", json={"root": "invoices"}, headers=headers)
    assert unknown_root.status_code == 400, unknown_root.text
    assert "UNKNOWN_ROOT" in unknown_root.text
    bad_op = await http.post(
        "/v1/records/query",
        json={"root": ROOT, "whereClause": {"amount": {"_contains": "5"}}},
        headers=headers,
    )
    assert bad_op.status_code == 400, bad_op.text
    assert "UNSUPPORTED_FILTER_OPERATOR" in bad_op.text
    anonymous = await http.post("/v1/records/query", json={"root": ROOT})
    assert anonymous.status_code == 401, anonymous.text
