"""List filters, sorts and cursors of AllocationService over the real gRPC port and PostgreSQL.

docs/allocations-contract.md, "Lists and filters": ListAllocations (own fields, every
operator on every field type, related-object fields through joins, related-field ordering
with cursor pagination), ListTransactions and ListExchangeRates.

The module builds one dataset in its own tenant (`world`, module scoped) and every test
only reads it, so the parametrized tables stay cheap. Sections:

  dataset · helpers · dataset sanity · ListAllocations filters (own fields, related
  fields) · filter errors · ListAllocations ordering and cursors · ListTransactions
  · ListExchangeRates · cursors bound to their query
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2
from google.type import date_pb2
from invoicing.v1 import allocations_pb2 as apb
from invoicing.v1 import allocations_pb2_grpc, invoices_pb2_grpc
from invoicing.v1 import invoices_pb2 as ipb

from tests.conftest import Tokens, error_info, sample_invoice, violations
from tests.factories import create_rate, create_txn, fails, invalid

AllocStub = allocations_pb2_grpc.AllocationServiceStub
InvoiceStub = invoices_pb2_grpc.InvoiceServiceStub
Metadata = tuple[tuple[str, str], ...]
Code = grpc.StatusCode

DOMAIN = "invoicing.v1"
PARTY_A = "0b9c4a52-8d0e-4a8e-9a51-2f7d4d2c1e11"  # sample_invoice's counterparty
PARTY_B = "5e0c7a1b-3f4d-4c2e-8b6a-9d1e2f3a4b5c"
SUBSCRIPTION = "7d3f9a10-2b4c-4e5f-8a6b-1c2d3e4f5a6b"
WORKSPACE_NAME = "Acme Holdings GmbH"
VALID_BODY = "01JD6N8Q6Z7T3M3Y5C4V8R2K1P"  # 26 Crockford base32 characters, never created

RECEIVABLE = apb.TRANSACTION_DIRECTION_RECEIVABLE
PAYABLE = apb.TRANSACTION_DIRECTION_PAYABLE
FULL, PARTIAL = apb.ALLOCATION_TYPE_FULL, apb.ALLOCATION_TYPE_PARTIAL


# ---- dataset ----------------------------------------------------------------------------
#
# Invoices (EUR, issued in 2026, numbered in this order; no tax):
#   a   INV-2026-0001   500.00  due 2026-05-01
#   b   INV-2026-0002  1200.00  due 2026-06-01
#   c   INV-2026-0003  2500.00  due 2026-07-01
#   d   INV-2026-0004  3000.00  no due date
#   sup SUP-7 (supplier, payable) 800.00 due 2026-06-15
# Exchange rates:
#   usd      1 USD = 0.92 EUR  2026-04-28 ecb
#   usd_old  1 USD = 0.95 EUR  2026-04-01 manual
#   jpy      1 EUR = 160 JPY   2026-04-20 ecb
#   gbp      1 GBP = 1.17 EUR  2026-04-15 boe     (never used by an allocation)
# Transactions (receivable unless noted):
#   eur1    1000.00 EUR    2026-04-29  "SEPA-ACME-001"  counterparty A
#   eur2    2500.00 EUR    2026-05-02  "SEPA-ACME-002"  subscription SUBSCRIPTION
#   usd     1000.00 USD    2026-04-30  "WIRE-US-77"     counterparty B
#   jpy     160000  JPY    2026-04-25  "JP-FURIKOMI-9"
#   pay      800.00 EUR    2026-05-03  "OUT-SUP-7"      payable
#   spare     50.00 USD    2026-05-05  ""               (never allocated)
#   gone      10.00 GBP    2026-05-06  "to delete"      (deleted)
# Allocations, created in this order (accounting currency EUR = every invoice's):
#   a_full   eur1 -> a     500.00 EUR  -> 500.00 EUR   FULL
#   b_usd    usd  -> b     500.00 USD  -> 460.00 EUR   PARTIAL (rate usd, picked by date)
#   c_jpy    jpy  -> c     160000 JPY  -> 1000.00 EUR  PARTIAL (rate jpy, inverse)
#   b_rev    eur1 -> b     200.00 EUR  -> 200.00 EUR   PARTIAL, then reversed
#   c_eur    eur2 -> c     1500.00 EUR -> 1500.00 EUR  FULL (subscription from eur2)
#   sup      pay  -> sup   800.00 EUR  -> 800.00 EUR   FULL
#   d_usd    usd  -> d     400.00 USD  -> 380.00 EUR   PARTIAL (rate usd_old, explicit)

LIVE = ("a_full", "b_usd", "c_jpy", "c_eur", "sup", "d_usd")
ALL = (*LIVE, "b_rev")
CREATION_ORDER = ("a_full", "b_usd", "c_jpy", "b_rev", "c_eur", "sup", "d_usd")
SAME_CURRENCY = {"a_full", "c_eur", "sup"}
CONVERTED = {"b_usd", "c_jpy", "d_usd"}
FULLS = {"a_full", "c_eur", "sup"}
PARTIALS = {"b_usd", "c_jpy", "d_usd"}


def day(text: str) -> date_pb2.Date:
    value = date.fromisoformat(text)
    return date_pb2.Date(year=value.year, month=value.month, day=value.day)


def as_date(value: date_pb2.Date) -> date | None:
    if not (value.year or value.month or value.day):
        return None
    return date(value.year, value.month, value.day)


def as_time(value: timestamp_pb2.Timestamp) -> datetime:
    return value.ToDatetime(tzinfo=UTC)


def rfc3339(value: timestamp_pb2.Timestamp) -> str:
    return as_time(value).isoformat()


def line(amount: str) -> ipb.LineItem:
    return ipb.LineItem(description="Work", quantity="1", unit_price=amount)


@dataclass
class World:
    """The module's dataset: every resource by short name, as last read back."""

    tenant: uuid.UUID
    md: Metadata
    invoices: dict[str, ipb.Invoice] = field(default_factory=dict)
    rates: dict[str, apb.ExchangeRate] = field(default_factory=dict)
    txns: dict[str, apb.Transaction] = field(default_factory=dict)
    allocs: dict[str, apb.Allocation] = field(default_factory=dict)
    invoice_of: dict[str, str] = field(default_factory=dict)  # allocation -> invoice name
    txn_of: dict[str, str] = field(default_factory=dict)  # allocation -> transaction name
    rate_of: dict[str, str | None] = field(default_factory=dict)  # allocation -> rate name

    def alloc_name(self, alloc_id: str) -> str:
        return next((n for n, a in self.allocs.items() if a.id == alloc_id), alloc_id)

    def txn_name(self, txn_id: str) -> str:
        return next((n for n, t in self.txns.items() if t.id == txn_id), txn_id)

    def rate_name(self, rate_id: str) -> str:
        return next((n for n, r in self.rates.items() if r.id == rate_id), rate_id)

    def vars(self) -> dict[str, str]:
        """Placeholders for the filter tables: `{inv_b}`, `{txn_usd}`, `{at_c_jpy}`, ..."""
        values: dict[str, str] = {"tenant": str(self.tenant), "subscription": SUBSCRIPTION}
        values |= {f"inv_{n}": i.id for n, i in self.invoices.items()}
        values |= {f"txn_{n}": t.id for n, t in self.txns.items()}
        values |= {f"fxr_{n}": r.id for n, r in self.rates.items()}
        for name, alloc in self.allocs.items():
            values[f"alc_{name}"] = alloc.id
            values[f"at_{name}"] = rfc3339(alloc.created_at)
            values[f"fx_{name}"] = alloc.composite_fx_rate
            values[f"summary_{name}"] = alloc.composite_invoice_transaction_summary
        return values

    def alloc_key(self, name: str, sort_field: str) -> Any:
        """The value ListAllocations sorts `name` by for `sort_field` (None: SQL NULL)."""
        alloc = self.allocs[name]
        invoice = self.invoices[self.invoice_of[name]]
        txn = self.txns[self.txn_of[name]]
        rate_name = self.rate_of[name]
        rate = self.rates[rate_name] if rate_name else None
        keys: dict[str, Callable[[], Any]] = {
            "created_at": lambda: as_time(alloc.created_at),
            "updated_at": lambda: as_time(alloc.updated_at),
            "deleted_at": lambda: (
                as_time(alloc.deleted_at) if alloc.HasField("deleted_at") else None
            ),
            "amount": lambda: Decimal(alloc.amount),
            "currency": lambda: alloc.currency,
            "accounting_amount": lambda: Decimal(alloc.accounting_amount),
            "accounting_currency": lambda: alloc.accounting_currency,
            "allocation_type": lambda: apb.AllocationType.Name(alloc.allocation_type),
            "composite_fx_rate": lambda: alloc.composite_fx_rate or None,
            "composite_invoice_transaction_summary": lambda: (
                alloc.composite_invoice_transaction_summary
            ),
            "invoice_transaction_id": lambda: alloc.invoice_transaction_id,
            "invoice.total": lambda: Decimal(invoice.total),
            "invoice.number": lambda: invoice.number,
            "invoice.due_date": lambda: as_date(invoice.due_date),
            "transaction.amount": lambda: Decimal(txn.amount),
            "transaction.value_date": lambda: as_date(txn.value_date),
            "exchange_rate.rate_date": lambda: as_date(rate.rate_date) if rate else None,
            "workspace.name": lambda: WORKSPACE_NAME,
        }
        return keys[sort_field]()


async def _invoice(invoices: InvoiceStub, md: Metadata, draft: ipb.Invoice) -> ipb.Invoice:
    created: ipb.Invoice = await invoices.CreateInvoice(
        ipb.CreateInvoiceRequest(invoice=draft), metadata=md
    )
    issued: ipb.Invoice = await invoices.IssueInvoice(
        ipb.IssueInvoiceRequest(id=created.id), metadata=md
    )
    return issued


async def _rate(
    allocations: AllocStub, md: Metadata, base: str, quote: str, rate: str, on: str, source: str
) -> apb.ExchangeRate:
    return await create_rate(allocations, md, base, quote, rate, date.fromisoformat(on), source)


async def _txn(
    allocations: AllocStub,
    md: Metadata,
    amount: str,
    currency: str,
    value_date: str,
    reference: str,
    direction: int = RECEIVABLE,
    **extra: str,
) -> apb.Transaction:
    when = date.fromisoformat(value_date)
    return await create_txn(
        allocations, md, amount, currency, direction, when, reference=reference, **extra
    )


async def build_world(
    invoices: InvoiceStub, allocations: AllocStub, tokens: Tokens, tenant: uuid.UUID | None = None
) -> World:
    """Create the dataset described above in a fresh tenant and read every row back."""
    tenant = tenant or uuid.uuid4()
    md = tokens.md(tenant)
    world = World(tenant=tenant, md=md)

    await allocations.UpdateWorkspaceSettings(
        apb.UpdateWorkspaceSettingsRequest(
            settings=apb.WorkspaceSettings(name=WORKSPACE_NAME),
            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
        ),
        metadata=md,
    )

    drafts = {
        "a": sample_invoice(
            line_items=[line("500.00")], issue_date=day("2026-04-01"), due_date=day("2026-05-01")
        ),
        "b": sample_invoice(
            line_items=[line("1200.00")], issue_date=day("2026-04-02"), due_date=day("2026-06-01")
        ),
        "c": sample_invoice(
            line_items=[line("2500.00")], issue_date=day("2026-04-03"), due_date=day("2026-07-01")
        ),
        "d": sample_invoice(line_items=[line("3000.00")], issue_date=day("2026-04-04")),
        "sup": sample_invoice(
            type=ipb.INVOICE_TYPE_SUPPLIER,
            number="SUP-7",
            line_items=[line("800.00")],
            issue_date=day("2026-04-05"),
            due_date=day("2026-06-15"),
        ),
    }
    for name, draft in drafts.items():  # sequentially: the numbers follow this order
        world.invoices[name] = await _invoice(invoices, md, draft)

    world.rates["usd"] = await _rate(allocations, md, "USD", "EUR", "0.92", "2026-04-28", "ecb")
    world.rates["usd_old"] = await _rate(
        allocations, md, "USD", "EUR", "0.95", "2026-04-01", "manual"
    )
    world.rates["jpy"] = await _rate(allocations, md, "EUR", "JPY", "160", "2026-04-20", "ecb")
    world.rates["gbp"] = await _rate(allocations, md, "GBP", "EUR", "1.17", "2026-04-15", "boe")

    txns = world.txns
    txns["eur1"] = await _txn(
        allocations, md, "1000.00", "EUR", "2026-04-29", "SEPA-ACME-001", counterparty_id=PARTY_A
    )
    txns["eur2"] = await _txn(
        allocations,
        md,
        "2500.00",
        "EUR",
        "2026-05-02",
        "SEPA-ACME-002",
        subscription_id=SUBSCRIPTION,
    )
    txns["usd"] = await _txn(
        allocations, md, "1000.00", "USD", "2026-04-30", "WIRE-US-77", counterparty_id=PARTY_B
    )
    txns["jpy"] = await _txn(allocations, md, "160000", "JPY", "2026-04-25", "JP-FURIKOMI-9")
    txns["pay"] = await _txn(allocations, md, "800.00", "EUR", "2026-05-03", "OUT-SUP-7", PAYABLE)
    txns["spare"] = await _txn(allocations, md, "50.00", "USD", "2026-05-05", "")
    txns["gone"] = await _txn(allocations, md, "10.00", "GBP", "2026-05-06", "to delete")
    await allocations.DeleteTransaction(
        apb.DeleteTransactionRequest(id=txns["gone"].id), metadata=md
    )

    plan: list[tuple[str, str, str, str, str | None]] = [
        # name, invoice, transaction, amount, explicit rate
        ("a_full", "a", "eur1", "500.00", None),
        ("b_usd", "b", "usd", "500.00", None),
        ("c_jpy", "c", "jpy", "160000", None),
        ("b_rev", "b", "eur1", "200.00", None),
        ("c_eur", "c", "eur2", "1500.00", None),
        ("sup", "sup", "pay", "800.00", None),
        ("d_usd", "d", "usd", "400.00", "usd_old"),
    ]
    rate_used = {"b_usd": "usd", "c_jpy": "jpy", "d_usd": "usd_old"}
    for name, invoice, txn, amount, explicit in plan:
        request = apb.CreateAllocationRequest(
            allocation=apb.Allocation(
                invoice_id=world.invoices[invoice].id,
                transaction_id=txns[txn].id,
                amount=amount,
                exchange_rate_id=world.rates[explicit].id if explicit else "",
            )
        )
        world.allocs[name] = await allocations.CreateAllocation(request, metadata=md)
        world.invoice_of[name], world.txn_of[name] = invoice, txn
        world.rate_of[name] = rate_used.get(name)
    await allocations.DeleteAllocation(
        apb.DeleteAllocationRequest(id=world.allocs["b_rev"].id), metadata=md
    )

    # Read everything back in its final state (amount paid, allocated amounts, deleted_at).
    for name, invoice_msg in world.invoices.items():
        world.invoices[name] = await invoices.GetInvoice(
            ipb.GetInvoiceRequest(id=invoice_msg.id), metadata=md
        )
    for name, txn_msg in txns.items():
        txns[name] = await allocations.GetTransaction(
            apb.GetTransactionRequest(id=txn_msg.id), metadata=md
        )
    for name, alloc in world.allocs.items():
        world.allocs[name] = await allocations.GetAllocation(
            apb.GetAllocationRequest(id=alloc.id), metadata=md
        )
    return world


@pytest.fixture(scope="module")
async def world(invoices: InvoiceStub, allocations: AllocStub, tokens: Tokens) -> World:
    return await build_world(invoices, allocations, tokens)


# ---- helpers ----------------------------------------------------------------------------


async def list_allocations(
    allocations: AllocStub, md: Metadata, **kwargs: Any
) -> apb.ListAllocationsResponse:
    result: apb.ListAllocationsResponse = await allocations.ListAllocations(
        apb.ListAllocationsRequest(**kwargs), metadata=md
    )
    return result


async def list_transactions(
    allocations: AllocStub, md: Metadata, **kwargs: Any
) -> apb.ListTransactionsResponse:
    result: apb.ListTransactionsResponse = await allocations.ListTransactions(
        apb.ListTransactionsRequest(**kwargs), metadata=md
    )
    return result


async def list_rates(
    allocations: AllocStub, md: Metadata, **kwargs: Any
) -> apb.ListExchangeRatesResponse:
    result: apb.ListExchangeRatesResponse = await allocations.ListExchangeRates(
        apb.ListExchangeRatesRequest(**kwargs), metadata=md
    )
    return result


Lister = Callable[..., Awaitable[Any]]


async def walk(lister: Lister, allocations: AllocStub, md: Metadata, **kwargs: Any) -> list[str]:
    """Every page of a list, following next_cursor; the ids in order."""
    limit = kwargs.get("limit", 0)
    found: list[str] = []
    cursor = ""
    for _ in range(100):
        page = await lister(allocations, md, cursor=cursor, **kwargs)
        assert not limit or len(page.data) <= limit
        found += [item.id for item in page.data]
        if not page.next_cursor:
            return found
        assert page.data, "a page with a next cursor must not be empty"
        cursor = page.next_cursor
    raise AssertionError(f"no end after 100 pages: {found}")


def expected_order(
    names: Sequence[str], key: Callable[[str], Any], ident: Callable[[str], str], desc: bool
) -> list[str]:
    """ORDER BY key (NULLS LAST either way), id: both in the same direction."""
    valued = [n for n in names if key(n) is not None]
    nulls = [n for n in names if key(n) is None]
    valued.sort(key=lambda n: (key(n), ident(n)), reverse=desc)
    nulls.sort(key=ident, reverse=desc)
    return valued + nulls


async def alloc_names(
    allocations: AllocStub, world: World, filter_text: str, show_deleted: bool = False
) -> set[str]:
    page = await list_allocations(
        allocations,
        world.md,
        filter=filter_text,
        show_deleted=show_deleted,
        limit=200,
        include_total=True,
    )
    names = [world.alloc_name(a.id) for a in page.data]
    assert len(names) == len(set(names)), f"duplicates: {names}"
    assert page.HasField("total") and page.total == len(names), (page.total, names)
    return set(names)


# ---- dataset sanity ---------------------------------------------------------------------


async def test_dataset_is_as_described(world: World) -> None:
    """The filters below compute their expectations from this; check it first."""
    allocs, inv = world.allocs, world.invoices
    assert [inv[n].number for n in ("a", "b", "c", "d", "sup")] == [
        "INV-2026-0001",
        "INV-2026-0002",
        "INV-2026-0003",
        "INV-2026-0004",
        "SUP-7",
    ]
    assert {n: inv[n].total for n in inv} == {
        "a": "500.00",
        "b": "1200.00",
        "c": "2500.00",
        "d": "3000.00",
        "sup": "800.00",
    }
    assert {n: (a.amount, a.currency, a.invoice_amount) for n, a in allocs.items()} == {
        "a_full": ("500.00", "EUR", "500.00"),
        "b_usd": ("500.00", "USD", "460.00"),
        "c_jpy": ("160000", "JPY", "1000.00"),
        "b_rev": ("200.00", "EUR", "200.00"),
        "c_eur": ("1500.00", "EUR", "1500.00"),
        "sup": ("800.00", "EUR", "800.00"),
        "d_usd": ("400.00", "USD", "380.00"),
    }
    for name, alloc in allocs.items():
        assert alloc.invoice_currency == alloc.accounting_currency == "EUR", name
        assert alloc.accounting_amount == alloc.invoice_amount, name
        assert alloc.allocation_type == (FULL if name in FULLS else PARTIAL), name
        assert alloc.is_partial == (name not in FULLS), name
        assert alloc.invoice_transaction_id == alloc.id, name
        assert alloc.workspace_id == str(world.tenant), name
        assert bool(alloc.composite_fx_rate) == (name in CONVERTED), name
        rate = world.rate_of[name]
        assert alloc.exchange_rate_id == (world.rates[rate].id if rate else ""), name
        assert alloc.HasField("deleted_at") == (name == "b_rev"), name
    assert allocs["b_usd"].composite_fx_rate == "1 USD = 0.92 EUR (ecb, 2026-04-28)"
    assert allocs["c_eur"].subscription_id == SUBSCRIPTION
    assert {n: t.unallocated_amount for n, t in world.txns.items()} == {
        "eur1": "500.00",
        "eur2": "1000.00",
        "usd": "100.00",
        "jpy": "0",
        "pay": "0.00",
        "spare": "50.00",
        "gone": "10.00",
    }
    assert world.txns["gone"].HasField("deleted_at")
    created = [as_time(allocs[n].created_at) for n in CREATION_ORDER]
    assert created == sorted(created) and len(set(created)) == len(created)


# ---- ListAllocations: own fields ------------------------------------------------------

# (filter template, expected allocation names); templates use World.vars() placeholders.
OWN_FIELD_CASES: list[tuple[str, set[str]]] = [
    # text: = != : (contains, case-insensitive) wildcards IN IS [NOT] NULL
    ('composite_fx_rate = "{fx_b_usd}"', {"b_usd"}),
    ('composite_invoice_transaction_summary = "{summary_a_full}"', {"a_full"}),
    ('composite_invoice_transaction_summary != "{summary_a_full}"', set(LIVE) - {"a_full"}),
    ('composite_fx_rate : "usd"', {"b_usd", "d_usd"}),
    ('composite_fx_rate : "JPY"', {"c_jpy"}),
    ("composite_fx_rate : manual", {"d_usd"}),
    ('composite_fx_rate = "1 USD*"', {"b_usd", "d_usd"}),
    ('composite_fx_rate = "*2026-04-28)"', {"b_usd"}),
    ('composite_invoice_transaction_summary = "INV-*"', set(LIVE) - {"sup"}),
    ('composite_invoice_transaction_summary = "SUP-7 <- *"', {"sup"}),
    ('composite_invoice_transaction_summary = "*(full)"', FULLS),
    ('composite_invoice_transaction_summary = "*(partial)"', PARTIALS),
    ('composite_invoice_transaction_summary : "usd"', {"b_usd", "d_usd"}),
    ('composite_fx_rate IN ("{fx_b_usd}", "{fx_d_usd}")', {"b_usd", "d_usd"}),
    ("composite_fx_rate IS NULL", SAME_CURRENCY),
    ("composite_fx_rate IS NOT NULL", CONVERTED),
    ("composite_invoice_transaction_summary IS NULL", set()),
    # number: = != < <= > >= IN IS [NOT] NULL
    ("amount = 500", {"a_full", "b_usd"}),
    ('amount = "500.00"', {"a_full", "b_usd"}),
    ("amount != 500", {"c_jpy", "c_eur", "sup", "d_usd"}),
    ("amount < 500", {"d_usd"}),
    ("amount <= 500", {"a_full", "b_usd", "d_usd"}),
    ("amount > 1500", {"c_jpy"}),
    ("amount >= 1500", {"c_jpy", "c_eur"}),
    ("amount IN (800, 400.00)", {"sup", "d_usd"}),
    ("amount IS NULL", set()),
    ("amount IS NOT NULL", set(LIVE)),
    ("invoice_amount > 900", {"c_jpy", "c_eur"}),
    ("invoice_amount = 460", {"b_usd"}),
    ("accounting_amount <= 460", {"b_usd", "d_usd"}),
    ("accounting_amount IN (380, 1000)", {"d_usd", "c_jpy"}),
    # enum (ISO codes, allocation type): = != IN IS [NOT] NULL
    ("currency = USD", {"b_usd", "d_usd"}),
    ('currency = "JPY"', {"c_jpy"}),
    ("currency != EUR", {"b_usd", "c_jpy", "d_usd"}),
    ("currency IN (EUR, JPY)", {"a_full", "c_jpy", "c_eur", "sup"}),
    ("invoice_currency = EUR", set(LIVE)),
    ("accounting_currency = EUR", set(LIVE)),
    ("accounting_currency != EUR", set()),
    ("currency IS NULL", set()),
    ("allocation_type = FULL", FULLS),
    ("allocation_type = PARTIAL", PARTIALS),
    ("allocation_type = ALLOCATION_TYPE_PARTIAL", PARTIALS),
    ("allocation_type != FULL", PARTIALS),
    ("allocation_type IN (FULL, PARTIAL)", set(LIVE)),
    ("allocation_type IS NOT NULL", set(LIVE)),
    # bool: =
    ("is_partial = true", PARTIALS),
    ("is_partial = false", FULLS),
    # ids: = != IN IS [NOT] NULL
    ("id = {alc_c_jpy}", {"c_jpy"}),
    ('invoice_transaction_id = "{alc_sup}"', {"sup"}),
    ("invoice_transaction_id IN ({alc_sup}, {alc_a_full})", {"sup", "a_full"}),
    ('invoice_id = "{inv_b}"', {"b_usd"}),
    ("invoice_id IN ({inv_a}, {inv_c})", {"a_full", "c_jpy", "c_eur"}),
    ("invoice_id != {inv_c}", {"a_full", "b_usd", "sup", "d_usd"}),
    ("transaction_id = {txn_usd}", {"b_usd", "d_usd"}),
    ("transaction_id IN ({txn_jpy}, {txn_pay})", {"c_jpy", "sup"}),
    ("exchange_rate_id = {fxr_usd}", {"b_usd"}),
    ("exchange_rate_id IS NULL", SAME_CURRENCY),
    ("exchange_rate_id IS NOT NULL", CONVERTED),
    ("subscription_id = {subscription}", {"c_eur"}),
    ("subscription_id IS NULL", set(LIVE) - {"c_eur"}),
    # timestamps: < <= > >= = != IS [NOT] NULL (RFC 3339 or a date)
    ('created_at < "{at_c_jpy}"', {"a_full", "b_usd"}),
    ('created_at <= "{at_c_jpy}"', {"a_full", "b_usd", "c_jpy"}),
    ('created_at > "{at_c_eur}"', {"sup", "d_usd"}),
    ('created_at >= "{at_c_eur}"', {"c_eur", "sup", "d_usd"}),
    ('created_at = "{at_sup}"', {"sup"}),
    ('created_at != "{at_sup}"', set(LIVE) - {"sup"}),
    ("created_at > 2020-01-01", set(LIVE)),
    ("created_at < 2020-01-01T00:00:00Z", set()),
    ("updated_at IS NOT NULL", set(LIVE)),
    ("deleted_at IS NULL", set(LIVE)),
    # combinations
    ("allocation_type = FULL AND amount > 500", {"c_eur", "sup"}),
    ("currency = JPY OR is_partial = false", {"c_jpy", *FULLS}),
    ("NOT currency = EUR", CONVERTED),
]


@pytest.mark.parametrize(
    ("template", "expected"), OWN_FIELD_CASES, ids=[c[0] for c in OWN_FIELD_CASES]
)
async def test_list_allocations_filter_on_own_fields(
    allocations: AllocStub, world: World, template: str, expected: set[str]
) -> None:
    got = await alloc_names(allocations, world, template.format(**world.vars()))
    assert got == expected


# (filter template, expected names) with show_deleted: the reversed allocation is included.
DELETED_CASES: list[tuple[str, set[str]]] = [
    ("deleted_at IS NOT NULL", {"b_rev"}),
    ("deleted_at IS NULL", set(LIVE)),
    ("deleted_at > 2020-01-01", {"b_rev"}),
    ('deleted_at >= "{at_b_rev}"', {"b_rev"}),
    ("invoice_id = {inv_b}", {"b_usd", "b_rev"}),
    ("amount = 200", {"b_rev"}),
    ("allocation_type = PARTIAL", {*PARTIALS, "b_rev"}),
]


@pytest.mark.parametrize(("template", "expected"), DELETED_CASES, ids=[c[0] for c in DELETED_CASES])
async def test_list_allocations_filter_with_show_deleted(
    allocations: AllocStub, world: World, template: str, expected: set[str]
) -> None:
    text = template.format(**world.vars())
    assert await alloc_names(allocations, world, text, show_deleted=True) == expected
    assert await alloc_names(allocations, world, text) == expected - {"b_rev"}


async def test_list_allocations_deleted_at_is_set_on_the_reversed_one_only(
    allocations: AllocStub, world: World
) -> None:
    page = await list_allocations(
        allocations, world.md, filter="deleted_at IS NOT NULL", show_deleted=True
    )
    assert [a.id for a in page.data] == [world.allocs["b_rev"].id]
    assert page.data[0].HasField("deleted_at")
    assert as_time(page.data[0].deleted_at) >= as_time(world.allocs["b_rev"].created_at)


# ---- ListAllocations: related objects -------------------------------------------------

RELATED_CASES: list[tuple[str, set[str]]] = [
    # invoice.
    ("invoice.total > 1000", {"b_usd", "c_jpy", "c_eur", "d_usd"}),
    ("invoice.grand_total > 1000", {"b_usd", "c_jpy", "c_eur", "d_usd"}),
    ('invoice.total = "500.00"', {"a_full"}),
    ("invoice.total <= 800", {"a_full", "sup"}),
    ("invoice.grand_total IN (800, 3000)", {"sup", "d_usd"}),
    ('invoice.number = "INV-*"', set(LIVE) - {"sup"}),
    ('invoice.number = "*-0003"', {"c_jpy", "c_eur"}),
    ('invoice.number = "INV-2026-0002"', {"b_usd"}),
    ("invoice.number : sup", {"sup"}),
    ("invoice.number IN (INV-2026-0001, SUP-7)", {"a_full", "sup"}),
    ("invoice.id = {inv_c}", {"c_jpy", "c_eur"}),
    ("invoice.type = SUPPLIER", {"sup"}),
    ("invoice.direction = PAYABLE", {"sup"}),
    ("invoice.direction = RECEIVABLE", set(LIVE) - {"sup"}),
    ("invoice.status = ISSUED", set(LIVE)),
    ("invoice.payment_status = PAID", {"a_full", "c_jpy", "c_eur", "sup"}),
    ("invoice.payment_status = PARTIALLY_PAID", {"b_usd", "d_usd"}),
    ("invoice.currency = EUR", set(LIVE)),
    ("invoice.amount_paid = 460", {"b_usd"}),
    ("invoice.amount_due > 0", {"b_usd", "d_usd"}),
    ("invoice.amount_due = 2620", {"d_usd"}),
    ("invoice.issue_date >= 2026-04-03", {"c_jpy", "c_eur", "d_usd", "sup"}),
    ("invoice.due_date < 2026-06-01", {"a_full"}),
    ("invoice.due_date IS NULL", {"d_usd"}),
    (f"invoice.counterparty_id = {PARTY_A}", set(LIVE)),
    # transaction.
    ("transaction.amount > 1000", {"c_jpy", "c_eur"}),
    ("transaction.amount >= 1000", set(LIVE) - {"sup"}),
    ("transaction.instructed_amount >= 1000", set(LIVE) - {"sup"}),
    ("transaction.instructed_amount = 800", {"sup"}),
    ("transaction.amount < 1000", {"sup"}),
    ("transaction.currency = JPY", {"c_jpy"}),
    ("transaction.direction = PAYABLE", {"sup"}),
    ("transaction.direction = TRANSACTION_DIRECTION_RECEIVABLE", set(LIVE) - {"sup"}),
    ("transaction.value_date >= 2026-05-01", {"c_eur", "sup"}),
    ("transaction.value_date = 2026-04-30", {"b_usd", "d_usd"}),
    ('transaction.reference : "acme"', {"a_full", "c_eur"}),
    ('transaction.reference = "WIRE*"', {"b_usd", "d_usd"}),
    ("transaction.id = {txn_eur2}", {"c_eur"}),
    (f"transaction.counterparty_id = {PARTY_B}", {"b_usd", "d_usd"}),
    ("transaction.counterparty_id IS NULL", {"c_jpy", "c_eur", "sup"}),
    # exchange_rate.
    ("exchange_rate.rate_date = 2026-04-28", {"b_usd"}),
    ('exchange_rate.rate_date < "2026-04-25"', {"c_jpy", "d_usd"}),
    ("exchange_rate.rate_date IS NULL", SAME_CURRENCY),
    ("exchange_rate.rate_date IS NOT NULL", CONVERTED),
    ('exchange_rate.source = "manual"', {"d_usd"}),
    ("exchange_rate.source IN (ecb)", {"b_usd", "c_jpy"}),
    ("exchange_rate.base_currency = EUR", {"c_jpy"}),
    ("exchange_rate.quote_currency = EUR", {"b_usd", "d_usd"}),
    ("exchange_rate.rate > 1", {"c_jpy"}),
    ("exchange_rate.rate = 0.92", {"b_usd"}),
    ("exchange_rate.id = {fxr_usd_old}", {"d_usd"}),
    ("exchange_rate.id IS NULL", SAME_CURRENCY),
    # workspace. and subscription.
    ('workspace.name : "acme"', set(LIVE)),
    ('workspace.name : "ACME holdings"', set(LIVE)),
    ('workspace.name : "globex"', set()),
    ('workspace.name = "Acme*"', set(LIVE)),
    (f'workspace.name = "{WORKSPACE_NAME}"', set(LIVE)),
    ("workspace.name IS NULL", set()),
    ('workspace.id = "{tenant}"', set(LIVE)),
    ("workspace.accounting_currency = EUR", set(LIVE)),
    ("subscription.id = {subscription}", {"c_eur"}),
    # mixed
    ("allocation_type = FULL AND invoice.total > 100", FULLS),
    ("is_partial = true AND invoice.total > 1000", {"b_usd", "c_jpy", "d_usd"}),
    (
        'exchange_rate.rate_date IS NULL AND workspace.name : "acme" AND invoice.number = "INV-*"',
        {"a_full", "c_eur"},
    ),
    ("transaction.currency = USD OR invoice.due_date IS NULL", {"b_usd", "d_usd"}),
]


@pytest.mark.parametrize(("template", "expected"), RELATED_CASES, ids=[c[0] for c in RELATED_CASES])
async def test_list_allocations_filter_on_related_objects(
    allocations: AllocStub, world: World, template: str, expected: set[str]
) -> None:
    got = await alloc_names(allocations, world, template.format(**world.vars()))
    assert got == expected


# ---- filter errors ----------------------------------------------------------------------

# (filter template, field the error names, operator): one or more per field type.
BAD_OPERATOR_CASES: list[tuple[str, str, str]] = [
    # bool: only =
    ("is_partial > true", "is_partial", ">"),
    ("is_partial != true", "is_partial", "!="),
    ("is_partial : true", "is_partial", ":"),
    ("is_partial IN (true)", "is_partial", "IN"),
    ("is_partial IS NULL", "is_partial", "IS NULL"),
    # number: no `:`
    ("amount : 5", "amount", ":"),
    ("accounting_amount : 5", "accounting_amount", ":"),
    ("invoice.total : 5", "invoice.total", ":"),
    ("transaction.amount : 5", "transaction.amount", ":"),
    # timestamp / date: no IN, no `:`
    ('created_at IN ("2026-01-01T00:00:00Z")', "created_at", "IN"),
    ("created_at : 2026", "created_at", ":"),
    ("deleted_at IN (2026-01-01)", "deleted_at", "IN"),
    ("exchange_rate.rate_date IN (2026-04-28)", "exchange_rate.rate_date", "IN"),
    ("transaction.value_date : 2026", "transaction.value_date", ":"),
    # enum: no ordering, no `:`
    ("allocation_type < FULL", "allocation_type", "<"),
    ("allocation_type : FULL", "allocation_type", ":"),
    ("currency > EUR", "currency", ">"),
    ("accounting_currency >= EUR", "accounting_currency", ">="),
    ("invoice.status < ISSUED", "invoice.status", "<"),
    # text: no ordering
    ('composite_fx_rate > "a"', "composite_fx_rate", ">"),
    ('composite_invoice_transaction_summary <= "x"', "composite_invoice_transaction_summary", "<="),
    ('workspace.name > "a"', "workspace.name", ">"),
    ('invoice.number < "INV"', "invoice.number", "<"),
    # ids: no ordering, no `:`
    ("invoice_id > {inv_a}", "invoice_id", ">"),
    ("transaction_id : txn", "transaction_id", ":"),
    ("id <= {alc_a_full}", "id", "<="),
    (f"subscription_id > {SUBSCRIPTION}", "subscription_id", ">"),
]


@pytest.mark.parametrize(
    ("template", "filter_field", "operator"),
    BAD_OPERATOR_CASES,
    ids=[c[0] for c in BAD_OPERATOR_CASES],
)
async def test_list_allocations_operator_not_allowed_for_the_type(
    allocations: AllocStub, world: World, template: str, filter_field: str, operator: str
) -> None:
    text = template.format(**world.vars())
    err = await invalid(
        list_allocations(allocations, world.md, filter=text),
        "filter",
        "UNSUPPORTED_FILTER_OPERATOR",
    )
    info = error_info(err)
    assert (info.metadata["filterField"], info.metadata["operator"]) == (filter_field, operator)


@pytest.mark.parametrize(
    ("text", "filter_field"),
    [
        ("colour = red", "colour"),
        ("invoice.colour = red", "invoice.colour"),
        ("customer.name = acme", "customer.name"),
        ("transaction.allocated_amount > 0", "transaction.allocated_amount"),
        ("workspace.secret = x", "workspace.secret"),
        ("amount > 0 AND nope IS NULL", "nope"),
    ],
)
async def test_list_allocations_unknown_filter_field(
    allocations: AllocStub, world: World, text: str, filter_field: str
) -> None:
    err = await invalid(
        list_allocations(allocations, world.md, filter=text), "filter", "UNKNOWN_FILTER_FIELD"
    )
    assert error_info(err).metadata["filterField"] == filter_field


@pytest.mark.parametrize(
    ("text", "filter_field"),
    [
        ("amount = abc", "amount"),
        ("accounting_amount > 1e3", "accounting_amount"),
        ('created_at > "yesterday"', "created_at"),
        ("created_at < 2026-13-01", "created_at"),
        ("is_partial = yes", "is_partial"),
        ("allocation_type = HALF", "allocation_type"),
        ("currency = EURO", "currency"),
        (f"invoice_id = txn_{VALID_BODY}", "invoice_id"),
        ("transaction_id = nope", "transaction_id"),
        ("subscription_id = not-a-uuid", "subscription_id"),
        ("invoice.total > lots", "invoice.total"),
        ("exchange_rate.rate_date = 2026-04-31", "exchange_rate.rate_date"),
        ("transaction.direction = SIDEWAYS", "transaction.direction"),
    ],
)
async def test_list_allocations_ill_typed_filter_value(
    allocations: AllocStub, world: World, text: str, filter_field: str
) -> None:
    err = await invalid(
        list_allocations(allocations, world.md, filter=text), "filter", "INVALID_FILTER_VALUE"
    )
    assert error_info(err).metadata["filterField"] == filter_field


async def test_list_allocations_unknown_order_by_field(
    allocations: AllocStub, world: World
) -> None:
    for order_by in ("colour", "invoice.colour", "is_partial", "transaction.reference"):
        await invalid(
            list_allocations(allocations, world.md, order_by=order_by),
            "order_by",
            "UNKNOWN_ORDER_FIELD",
        )


# ---- ListAllocations: ordering and cursors --------------------------------------------

ALLOCATION_SORTS: list[tuple[str, str, bool]] = [
    # (order_by, direction, descending)
    ("invoice.total asc", "", False),
    ("invoice.total", "desc", True),
    ("transaction.amount desc", "", True),
    ("transaction.amount", "asc", False),
    ("exchange_rate.rate_date", "", True),
    ("exchange_rate.rate_date asc", "", False),
    ("workspace.name", "asc", False),
    ("workspace.name desc", "", True),
    ("invoice.number", "asc", False),
    ("invoice.due_date asc", "", False),
    ("invoice.due_date", "desc", True),
    ("transaction.value_date", "asc", False),
    ("", "", True),
    ("created_at", "asc", False),
    ("updated_at", "desc", True),
    ("amount", "asc", False),
    ("amount desc", "", True),
    ("currency", "asc", False),
    ("accounting_amount", "desc", True),
    ("accounting_currency", "asc", False),
    ("allocation_type", "asc", False),
    ("composite_fx_rate", "asc", False),
    ("composite_fx_rate desc", "", True),
    ("composite_invoice_transaction_summary", "asc", False),
    ("invoice_transaction_id", "desc", True),
]


def _sort_id(case: tuple[str, str, bool]) -> str:
    return f"{case[0] or 'default'}{' ' + case[1] if case[1] else ''}"


@pytest.mark.parametrize(
    ("order_by", "direction", "descending"),
    ALLOCATION_SORTS,
    ids=[_sort_id(c) for c in ALLOCATION_SORTS],
)
async def test_list_allocations_order_by_with_cursor_pages(
    allocations: AllocStub, world: World, order_by: str, direction: str, descending: bool
) -> None:
    field_name = order_by.split()[0] if order_by else "created_at"
    expected = [
        world.allocs[n].id
        for n in expected_order(
            LIVE,
            lambda n: world.alloc_key(n, field_name),
            lambda n: world.allocs[n].id,
            descending,
        )
    ]
    full = await list_allocations(
        allocations, world.md, order_by=order_by, direction=direction, limit=50
    )
    whole = [a.id for a in full.data]
    paged = await walk(
        list_allocations, allocations, world.md, order_by=order_by, direction=direction, limit=2
    )
    names = [world.alloc_name(i) for i in paged]
    assert [world.alloc_name(i) for i in whole] == [world.alloc_name(i) for i in expected]
    assert names == [world.alloc_name(i) for i in expected], "pages differ from the full list"
    assert len(set(paged)) == len(paged)


async def test_list_allocations_cursor_pages_with_filter_and_show_deleted(
    allocations: AllocStub, world: World
) -> None:
    """Related sort, related filter and deleted rows together, one row per page."""
    kwargs: dict[str, Any] = {
        "order_by": "invoice.total desc",
        "filter": 'invoice.number = "INV-*"',
        "show_deleted": True,
    }
    names = [n for n in ALL if n != "sup"]
    expected = expected_order(
        names,
        lambda n: world.alloc_key(n, "invoice.total"),
        lambda n: world.allocs[n].id,
        True,
    )
    paged = await walk(list_allocations, allocations, world.md, limit=1, **kwargs)
    assert [world.alloc_name(i) for i in paged] == expected


async def test_list_allocations_nulls_last_in_both_directions(
    allocations: AllocStub, world: World
) -> None:
    for direction in ("asc", "desc"):
        ids = await walk(
            list_allocations,
            allocations,
            world.md,
            order_by="exchange_rate.rate_date",
            direction=direction,
            limit=2,
        )
        names = [world.alloc_name(i) for i in ids]
        assert set(names[:3]) == CONVERTED and set(names[3:]) == SAME_CURRENCY, names


# ---- ListTransactions -------------------------------------------------------------------

LIVE_TXNS = ("eur1", "eur2", "usd", "jpy", "pay", "spare")

TRANSACTION_CASES: list[tuple[str, set[str]]] = [
    ("direction = PAYABLE", {"pay"}),
    ("direction = TRANSACTION_DIRECTION_RECEIVABLE", set(LIVE_TXNS) - {"pay"}),
    ("direction != RECEIVABLE", {"pay"}),
    ("currency = USD", {"usd", "spare"}),
    ("currency IN (JPY, EUR)", {"eur1", "eur2", "jpy", "pay"}),
    ("amount > 1000", {"eur2", "jpy"}),
    ("amount <= 800", {"pay", "spare"}),
    ("amount IN (1000, 50)", {"eur1", "usd", "spare"}),
    ("allocated_amount = 0", {"spare"}),
    ("unallocated_amount > 0", {"eur1", "eur2", "usd", "spare"}),
    ("unallocated_amount = 0", {"jpy", "pay"}),
    ("unallocated_amount >= 500", {"eur1", "eur2"}),
    ("value_date < 2026-04-30", {"eur1", "jpy"}),
    ('value_date >= "2026-05-02"', {"eur2", "pay", "spare"}),
    ("value_date = 2026-04-30", {"usd"}),
    ('reference : "acme"', {"eur1", "eur2"}),
    ('reference = "WIRE*"', {"usd"}),
    ('reference = "*-9"', {"jpy"}),
    ('reference = ""', {"spare"}),
    ('reference != "OUT-SUP-7"', set(LIVE_TXNS) - {"pay"}),
    ("reference IN (OUT-SUP-7, WIRE-US-77)", {"pay", "usd"}),
    (f"counterparty_id = {PARTY_A}", {"eur1"}),
    ("counterparty_id IS NULL", {"eur2", "jpy", "pay", "spare"}),
    ("subscription_id = {subscription}", {"eur2"}),
    ("subscription_id IS NOT NULL", {"eur2"}),
    ("id = {txn_jpy}", {"jpy"}),
    ("id IN ({txn_jpy}, {txn_spare})", {"jpy", "spare"}),
    ("created_at > 2020-01-01", set(LIVE_TXNS)),
    ("updated_at IS NOT NULL", set(LIVE_TXNS)),
    ("deleted_at IS NULL", set(LIVE_TXNS)),
    ("direction = RECEIVABLE AND unallocated_amount > 0", {"eur1", "eur2", "usd", "spare"}),
]


@pytest.mark.parametrize(
    ("template", "expected"), TRANSACTION_CASES, ids=[c[0] for c in TRANSACTION_CASES]
)
async def test_list_transactions_filter(
    allocations: AllocStub, world: World, template: str, expected: set[str]
) -> None:
    page = await list_transactions(
        allocations, world.md, filter=template.format(**world.vars()), limit=200, include_total=True
    )
    names = [world.txn_name(t.id) for t in page.data]
    assert set(names) == expected
    assert len(names) == len(expected) and page.total == len(expected)


async def test_list_transactions_show_deleted_and_deleted_at(
    allocations: AllocStub, world: World
) -> None:
    page = await list_transactions(
        allocations, world.md, filter="deleted_at IS NOT NULL", show_deleted=True
    )
    assert [world.txn_name(t.id) for t in page.data] == ["gone"]
    hidden = await list_transactions(allocations, world.md, filter="currency = GBP")
    assert list(hidden.data) == []


@pytest.mark.parametrize(
    ("text", "reason", "filter_field", "operator"),
    [
        ('reference > "a"', "UNSUPPORTED_FILTER_OPERATOR", "reference", ">"),
        ("direction < PAYABLE", "UNSUPPORTED_FILTER_OPERATOR", "direction", "<"),
        ("currency : US", "UNSUPPORTED_FILTER_OPERATOR", "currency", ":"),
        ("amount : 1", "UNSUPPORTED_FILTER_OPERATOR", "amount", ":"),
        ("value_date IN (2026-04-30)", "UNSUPPORTED_FILTER_OPERATOR", "value_date", "IN"),
        ("created_at : 2026", "UNSUPPORTED_FILTER_OPERATOR", "created_at", ":"),
        (f"counterparty_id > {PARTY_A}", "UNSUPPORTED_FILTER_OPERATOR", "counterparty_id", ">"),
        ("invoice.total > 1", "UNKNOWN_FILTER_FIELD", "invoice.total", ""),
        ("allocation_type = FULL", "UNKNOWN_FILTER_FIELD", "allocation_type", ""),
        ("amount = abc", "INVALID_FILTER_VALUE", "amount", ""),
        ("value_date = tomorrow", "INVALID_FILTER_VALUE", "value_date", ""),
        ("direction = SIDEWAYS", "INVALID_FILTER_VALUE", "direction", ""),
        (f"id = alc_{VALID_BODY}", "INVALID_FILTER_VALUE", "id", ""),
    ],
)
async def test_list_transactions_filter_errors(
    allocations: AllocStub, world: World, text: str, reason: str, filter_field: str, operator: str
) -> None:
    err = await invalid(list_transactions(allocations, world.md, filter=text), "filter", reason)
    info = error_info(err)
    assert info.metadata["filterField"] == filter_field
    if operator:
        assert info.metadata["operator"] == operator


def _txn_key(world: World, name: str, sort_field: str) -> Any:
    txn = world.txns[name]
    return {
        "created_at": lambda: as_time(txn.created_at),
        "updated_at": lambda: as_time(txn.updated_at),
        "value_date": lambda: as_date(txn.value_date),
        "amount": lambda: Decimal(txn.amount),
        "currency": lambda: txn.currency,
        "unallocated_amount": lambda: Decimal(txn.unallocated_amount),
    }[sort_field]()


TRANSACTION_SORTS: list[tuple[str, str, bool]] = [
    ("", "", True),
    ("created_at", "asc", False),
    ("updated_at desc", "", True),
    ("value_date", "asc", False),
    ("value_date desc", "", True),
    ("amount", "asc", False),
    ("amount desc", "", True),
    ("currency", "asc", False),
    ("unallocated_amount", "asc", False),
    ("unallocated_amount desc", "", True),
]


@pytest.mark.parametrize(
    ("order_by", "direction", "descending"),
    TRANSACTION_SORTS,
    ids=[_sort_id(c) for c in TRANSACTION_SORTS],
)
async def test_list_transactions_order_by_with_cursor_pages(
    allocations: AllocStub, world: World, order_by: str, direction: str, descending: bool
) -> None:
    field_name = order_by.split()[0] if order_by else "created_at"
    expected = expected_order(
        LIVE_TXNS,
        lambda n: _txn_key(world, n, field_name),
        lambda n: world.txns[n].id,
        descending,
    )
    paged = await walk(
        list_transactions, allocations, world.md, order_by=order_by, direction=direction, limit=2
    )
    assert [world.txn_name(i) for i in paged] == expected


async def test_list_transactions_filtered_pages(allocations: AllocStub, world: World) -> None:
    paged = await walk(
        list_transactions,
        allocations,
        world.md,
        filter="unallocated_amount > 0",
        order_by="unallocated_amount",
        direction="desc",
        limit=1,
    )
    # eur2 1000.00, eur1 500.00, usd 100.00, spare 50.00
    assert [world.txn_name(i) for i in paged] == ["eur2", "eur1", "usd", "spare"]


# ---- ListExchangeRates ------------------------------------------------------------------

RATE_CASES: list[tuple[str, set[str]]] = [
    ("base_currency = USD", {"usd", "usd_old"}),
    ('quote_currency = "EUR"', {"usd", "usd_old", "gbp"}),
    ("base_currency != USD", {"jpy", "gbp"}),
    ("quote_currency IN (JPY)", {"jpy"}),
    ("rate > 1", {"jpy", "gbp"}),
    ("rate = 0.92", {"usd"}),
    ('rate <= "0.9500"', {"usd", "usd_old"}),
    ("rate < 0.95", {"usd"}),
    ("rate IN (160, 1.17)", {"jpy", "gbp"}),
    ("rate_date >= 2026-04-20", {"usd", "jpy"}),
    ("rate_date < 2026-04-15", {"usd_old"}),
    ("rate_date = 2026-04-15", {"gbp"}),
    ('source = "ecb"', {"usd", "jpy"}),
    ("source != ecb", {"usd_old", "gbp"}),
    ('source : "MAN"', {"usd_old"}),
    ('source = "b*"', {"gbp"}),
    ("source IN (boe, manual)", {"gbp", "usd_old"}),
    ("id = {fxr_gbp}", {"gbp"}),
    ("id IN ({fxr_gbp}, {fxr_jpy})", {"gbp", "jpy"}),
    ("created_at > 2020-01-01", {"usd", "usd_old", "jpy", "gbp"}),
    (
        'base_currency = "USD" AND quote_currency = "EUR" AND rate_date <= "2026-04-28"',
        {"usd", "usd_old"},
    ),
]


@pytest.mark.parametrize(("template", "expected"), RATE_CASES, ids=[c[0] for c in RATE_CASES])
async def test_list_exchange_rates_filter(
    allocations: AllocStub, world: World, template: str, expected: set[str]
) -> None:
    page = await list_rates(
        allocations, world.md, filter=template.format(**world.vars()), limit=200, include_total=True
    )
    names = [world.rate_name(r.id) for r in page.data]
    assert set(names) == expected
    assert len(names) == len(expected) and page.total == len(expected)


@pytest.mark.parametrize(
    ("text", "reason", "filter_field"),
    [
        ('source > "a"', "UNSUPPORTED_FILTER_OPERATOR", "source"),
        ("base_currency < USD", "UNSUPPORTED_FILTER_OPERATOR", "base_currency"),
        ("rate : 9", "UNSUPPORTED_FILTER_OPERATOR", "rate"),
        ("rate_date IN (2026-04-28)", "UNSUPPORTED_FILTER_OPERATOR", "rate_date"),
        ("direction = PAYABLE", "UNKNOWN_FILTER_FIELD", "direction"),
        ("rate = high", "INVALID_FILTER_VALUE", "rate"),
        ("rate_date = 2026-02-30", "INVALID_FILTER_VALUE", "rate_date"),
    ],
)
async def test_list_exchange_rates_filter_errors(
    allocations: AllocStub, world: World, text: str, reason: str, filter_field: str
) -> None:
    err = await invalid(list_rates(allocations, world.md, filter=text), "filter", reason)
    assert error_info(err).metadata["filterField"] == filter_field


def _rate_key(world: World, name: str, sort_field: str) -> Any:
    rate = world.rates[name]
    return {
        "created_at": lambda: as_time(rate.created_at),
        "rate_date": lambda: as_date(rate.rate_date),
        "base_currency": lambda: rate.base_currency,
        "quote_currency": lambda: rate.quote_currency,
        "source": lambda: rate.source,
    }[sort_field]()


RATE_SORTS: list[tuple[str, str, bool]] = [
    ("", "", True),
    ("created_at", "asc", False),
    ("rate_date", "asc", False),
    ("rate_date desc", "", True),
    ("base_currency", "asc", False),
    ("quote_currency desc", "", True),
    ("source", "asc", False),
]


@pytest.mark.parametrize(
    ("order_by", "direction", "descending"), RATE_SORTS, ids=[_sort_id(c) for c in RATE_SORTS]
)
async def test_list_exchange_rates_order_by_with_cursor_pages(
    allocations: AllocStub, world: World, order_by: str, direction: str, descending: bool
) -> None:
    field_name = order_by.split()[0] if order_by else "created_at"
    expected = expected_order(
        list(world.rates),
        lambda n: _rate_key(world, n, field_name),
        lambda n: world.rates[n].id,
        descending,
    )
    paged = await walk(
        list_rates, allocations, world.md, order_by=order_by, direction=direction, limit=1
    )
    assert [world.rate_name(i) for i in paged] == expected


async def test_list_exchange_rates_unknown_order_by(allocations: AllocStub, world: World) -> None:
    await invalid(
        list_rates(allocations, world.md, order_by="rate"), "order_by", "UNKNOWN_ORDER_FIELD"
    )


# ---- cursors bound to their query -------------------------------------------------------

CURSOR_LISTS: Mapping[str, tuple[Lister, dict[str, Any], dict[str, Any]]] = {
    # list: (lister, first query, a different query)
    "allocations filter": (
        list_allocations,
        {"filter": "invoice.total > 100"},
        {"filter": "invoice.total > 1000"},
    ),
    "allocations order": (
        list_allocations,
        {"order_by": "invoice.total asc"},
        {"order_by": "transaction.amount asc"},
    ),
    "allocations show_deleted": (
        list_allocations,
        {"filter": "amount > 0"},
        {"filter": "amount > 0", "show_deleted": True},
    ),
    "transactions filter": (
        list_transactions,
        {"filter": "amount > 0"},
        {"filter": "currency = EUR"},
    ),
    "transactions order": (list_transactions, {"order_by": "amount"}, {"order_by": "value_date"}),
    "exchange rates filter": (list_rates, {"filter": "rate > 0"}, {"filter": "source = ecb"}),
    "exchange rates direction": (
        list_rates,
        {"order_by": "rate_date", "direction": "asc"},
        {"order_by": "rate_date", "direction": "desc"},
    ),
}


@pytest.mark.parametrize("case", list(CURSOR_LISTS))
async def test_cursor_from_one_query_is_refused_by_another(
    allocations: AllocStub, world: World, case: str
) -> None:
    lister, first, other = CURSOR_LISTS[case]
    page = await lister(allocations, world.md, limit=1, **first)
    assert page.next_cursor
    # The cursor still works for its own query ...
    await lister(allocations, world.md, limit=1, cursor=page.next_cursor, **first)
    # ... and nowhere else.
    err = await fails(
        lister(allocations, world.md, limit=1, cursor=page.next_cursor, **other),
        Code.INVALID_ARGUMENT,
    )
    assert "cursor" in violations(err)


async def test_cursor_of_one_list_is_refused_by_another_list(
    allocations: AllocStub, world: World
) -> None:
    page = await list_transactions(allocations, world.md, limit=1)
    err = await fails(
        list_allocations(allocations, world.md, limit=1, cursor=page.next_cursor),
        Code.INVALID_ARGUMENT,
    )
    assert "cursor" in violations(err)


async def test_tampered_cursor_is_invalid(allocations: AllocStub, world: World) -> None:
    page = await list_allocations(allocations, world.md, limit=1)
    tampered = page.next_cursor[:-2] + ("AA" if not page.next_cursor.endswith("AA") else "BB")
    err = await fails(
        list_allocations(allocations, world.md, limit=1, cursor=tampered), Code.INVALID_ARGUMENT
    )
    assert "cursor" in violations(err)


async def test_negative_limit_is_invalid(allocations: AllocStub, world: World) -> None:
    await invalid(list_allocations(allocations, world.md, limit=-1), "limit", "INVALID_LIMIT")
