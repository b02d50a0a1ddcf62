"""The REST gateway over the real in-process gateway, the real gRPC server and PostgreSQL.

The gateway is started by the `server` fixture (the test settings have GATEWAY_PORT=0), and
every request here goes over a real TCP connection to it, except where a differently
configured gateway is needed (body limit, CORS, extra bindings): those are built with
`build_app` / `Gateway` and served through `httpx.ASGITransport`, and they still forward over
the real gRPC channel to the real server. Sections:

  helpers · parity (every HTTP rule, REST vs gRPC) · query mapping · bodies · PATCH masks
  · status codes and seed paths · routing errors · headers · escaping · CORS · OpenAPI and docs
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import asyncpg
import grpc
import httpx
import pytest
from google.protobuf import field_mask_pb2, json_format, message_factory
from google.protobuf.message import Message
from google.rpc import error_details_pb2  # noqa: F401  (detail types in the pool)
from invoicing.v1 import allocations_pb2 as apb
from invoicing.v1 import allocations_pb2_grpc, invoices_pb2_grpc
from invoicing.v1 import invoices_pb2 as pb

from service import app, registry
from service.gateway import dialects
from service.gateway.app import Gateway, GatewayConfig
from service.gateway.bindings import Binding, bindings_from_services, generated_services
from service.gateway.dialects import Dialect, jsontext
from service.gateway.dialects.base import SEED_CODES, JsonApi
from service.gateway.server import GatewaySettings, build_app
from service.kit import ids
from tests.conftest import Tokens, count_invoices, error_info, rich_status, sample_invoice

Stub = invoices_pb2_grpc.InvoiceServiceStub
AllocationStub = allocations_pb2_grpc.AllocationServiceStub
Metadata = tuple[tuple[str, str], ...]
Json = dict[str, Any]

BINDINGS = bindings_from_services(generated_services())
INVOICE_SERVICE = "invoicing.v1.InvoiceService"
ALLOCATION_SERVICE = "invoicing.v1.AllocationService"
RECORDS_SERVICE = "invoicing.v1.RecordsService"
CONNECTION_SERVICE = "invoicing.v1.ConnectionService"
PROVENANCE_SERVICE = "invoicing.v1.ProvenanceService"
COUNTERPARTY_SERVICE = "invoicing.v1.CounterpartyService"
SIMPLE_SERVICES = (CONNECTION_SERVICE, PROVENANCE_SERVICE, COUNTERPARTY_SERVICE)
# Served by their own plans below; ConnectionService.PollConnection still answers UNIMPLEMENTED.
SERVED_SERVICES = frozenset({INVOICE_SERVICE, ALLOCATION_SERVICE, RECORDS_SERVICE})
PARTY = "0b9c4a52-8d0e-4a8e-9a51-2f7d4d2c1e11"  # sample_invoice's counterparty
UNKNOWN_ID = "inv_01JD6N8Q6Z7T3M3Y5C4V8R2K1P"  # well formed, never created
PROJECT = "7d1f0e4a-1111-4a8e-9a51-2f7d4d2c1e11"  # aggregation parents need a project
ERROR_KEYS = {"code", "status", "title", "message", "details", "meta"}
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"

# DESIGN.md section 6 (and the usual grpc-gateway choices for the codes it does not list).
HTTP_STATUS = {
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}

# The draft the REST tests create: 10 x 120.00 at 20 % = 1440.00 (sample_invoice in JSON).
INVOICE_JSON: Json = {
    "type": "INVOICE_TYPE_CUSTOMER",
    "currency": "EUR",
    "counterparty_id": PARTY,
    "notes": "first notes",
    "tags": ["gateway"],
    "due_date": {"year": 2030, "month": 1, "day": 31},
    "line_items": [
        {"description": "Consulting", "quantity": "10", "unit_price": "120.00", "tax_rate": "0.20"}
    ],
}


# ---- helpers ----------------------------------------------------------------------


@pytest.fixture
async def http(rest_base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the REST gateway, in-process and standalone (every test runs on both)."""
    async with httpx.AsyncClient(base_url=rest_base_url, timeout=30) as client:
        yield client


@pytest.fixture
def auth(tokens: Tokens, tenant: uuid.UUID) -> dict[str, str]:
    """HTTP headers for the test's tenant with every permission."""
    return {"Authorization": f"Bearer {tokens.token(tenant)}"}


@pytest.fixture
def asgi(server: app.Running) -> Callable[..., httpx.AsyncClient]:
    """A client for a gateway built with other settings, dispatching in process to the
    real server's handlers."""

    def make(settings: GatewaySettings) -> httpx.AsyncClient:
        app_ = build_app(server.dispatcher, registry.services(server.modules), settings)
        transport = httpx.ASGITransport(app=app_)
        return httpx.AsyncClient(transport=transport, base_url="http://gateway.test")

    return make


def assert_error(
    response: httpx.Response, status: int, code: str, dialect: Dialect | None = None
) -> Json:
    """The error body shape of DESIGN section 4 (or, on a JSON:API seed path, the seed's:
    its code, `errors`, `meta.log_id`, the gRPC code in `meta.grpc_code`), never a stack
    trace; returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: Json = response.json()
    if isinstance(dialect, JsonApi):
        assert set(body) == ERROR_KEYS | {"errors"}, body
        assert body["code"] == SEED_CODES[status], body
        assert body["meta"]["grpc_code"] == code, body
        assert body["meta"]["log_id"] == body["meta"]["trace_id"]
        assert body["errors"][0]["status"] == str(status)
    else:
        assert set(body) == ERROR_KEYS, body
        assert body["code"] == code, body
    assert body["status"] == status
    assert body["title"] == HTTPStatus(status).phrase
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["details"], list)
    assert all(isinstance(d, dict) and "@type" in d for d in body["details"])
    assert isinstance(body["meta"], dict) and body["meta"]["trace_id"]
    assert response.headers["x-request-id"] == body["meta"]["trace_id"]
    for leak in ("Traceback", 'File "', "grpc.aio", "AioRpcError", "site-packages"):
        assert leak not in response.text
    return body


def detail(body: Json, type_url: str) -> Json:
    found = [d for d in body["details"] if d["@type"] == type_url]
    assert len(found) == 1, body["details"]
    return found[0]


def violated_fields(body: Json) -> list[str]:
    return [v["field"] for v in detail(body, BAD_REQUEST)["field_violations"]]


async def create(invoices: Stub, md: Metadata, **overrides: Any) -> pb.Invoice:
    request = pb.CreateInvoiceRequest(invoice=sample_invoice(**overrides))
    result: pb.Invoice = await invoices.CreateInvoice(request, metadata=md)
    return result


async def fresh(invoices: Stub, md: Metadata, state: str = "draft") -> str:
    """A new invoice in `state` (draft, deleted, issued): its id."""
    invoice = await create(invoices, md, notes="parity", tags=["gateway"])
    if state == "deleted":
        await invoices.DeleteInvoice(pb.DeleteInvoiceRequest(id=invoice.id), metadata=md)
    elif state == "issued":
        await invoices.IssueInvoice(pb.IssueInvoiceRequest(id=invoice.id), metadata=md)
    return invoice.id


def in_canonical(dialect: Dialect, binding: Binding, request: Message, text: str) -> Json:
    """A dialect's response read back (`read_response`), as canonical JSON."""
    data = json.loads(text, parse_float=Decimal)
    response_cls = message_factory.GetMessageClass(binding.rpc.output_type)
    canonical = dialect.read_response(binding, request, data)
    return as_json(json_format.ParseDict(canonical, response_cls()))


def as_json(message: Message) -> Json:
    """A gRPC message as the gateway renders it (proto names, zero values printed)."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


# ---- parity: every HTTP rule, over REST and over gRPC -------------------------------
#
# A request is written once as the proto3 JSON of the whole gRPC request message. The REST
# request is derived from it by the binding (path variables, then the body, then the query
# string for the rest), the gRPC request is ParseDict of it, sent with a generic
# `channel.unary_unary`. Both must give the same payload, or the same error.

_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)(?:=[^}]*)?\}")
_PREFIX_BY_COLLECTION = {
    "invoices": "inv",
    "invoice-workspace-connectors": "prv",
    "invoice-connections": "con",
}
# Sensible requests for the rpcs of the services that are contract-only for now.
_PENDING_REQUESTS: dict[str, Json] = {
    "CreateInvoiceProvenance": {
        "invoice_provenance": {"invoice_id": UNKNOWN_ID, "connection_id": "con_x"},
    },
    "CreateConnection": {"provider": "yooz", "api_key": "secret-key", "active": True},
    "UpdateConnection": {"active": False, "update_mask": "active"},
}
# Fields that legitimately differ between the two calls when each side writes its own row.
_PER_ROW = frozenset({"id", "created_at", "updated_at", "etag"})
# An allocation's invoice_transaction_id is its id (seed 003), so it differs with it.
_PER_ALLOCATION = _PER_ROW | {"invoice_transaction_id"}

# The rows the allocation plans create (over gRPC, in the test's tenant): a USD payment
# received, allocated to EUR invoices (1440.00 each) at 1 USD = 0.92 EUR.
TRANSACTION_JSON: Json = {
    "direction": "TRANSACTION_DIRECTION_RECEIVABLE",
    "amount": "500.00",
    "currency": "USD",
    "value_date": {"year": 2026, "month": 4, "day": 28},
    "reference": "wire-1",
    "counterparty_id": PARTY,
}
RATE_JSON: Json = {
    "base_currency": "USD",
    "quote_currency": "EUR",
    "rate": "0.92",
    "rate_date": {"year": 2026, "month": 4, "day": 28},
    "source": "ecb",
}
UNKNOWN_TXN = "txn_01JD6N8Q6Z7T3M3Y5C4V8R2K1P"  # well formed, never created

# Bad input for the served rpcs: the whole request message, and the field its BadRequest
# must name. The ids are unknown ones; where the rpc looks its rows up before it checks the
# amount (PayInvoice, CreateAllocation), the plan puts real ones in.
_INVALID_REQUESTS: dict[str, tuple[Json, str]] = {
    "PayInvoice": ({"id": UNKNOWN_ID, "amount": "-1.00"}, "amount"),
    "CreateTransaction": (
        {"transaction": {**TRANSACTION_JSON, "amount": "10.001"}},
        "transaction.amount",
    ),
    "GetTransaction": ({"id": "txn_not-an-id"}, "id"),
    "ListTransactions": ({"filter": "bogus_field = 1", "limit": 5}, "filter"),
    "DeleteTransaction": ({"id": UNKNOWN_ID}, "id"),  # an invoice id: wrong prefix
    "CreateExchangeRate": (
        {"exchange_rate": {**RATE_JSON, "quote_currency": "USD"}},
        "exchange_rate.quote_currency",
    ),
    "GetExchangeRate": ({"id": "fxr_not-an-id"}, "id"),
    "ListExchangeRates": ({"order_by": "bogus_field", "limit": 5}, "order_by"),
    "CreateAllocation": (
        {"allocation": {"invoice_id": UNKNOWN_ID, "transaction_id": UNKNOWN_TXN, "amount": "0"}},
        "allocation.amount",
    ),
    "GetAllocation": ({"id": "alc_not-an-id"}, "id"),
    "ListAllocations": ({"workspace_id": "not-a-uuid", "limit": 5}, "workspace_id"),
    "DeleteAllocation": ({"id": UNKNOWN_TXN}, "id"),  # a transaction id: wrong prefix
    "GetWorkspaceSettings": ({"workspace_id": "not-a-uuid"}, "workspace_id"),
    "UpdateWorkspaceSettings": (
        {"settings": {"accounting_currency": "ZZZ"}, "update_mask": "accountingCurrency"},
        "settings.accounting_currency",
    ),
    "QueryRecords": (
        {"root": "invoice_transactions", "where_clause": {"amount": {"gt": 100}}, "limit": 10},
        "where_clause",
    ),
}


@dataclass
class Plan:
    rest: Json  # the whole request message, as proto3 JSON, for the REST call
    grpc: Json  # the same for the gRPC call (another row when the rpc writes)
    expect: str  # "OK" or the gRPC code name both calls must give
    ignore: frozenset[str] = frozenset()  # top-level response fields that may differ
    authenticated: bool = True
    violated: str = ""  # INVALID_ARGUMENT: a field the BadRequest must name
    shows: Json = field(default_factory=dict)  # top-level values the response must have


def _random_id(binding: Binding) -> str:
    collection = next(
        (seg for seg in binding.template.split("/") if seg in _PREFIX_BY_COLLECTION), "invoices"
    )
    return ids.new_id(_PREFIX_BY_COLLECTION[collection])[1]


def _set(tree: Json, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for name in parents:
        tree = tree.setdefault(name, {})
    tree[last] = value


def _pop(tree: Json, dotted: str) -> Any:
    *parents, last = dotted.split(".")
    for name in parents:
        tree = tree[name]
    return tree.pop(last)


def _pending_request(binding: Binding) -> Json:
    request = copy.deepcopy(_PENDING_REQUESTS.get(binding.rpc.name, {}))
    for field_path in _VARIABLE.findall(binding.template):
        _set(request, field_path, _random_id(binding))
    fields = binding.rpc.input_type.fields_by_name
    if "request_id" in fields:
        request["request_id"] = str(uuid.uuid4())
    if "limit" in fields and binding.rpc.name.startswith("List"):
        request |= {"limit": 5, "order_by": "created_at", "show_deleted": True}
    return request


def _key() -> Json:
    """A fresh idempotency key (each side of a writing rpc gets its own)."""
    return {"request_id": str(uuid.uuid4())}


def _refused_plan(name: str, variant: str, real: Json | None = None) -> Plan:
    """The bad-input case of a served rpc (`real`: the request with real rows' ids), or the
    same request without a token (no rows needed: auth comes first)."""
    request, named = _INVALID_REQUESTS[name]
    if variant == "unauthenticated":
        return Plan(request, copy.deepcopy(request), "UNAUTHENTICATED", authenticated=False)
    request = real or request
    return Plan(request, copy.deepcopy(request), "INVALID_ARGUMENT", violated=named)


async def _invoice_plan(binding: Binding, variant: str, invoices: Stub, md: Metadata) -> Plan:
    name = binding.rpc.name
    if name == "PayInvoice" and variant != "ok":
        invalid = variant == "invalid"
        real = {"id": await fresh(invoices, md, "issued"), "amount": "-1.00"} if invalid else None
        return _refused_plan(name, variant, real)
    if variant != "ok":  # "invalid", and "unauthenticated" (no row needed: auth comes first)
        authenticated = variant != "unauthenticated"
        expect = "UNAUTHENTICATED" if not authenticated else "NOT_FOUND"
        request: Json = {"id": UNKNOWN_ID}
        if name == "CreateInvoice":
            request = {"invoice": {**INVOICE_JSON, "currency": "ZZZ"}}
            expect = expect if not authenticated else "INVALID_ARGUMENT"
        elif name == "ListInvoices":
            request = {"filter": "bogus_field = 1", "limit": 5}
            expect = expect if not authenticated else "INVALID_ARGUMENT"
        elif name == "UpdateInvoice":
            request = {"invoice": {"id": UNKNOWN_ID, "notes": "x"}, "update_mask": "notes"}
        elif name == "AggregateInvoices":
            request = {"child_ids": [UNKNOWN_ID]}
            if variant == "invalid":
                request = {"child_ids": []}
                expect = "INVALID_ARGUMENT"
        elif name in ("ReleaseAggregation", "GetInvoiceDocument") and variant == "invalid":
            request = {"id": "inv_nope"}
            expect = "INVALID_ARGUMENT"
        elif name == "ListInvoiceDeliveries":
            request = {"invoice_id": UNKNOWN_ID}
            if variant == "invalid":
                request = {"invoice_id": "inv_nope"}
                expect = "INVALID_ARGUMENT"
        return Plan(request, copy.deepcopy(request), expect, authenticated=authenticated)

    async def each(state: str, extra: Json) -> tuple[Json, Json]:
        rest_id, grpc_id = await fresh(invoices, md, state), await fresh(invoices, md, state)
        return {"id": rest_id, **extra}, {"id": grpc_id, **extra}

    key = _key
    if name == "CreateInvoice":
        return Plan(
            {"invoice": INVOICE_JSON, **key()}, {"invoice": INVOICE_JSON, **key()}, "OK", _PER_ROW
        )
    if name == "GetInvoice":
        shared = {"id": await fresh(invoices, md)}
        return Plan(shared, dict(shared), "OK")
    if name == "ListInvoiceDeliveries":
        shared = {"invoice_id": await fresh(invoices, md, "issued")}
        return Plan(shared, dict(shared), "OK")
    if name == "GetInvoiceDocument":
        shared = {"id": await fresh(invoices, md)}
        return Plan(shared, dict(shared), "OK")
    if name in ("AggregateInvoices", "ReleaseAggregation"):
        sides = []
        for _ in range(2):
            children = [
                (await create(invoices, md, project_id=PROJECT, notes="parity")).id
                for _ in range(2)
            ]
            sides.append({"child_ids": children})
        if name == "AggregateInvoices":
            ignore = _PER_ROW | {"related"}
            return Plan({**sides[0], **key()}, {**sides[1], **key()}, "OK", ignore)
        parents = [
            await invoices.AggregateInvoices(pb.AggregateInvoicesRequest(**side), metadata=md)
            for side in sides
        ]
        return Plan({"id": parents[0].id}, {"id": parents[1].id}, "OK", frozenset({"children"}))
    if name == "ListInvoices":
        for _ in range(3):
            await fresh(invoices, md)
        await fresh(invoices, md, "deleted")
        query = {
            "limit": 2,
            "order_by": "created_at",
            "direction": "asc",
            "filter": "status = DRAFT AND tags:gateway",
            "show_deleted": True,
            "include_total": True,
        }
        return Plan(query, dict(query), "OK", frozenset({"next_cursor"}))
    if name == "UpdateInvoice":
        rest, grpc_ = await each("draft", {})
        change = {"notes": "patched", "tags": ["a", "b"]}
        return Plan(
            {"invoice": {**rest, **change}, "update_mask": "notes,tags"},
            {"invoice": {**grpc_, **change}, "update_mask": "notes,tags"},
            "OK",
            _PER_ROW,
        )
    if name == "DeleteInvoice":
        rest, grpc_ = await each("draft", {})
        return Plan(rest, grpc_, "OK", _PER_ROW | {"deleted_at"})
    if name == "UndeleteInvoice":
        rest, grpc_ = await each("deleted", {})
        return Plan({**rest, **key()}, {**grpc_, **key()}, "OK", _PER_ROW)
    if name == "IssueInvoice":
        rest, grpc_ = await each("draft", {})
        issued = _PER_ROW | {"number", "issued_at"}
        return Plan({**rest, **key()}, {**grpc_, **key()}, "OK", issued)
    if name == "VoidInvoice":
        rest, grpc_ = await each("issued", {"reason": "duplicate"})
        voided = _PER_ROW | {"number", "issued_at", "voided_at"}
        return Plan({**rest, **key()}, {**grpc_, **key()}, "OK", voided)
    if name == "PayInvoice":
        # No amount: the amount due. Both invoices get fully paid at the same stated time.
        paid_at = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        rest, grpc_ = await each("issued", {"paid_at": paid_at, "reference": "wire-1"})
        paid = {
            "payment_status": "PAYMENT_STATUS_PAID",
            "amount_paid": "1440.00",
            "amount_due": "0.00",
            "paid_at": paid_at,
        }
        issued = _PER_ROW | {"number", "issued_at"}
        return Plan({**rest, **key()}, {**grpc_, **key()}, "OK", issued, shows=paid)
    raise AssertionError(f"no parity plan for {binding.rpc.full_name}: add one")


@dataclass
class Rows:
    """Creates what the allocation plans need, over gRPC, in the test's tenant."""

    invoices: Stub
    allocations: AllocationStub
    md: Metadata

    async def invoice(self) -> str:
        """An issued EUR invoice of 1440.00."""
        return await fresh(self.invoices, self.md, "issued")

    async def transaction(self, **overrides: Any) -> str:
        transaction = json_format.ParseDict({**TRANSACTION_JSON, **overrides}, apb.Transaction())
        request = apb.CreateTransactionRequest(transaction=transaction)
        created = await self.allocations.CreateTransaction(request, metadata=self.md)
        return str(created.id)

    async def rate(self, **overrides: Any) -> str:
        rate = json_format.ParseDict({**RATE_JSON, **overrides}, apb.ExchangeRate())
        request = apb.CreateExchangeRateRequest(exchange_rate=rate)
        created = await self.allocations.CreateExchangeRate(request, metadata=self.md)
        return str(created.id)

    async def allocation(self, allocation: Json) -> str:
        request = apb.CreateAllocationRequest(
            allocation=json_format.ParseDict(allocation, apb.Allocation())
        )
        created = await self.allocations.CreateAllocation(request, metadata=self.md)
        return str(created.id)

    async def allocation_body(self) -> Json:
        """What CreateAllocation takes: 100.00 USD of a new transaction to a new invoice."""
        invoice_id, transaction_id = await self.invoice(), await self.transaction()
        return {
            "invoice_id": invoice_id,
            "transaction_id": transaction_id,
            "exchange_rate_id": await self.rate(),
            "amount": "100.00",
            "currency": "USD",
        }

    async def delete_transaction(self, transaction_id: str) -> None:
        request = apb.DeleteTransactionRequest(id=transaction_id)
        await self.allocations.DeleteTransaction(request, metadata=self.md)

    async def reverse(self, allocation_id: str) -> None:
        request = apb.DeleteAllocationRequest(id=allocation_id)
        await self.allocations.DeleteAllocation(request, metadata=self.md)


async def _allocation_plan(binding: Binding, variant: str, rows: Rows, tenant: uuid.UUID) -> Plan:
    """AllocationService, and RecordsService (whose one root is the allocations)."""
    name = binding.rpc.name
    if name == "CreateAllocation" and variant == "invalid":
        real = {"allocation": {**await rows.allocation_body(), "amount": "0"}}
        return _refused_plan(name, variant, real)
    if variant != "ok":
        return _refused_plan(name, variant)

    if name == "CreateTransaction":
        created = {"unallocated_amount": "500.00", "allocated_amount": "0.00"}
        return Plan(
            {"transaction": TRANSACTION_JSON, **_key()},
            {"transaction": TRANSACTION_JSON, **_key()},
            "OK",
            _PER_ROW,
            shows=created,
        )
    if name == "GetTransaction":
        shared = {"id": await rows.transaction()}
        return Plan(shared, dict(shared), "OK", shows=shared)
    if name == "ListTransactions":
        for amount in ("100.00", "200.00", "300.00"):
            await rows.transaction(amount=amount)
        await rows.transaction(amount="250.00", currency="EUR")
        await rows.delete_transaction(await rows.transaction(amount="400.00"))
        query = {
            "limit": 2,
            "order_by": "amount",
            "direction": "asc",
            "filter": "currency = USD AND amount >= 200",
            "show_deleted": True,
            "include_total": True,
        }
        return Plan(query, dict(query), "OK", frozenset({"next_cursor"}), shows={"total": 3})
    if name == "DeleteTransaction":
        rest, grpc_ = {"id": await rows.transaction()}, {"id": await rows.transaction()}
        return Plan(rest, grpc_, "OK", _PER_ROW | {"deleted_at"})

    if name == "CreateExchangeRate":
        # (base, quote, date, source) is unique: each side states its own source.
        return Plan(
            {"exchange_rate": {**RATE_JSON, "source": "parity-rest"}, **_key()},
            {"exchange_rate": {**RATE_JSON, "source": "parity-grpc"}, **_key()},
            "OK",
            _PER_ROW | {"source"},
            shows={"rate": "0.92", "source": "parity-rest"},
        )
    if name == "GetExchangeRate":
        shared = {"id": await rows.rate()}
        return Plan(shared, dict(shared), "OK", shows=shared)
    if name == "ListExchangeRates":
        for day in (1, 2, 3):
            await rows.rate(rate_date={"year": 2026, "month": 4, "day": day})
        await rows.rate(base_currency="GBP", rate="1.15")
        query = {
            "limit": 2,
            "order_by": "rate_date",
            "direction": "asc",
            "filter": 'base_currency = "USD" AND quote_currency = "EUR"',
            "include_total": True,
        }
        return Plan(query, dict(query), "OK", frozenset({"next_cursor"}), shows={"total": 3})

    if name == "CreateAllocation":
        # Both sides take 100.00 USD of the same payment for the same invoice.
        body = await rows.allocation_body()
        partial = {"invoice_amount": "92.00", "allocation_type": "ALLOCATION_TYPE_PARTIAL"}
        return Plan(
            {"allocation": body, **_key()},
            {"allocation": body, **_key()},
            "OK",
            _PER_ALLOCATION,
            shows=partial,
        )
    if name == "GetAllocation":
        shared = {"id": await rows.allocation(await rows.allocation_body())}
        return Plan(shared, dict(shared), "OK", shows=shared)
    if name in ("ListAllocations", "QueryRecords"):
        body = await rows.allocation_body()
        for amount in ("10.00", "20.00", "30.00", "40.00"):
            await rows.allocation({**body, "amount": amount})
        await rows.reverse(await rows.allocation({**body, "amount": "25.00"}))
        if name == "ListAllocations":
            query: Json = {
                "limit": 2,
                "order_by": "amount",
                "direction": "asc",
                "filter": "allocation_type = PARTIAL AND invoice.total > 100 AND amount >= 20",
                "include_total": True,
                "workspace_id": str(tenant),
            }
        else:
            query = {
                "root": "invoice_transactions",
                "where_clause": {
                    "_and": [{"amount": {"_gte": "20"}}, {"invoice": {"total": {"_gt": 100}}}]
                },
                "order_by": {"field": "amount", "direction": "asc"},
                "limit": 2,
                "include_total": True,
                "workspace_id": str(tenant),
            }
        return Plan(query, dict(query), "OK", frozenset({"next_cursor"}), shows={"total": 3})
    if name == "DeleteAllocation":
        body = await rows.allocation_body()
        rest, grpc_ = {"id": await rows.allocation(body)}, {"id": await rows.allocation(body)}
        return Plan(rest, grpc_, "OK", _PER_ALLOCATION | {"deleted_at"})

    if name == "GetWorkspaceSettings":
        named = apb.UpdateWorkspaceSettingsRequest(
            settings=apb.WorkspaceSettings(name="Parity workspace"),
            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
        )
        await rows.allocations.UpdateWorkspaceSettings(named, metadata=rows.md)
        shared = {"workspace_id": str(tenant)}
        return Plan(shared, dict(shared), "OK", shows={**shared, "name": "Parity workspace"})
    if name == "UpdateWorkspaceSettings":
        # The same change twice, REST first: only the stamp and etag of the write differ.
        change = {
            "settings": {"accounting_currency": "USD", "name": "Parity"},
            "update_mask": "accountingCurrency,name",
            "workspace_id": str(tenant),
        }
        settled = {"accounting_currency": "USD", "name": "Parity"}
        return Plan(
            change, copy.deepcopy(change), "OK", frozenset({"updated_at", "etag"}), shows=settled
        )
    raise AssertionError(f"no parity plan for {binding.rpc.full_name}: add one")


def rest_parts(binding: Binding, request: Json) -> tuple[str, Json | None, list[tuple[str, str]]]:
    """The REST form of a whole request: (path, JSON body or None, query pairs)."""
    tree = copy.deepcopy(request)

    def substitute(match: re.Match[str]) -> str:
        return quote(str(_pop(tree, match.group(1))), safe="")

    path = _VARIABLE.sub(substitute, binding.template)
    body: Json | None
    if binding.body == "*":
        body, rest = tree, {}
    elif binding.body:
        body, rest = tree.pop(binding.body, {}), tree
    else:
        body, rest = None, tree
    return path, body, list(_query_pairs(rest))


def _query_pairs(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for name, value in tree.items():
        if isinstance(value, dict):
            yield from _query_pairs(value, f"{prefix}{name}.")
        elif isinstance(value, list):
            yield from ((f"{prefix}{name}", _text(item)) for item in value)
        else:
            yield f"{prefix}{name}", _text(value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def call_grpc(
    channel: grpc.aio.Channel, binding: Binding, request: Json, metadata: Metadata
) -> Message | grpc.aio.AioRpcError:
    request_cls = message_factory.GetMessageClass(binding.rpc.input_type)
    response_cls = message_factory.GetMessageClass(binding.rpc.output_type)
    call = channel.unary_unary(
        binding.full_method,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_cls.FromString,
    )
    try:
        response: Message = await call(
            json_format.ParseDict(request, request_cls()), metadata=metadata, timeout=15
        )
    except grpc.aio.AioRpcError as err:
        return err
    return response


def _counterparty_plan(binding: Binding, variant: str, request: Json) -> Plan:
    """Counterparties: ids are plain UUIDs (what an invoice's counterparty_id takes)."""
    name = binding.rpc.name
    unknown = str(uuid.uuid4())
    if name == "UpdateCounterparty":
        request = {"counterparty": {"id": unknown, "name": "Acme"}}
    elif "id" in request:
        request["id"] = unknown
    if variant == "unauthenticated":
        return Plan(request, copy.deepcopy(request), "UNAUTHENTICATED", authenticated=False)
    if variant == "invalid":
        bad = {
            "CreateCounterparty": (
                {"counterparty": {"name": "X", "siret": "123"}},
                "counterparty.siret",
            ),
            "ListCounterparties": ({"filter": "nope = 1"}, "filter"),
            "UpdateCounterparty": (
                {"counterparty": {"id": "nope", "name": "X"}},
                "counterparty.id",
            ),
        }
        body, violated = bad.get(name, ({"id": "nope"}, "id"))
        return Plan(body, copy.deepcopy(body), "INVALID_ARGUMENT", violated=violated)
    if name == "CreateCounterparty":
        request["counterparty"] = {"name": "Acme", "head_office": True}
        return Plan(request, {**request, "request_id": str(uuid.uuid4())}, "OK", ignore=_PER_ROW)
    if name == "ListCounterparties":
        return Plan(request, copy.deepcopy(request), "OK")
    return Plan(request, copy.deepcopy(request), "NOT_FOUND")


def _connection_plan(binding: Binding, variant: str) -> Plan:
    """Connections and provenance: each side creates its own inactive connection (two
    active ones would conflict); reads, writes and polls of an unknown id are the same
    NOT_FOUND; bad input the same INVALID_ARGUMENT."""
    request = _pending_request(binding)
    name = binding.rpc.name
    if name.endswith(("Counterparty", "Counterparties")):
        return _counterparty_plan(binding, variant, request)
    if variant == "unauthenticated":
        return Plan(request, copy.deepcopy(request), "UNAUTHENTICATED", authenticated=False)
    if variant == "invalid":
        bad = {
            "CreateConnection": ({"provider": "nope", "api_key": "k"}, "provider"),
            "ListConnections": ({"filter": "nope = 1"}, "filter"),
            "ListInvoiceProvenances": ({"filter": "nope = 1"}, "filter"),
            "CreateInvoiceProvenance": (
                {"invoice_provenance": {"invoice_id": UNKNOWN_ID, "connection_id": "con_x"}},
                "invoice_provenance.direction",
            ),
        }
        body, violated = bad.get(name, ({"id": "inv_nope"}, "id"))
        return Plan(body, copy.deepcopy(body), "INVALID_ARGUMENT", violated=violated)
    if name == "CreateConnection":
        request["active"] = False
        per_row = _PER_ROW | {"webhook_path"}
        return Plan(request, {**request, "request_id": str(uuid.uuid4())}, "OK", ignore=per_row)
    if name in ("ListConnections", "ListInvoiceProvenances"):
        return Plan(request, copy.deepcopy(request), "OK")
    if name == "CreateInvoiceProvenance":
        # Well-formed ids of rows that do not exist: the same NOT_FOUND both ways.
        request["invoice_provenance"] = {
            "invoice_id": UNKNOWN_ID,
            "connection_id": ids.new_id("con")[1],
            "direction": "PROVENANCE_DIRECTION_INPUT",
        }
    return Plan(request, copy.deepcopy(request), "NOT_FOUND")


def _variants(binding: Binding) -> list[str]:
    if binding.rpc.containing_service.full_name in SIMPLE_SERVICES:
        return ["ok", "unauthenticated", "invalid"]
    own = ["ok", "unauthenticated"]
    return [*own, "invalid"] if binding.rpc.containing_service.full_name in SERVED_SERVICES else own


PARITY_CASES = [
    pytest.param(binding, variant, id=f"{variant}:{binding.method} {binding.template}")
    for binding in BINDINGS
    for variant in _variants(binding)
]


def test_parity_covers_every_http_rule() -> None:
    rules = {(b.method, b.template) for b in BINDINGS}
    covered = {(p.values[0].method, p.values[0].template) for p in PARITY_CASES}
    assert covered == rules
    assert len(rules) == len(BINDINGS), "two bindings share a method and a template"
    assert len(BINDINGS) >= 40  # every service's rules and additional_bindings


@pytest.mark.parametrize(("binding", "variant"), PARITY_CASES)
async def test_rest_and_grpc_give_the_same_result(
    binding: Binding,
    variant: str,
    http: httpx.AsyncClient,
    channel: grpc.aio.Channel,
    invoices: Stub,
    allocations: AllocationStub,
    md: Metadata,
    auth: dict[str, str],
    tenant: uuid.UUID,
) -> None:
    service = binding.rpc.containing_service.full_name
    if service == INVOICE_SERVICE:
        plan = await _invoice_plan(binding, variant, invoices, md)
    elif service in SERVED_SERVICES:
        rows = Rows(invoices, allocations, md)
        plan = await _allocation_plan(binding, variant, rows, tenant)
    elif service in SIMPLE_SERVICES:
        plan = _connection_plan(binding, variant)
    else:
        request = _pending_request(binding)
        authenticated = variant == "ok"
        expect = "UNIMPLEMENTED" if authenticated else "UNAUTHENTICATED"
        plan = Plan(request, copy.deepcopy(request), expect, authenticated=authenticated)

    dialect = dialects.for_binding(binding)
    counts = "include_total" in binding.rpc.input_type.fields_by_name
    if isinstance(dialect, JsonApi) and counts:
        plan.grpc.setdefault("include_total", True)  # JSON:API lists count (meta.total)
    trace = f"parity-{uuid.uuid4().hex[:12]}"
    headers = {"X-Request-Id": trace, **(auth if plan.authenticated else {})}
    path, body, query = rest_parts(binding, plan.rest)
    rest = await http.request(
        binding.method, path, params=query, headers=headers, json=body if body is not None else None
    )
    outcome = await call_grpc(channel, binding, plan.grpc, md if plan.authenticated else ())

    if isinstance(outcome, grpc.aio.AioRpcError):
        code = outcome.code().name
        assert code == plan.expect, f"gRPC: {code}: {outcome.details()}"
        body_json = assert_error(rest, HTTP_STATUS[code], code, dialect)
        assert body_json["message"] == outcome.details()
        expected_details = [
            json_format.MessageToDict(d, preserving_proto_field_name=True)
            for d in rich_status(outcome).details
        ]
        assert body_json["details"] == expected_details
        assert detail(body_json, ERROR_INFO)["reason"] == error_info(outcome).reason
        assert body_json["meta"]["trace_id"] == trace
        if plan.violated:
            assert plan.violated in violated_fields(body_json), body_json
        return

    assert plan.expect == "OK", f"gRPC succeeded where {plan.expect} was expected"
    expected_status = 201 if binding.rpc.name.startswith("Create") else 200
    assert rest.status_code == expected_status, rest.text
    assert rest.headers["x-request-id"] == trace
    rest_json, grpc_json = rest.json(), as_json(outcome)
    if dialect is not None:  # both through the dialect's writer, compared as canonical JSON
        request = json_format.ParseDict(
            plan.grpc, message_factory.GetMessageClass(binding.rpc.input_type)()
        )
        written = jsontext.dumps(dialect.write(binding, request, outcome, path).body)
        rest_json = in_canonical(dialect, binding, request, rest.text)
        grpc_json = in_canonical(dialect, binding, request, written.decode())
    assert set(rest_json) == set(grpc_json)
    for name, value in plan.shows.items():
        assert rest_json[name] == value, (name, rest_json)
    for name in plan.ignore:
        assert (name in rest_json) == (name in grpc_json), name
        rest_json.pop(name, None)
        grpc_json.pop(name, None)
    assert rest_json == grpc_json
    if binding.rpc.name == "ListInvoices":
        await _cursors_are_interchangeable(http, binding, plan, rest.json(), outcome, headers)


async def _cursors_are_interchangeable(
    http: httpx.AsyncClient,
    binding: Binding,
    plan: Plan,
    rest_page: Json,
    grpc_page: Message,
    headers: dict[str, str],
) -> None:
    """A cursor signed for the gRPC call works over REST, and the reverse."""
    grpc_cursor = as_json(grpc_page)["next_cursor"]
    assert rest_page["next_cursor"] and grpc_cursor
    assert rest_page["total"] == 4 and len(rest_page["data"]) == 2
    path, _, query = rest_parts(binding, {**plan.rest, "cursor": grpc_cursor})
    second = await http.get(path, params=query, headers=headers)
    assert second.status_code == 200, second.text
    path, _, query = rest_parts(binding, {**plan.rest, "cursor": rest_page["next_cursor"]})
    third = await http.get(path, params=query, headers=headers)
    assert third.status_code == 200, third.text
    assert second.json()["data"] == third.json()["data"]
    assert len(second.json()["data"]) == 2 and second.json()["next_cursor"] == ""
    seen = [i["id"] for i in rest_page["data"] + second.json()["data"]]
    assert len(set(seen)) == 4


# ---- query mapping -----------------------------------------------------------------


@pytest.fixture
async def three_drafts(invoices: Stub, md: Metadata) -> list[pb.Invoice]:
    """Totals 120.00, 240.00, 360.00 (no tax); the middle one soft-deleted."""
    made = []
    for quantity in ("1", "2", "3"):
        line = pb.LineItem(description="x", quantity=quantity, unit_price="120.00")
        made.append(await create(invoices, md, line_items=[line]))
    await invoices.DeleteInvoice(pb.DeleteInvoiceRequest(id=made[1].id), metadata=md)
    return made


def totals(page: httpx.Response) -> list[str]:
    assert page.status_code == 200, page.text
    return [item["total"] for item in page.json()["data"]]


async def test_query_order_direction_show_deleted_and_total(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    three_drafts: list[pb.Invoice],
    invoices: Stub,
    md: Metadata,
) -> None:
    plain = await http.get("/v1/invoices", params={"order_by": "total"}, headers=auth)
    assert totals(plain) == ["360.00", "120.00"]  # default desc, deleted hidden
    assert "total" not in plain.json()  # only when asked

    asc = await http.get(
        "/v1/invoices",
        params={"order_by": "total", "direction": "asc", "show_deleted": "true"},
        headers=auth,
    )
    assert totals(asc) == ["120.00", "240.00", "360.00"]

    counted = await http.get(
        "/v1/invoices?order_by=total&direction=desc&show_deleted=true&include_total=1",
        headers=auth,
    )
    assert totals(counted) == ["360.00", "240.00", "120.00"]
    assert counted.json()["total"] == 3
    assert counted.json()["next_cursor"] == ""

    not_counted = await http.get("/v1/invoices?include_total=0&show_deleted=1", headers=auth)
    assert "total" not in not_counted.json() and len(totals(not_counted)) == 3

    # AIP-132 form, and the same page over gRPC.
    aip = await http.get("/v1/invoices", params={"order_by": "total asc"}, headers=auth)
    assert totals(aip) == ["120.00", "360.00"]
    grpc_page = await invoices.ListInvoices(
        pb.ListInvoicesRequest(order_by="total", direction="asc", show_deleted=True), metadata=md
    )
    assert asc.json()["data"] == [as_json(i) for i in grpc_page.data]


async def test_query_names_in_lower_camel_case_are_accepted(
    http: httpx.AsyncClient, auth: dict[str, str], three_drafts: list[pb.Invoice]
) -> None:
    snake = await http.get(
        "/v1/invoices?order_by=total&direction=asc&show_deleted=true&include_total=true",
        headers=auth,
    )
    camel = await http.get(
        "/v1/invoices?orderBy=total&direction=asc&showDeleted=true&includeTotal=true",
        headers=auth,
    )
    assert totals(camel) == ["120.00", "240.00", "360.00"]
    assert camel.json() == snake.json()


async def test_query_filter_and_limit_with_cursor(
    http: httpx.AsyncClient, auth: dict[str, str], three_drafts: list[pb.Invoice]
) -> None:
    first = await http.get(
        "/v1/invoices",
        params={"filter": "total >= 200 AND status = DRAFT", "limit": "1", "show_deleted": "1"},
        headers=auth,
    )
    assert totals(first) == ["360.00"]
    cursor = first.json()["next_cursor"]
    assert cursor
    second = await http.get(
        "/v1/invoices",
        params={
            "filter": "total >= 200 AND status = DRAFT",
            "limit": "1",
            "show_deleted": "1",
            "cursor": cursor,
        },
        headers=auth,
    )
    assert totals(second) == ["240.00"]
    # The cursor is bound to its query: replayed with another filter it is refused.
    other = await http.get(
        "/v1/invoices", params={"filter": "total >= 100", "cursor": cursor}, headers=auth
    )
    assert "cursor" in violated_fields(assert_error(other, 400, "INVALID_ARGUMENT"))


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("bogus=1", "bogus"),
        ("limit=1&bogus.deep=2", "bogus.deep"),
        ("limit=abc", "limit"),
        ("show_deleted=maybe", "show_deleted"),
        ("showDeleted=maybe", "showDeleted"),
        ("limit=1&limit=2", "limit"),
        ("order_by=total&orderBy=total", "orderBy"),
        ("limit=99999999999", ""),
    ],
    ids=["unknown", "unknown-dotted", "int", "bool", "bool-camel", "twice", "twice-camel", "range"],
)
async def test_query_errors_name_the_parameter(
    http: httpx.AsyncClient, auth: dict[str, str], query: str, named: str
) -> None:
    response = await http.get(f"/v1/invoices?{query}", headers=auth)
    body = assert_error(response, 400, "INVALID_ARGUMENT")
    if named:
        assert named in body["message"]
        assert violated_fields(body) == [named]


async def test_negative_limit_is_the_servers_invalid_argument(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = assert_error(
        await http.get("/v1/invoices?limit=-1", headers=auth), 400, "INVALID_ARGUMENT"
    )
    assert detail(body, ERROR_INFO)["reason"] == "INVALID_LIMIT"
    assert violated_fields(body) == ["limit"]


async def test_query_parameter_already_covered_by_path_or_body_is_refused(
    http: httpx.AsyncClient, auth: dict[str, str], invoices: Stub, md: Metadata
) -> None:
    invoice_id = await fresh(invoices, md)
    cases = [
        ("PATCH", f"/v1/invoices/{invoice_id}?invoice.notes=x", {"notes": "y"}, "invoice.notes"),
        ("PATCH", f"/v1/invoices/{invoice_id}?invoice.id={UNKNOWN_ID}", {}, "invoice.id"),
        ("POST", "/v1/invoices?invoice.currency=USD", INVOICE_JSON, "invoice.currency"),
        ("POST", f"/v1/invoices/{invoice_id}:issue?etag=abc", {}, "etag"),  # body "*"
        ("GET", f"/v1/invoices/{invoice_id}?id={UNKNOWN_ID}", None, "id"),  # the path
    ]
    for method, url, body, named in cases:
        response = await http.request(method, url, json=body, headers=auth)
        error = assert_error(response, 400, "INVALID_ARGUMENT")
        assert named in error["message"], (url, error)
        assert violated_fields(error) == [named]
    untouched = await invoices.GetInvoice(pb.GetInvoiceRequest(id=invoice_id), metadata=md)
    assert untouched.status == pb.INVOICE_STATUS_DRAFT and untouched.notes == "parity"


async def test_request_id_in_the_query_of_a_create(
    http: httpx.AsyncClient, auth: dict[str, str], admin: asyncpg.Connection, tenant: uuid.UUID
) -> None:
    key = str(uuid.uuid4())
    first = await http.post(f"/v1/invoices?request_id={key}", json=INVOICE_JSON, headers=auth)
    again = await http.post(f"/v1/invoices?requestId={key}", json=INVOICE_JSON, headers=auth)
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert first.json()["id"] == again.json()["id"]
    assert await count_invoices(admin, tenant) == 1


# Repeated fields, enums and nested messages never appear in the query strings of the
# published rules (their requests carry only scalars there), so the query mapping of those
# is checked through an extra binding over a real rpc: UpdateInvoice with no body, every
# field in the query. It is served by a Gateway over the real channel and server.
QUERY_ONLY_UPDATE = Binding(
    method="PATCH",
    template="/test/invoices/{invoice.id}",
    body="",
    response_body="",
    rpc=pb.DESCRIPTOR.services_by_name["InvoiceService"].methods_by_name["UpdateInvoice"],
)


@pytest.fixture
async def query_only(server: app.Running) -> AsyncIterator[httpx.AsyncClient]:
    gateway = Gateway(server.dispatcher, [QUERY_ONLY_UPDATE], GatewayConfig())
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        yield client


async def test_query_repeated_enum_and_dotted_message_fields(
    query_only: httpx.AsyncClient, auth: dict[str, str], invoices: Stub, md: Metadata
) -> None:
    invoice_id = await fresh(invoices, md)
    url = f"/test/invoices/{invoice_id}"

    # Repeated: one value per occurrence, in order. Enum by name. Message by dotted leaves.
    query = (
        "invoice.tags=b&invoice.tags=a&invoice.tags=c"
        "&invoice.source_type=SOURCE_TYPE_BACKEND"
        "&invoice.due_date.year=2031&invoice.due_date.month=2&invoice.due_date.day=28"
        "&update_mask=tags,sourceType,dueDate"
    )
    response = await query_only.patch(f"{url}?{query}", headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tags"] == ["b", "a", "c"]
    assert body["source_type"] == "SOURCE_TYPE_BACKEND"
    assert body["due_date"] == {"year": 2031, "month": 2, "day": 28}
    assert body["notes"] == "parity"  # not in the mask

    # Enum by number; lowerCamel names, dotted too.
    response = await query_only.patch(
        f"{url}?invoice.sourceType=3&invoice.dueDate.year=2032&invoice.dueDate.month=3"
        "&invoice.dueDate.day=1&updateMask=sourceType,dueDate",
        headers=auth,
    )
    assert response.status_code == 200, response.text
    assert response.json()["source_type"] == "SOURCE_TYPE_SERVER"
    assert response.json()["due_date"] == {"year": 2032, "month": 3, "day": 1}
    stored = await invoices.GetInvoice(pb.GetInvoiceRequest(id=invoice_id), metadata=md)
    assert stored.source_type == 3 and list(stored.tags) == ["b", "a", "c"]

    refused = {
        "invoice.source_type=SOURCE_TYPE_NOPE&update_mask=source_type": "",
        "invoice.due_date=2031-02-28&update_mask=due_date": "invoice.due_date",
        "invoice.line_items.quantity=1&update_mask=line_items": "invoice.line_items.quantity",
        "invoice.due_date.year=2031&invoice.dueDate.year=2032&update_mask=due_date": (
            "invoice.dueDate.year"
        ),
        "invoice.bogus=1": "invoice.bogus",
    }
    for bad, named in refused.items():
        error = assert_error(
            await query_only.patch(f"{url}?{bad}", headers=auth), 400, "INVALID_ARGUMENT"
        )
        if named:
            assert named in error["message"], (bad, error)
    unchanged = await invoices.GetInvoice(pb.GetInvoiceRequest(id=invoice_id), metadata=md)
    assert unchanged == stored


# ---- bodies -----------------------------------------------------------------------


async def test_body_in_snake_case_and_in_lower_camel_case(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    camel = {
        "type": "INVOICE_TYPE_CUSTOMER",
        "currency": "EUR",
        "counterpartyId": PARTY,
        "dueDate": {"year": 2030, "month": 1, "day": 31},
        "tags": ["gateway"],
        "notes": "first notes",
        "lineItems": [
            {
                "description": "Consulting",
                "quantity": "10",
                "unitPrice": "120.00",
                "taxRate": "0.20",
            }
        ],
    }
    snake = await http.post("/v1/invoices", json=INVOICE_JSON, headers=auth)
    lower = await http.post("/v1/invoices", json=camel, headers=auth)
    assert snake.status_code == lower.status_code == 201, (snake.text, lower.text)
    a, b = snake.json(), lower.json()
    assert "counterparty_id" in b and "counterpartyId" not in b  # output keeps proto names
    for key in _PER_ROW:
        a.pop(key), b.pop(key)
    assert a == b
    assert a["total"] == "1440.00" and a["line_items"][0]["tax_amount"] == "240.00"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({**INVOICE_JSON, "bogus_field": 1}, "bogus_field"),
        ({**INVOICE_JSON, "line_items": [{"quantity": "1", "unit_price": "1", "nope": 2}]}, "nope"),
        ({**INVOICE_JSON, "type": "INVOICE_TYPE_NOPE"}, "INVOICE_TYPE_NOPE"),
        ({**INVOICE_JSON, "tags": "not-a-list"}, "tags"),
    ],
    ids=["unknown-field", "unknown-nested-field", "unknown-enum", "wrong-type"],
)
async def test_bad_body_fields_are_named(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    body: Json,
    named: str,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
) -> None:
    error = assert_error(
        await http.post("/v1/invoices", json=body, headers=auth), 400, "INVALID_ARGUMENT"
    )
    assert named in error["message"]
    assert await count_invoices(admin, tenant) == 0


@pytest.mark.parametrize(
    "raw",
    [
        b'{"currency": "EUR",',
        b"not json",
        b"[1, 2]",
        b'"a string"',
        b"\xc3\x28{}",
        b"null",
        b'{"notes": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001,
    ],
    ids=["truncated", "text", "array", "string", "not-utf8", "null", "nested-too-deeply"],
)
async def test_malformed_json_body_is_400(
    http: httpx.AsyncClient, auth: dict[str, str], raw: bytes
) -> None:
    headers = {**auth, "Content-Type": "application/json"}
    response = await http.post("/v1/invoices", content=raw, headers=headers)
    assert_error(response, 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", None],
)
async def test_body_that_is_not_json_is_415(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    content_type: str | None,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
) -> None:
    headers = dict(auth)
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await http.post("/v1/invoices", content=json.dumps(INVOICE_JSON), headers=headers)
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert await count_invoices(admin, tenant) == 0


async def test_json_with_charset_and_empty_bodies_are_accepted(
    http: httpx.AsyncClient, auth: dict[str, str], invoices: Stub, md: Metadata
) -> None:
    headers = {**auth, "Content-Type": "application/json; charset=utf-8"}
    created = await http.post("/v1/invoices", content=json.dumps(INVOICE_JSON), headers=headers)
    assert created.status_code == 201, created.text
    # curl -X POST .../v1/invoices/{id}:issue with no body and no Content-Type
    invoice_id = await fresh(invoices, md)
    issued = await http.post(f"/v1/invoices/{invoice_id}:issue", headers=auth)
    assert issued.status_code == 200, issued.text
    assert issued.json()["status"] == "INVOICE_STATUS_ISSUED"


async def test_body_over_the_limit_is_413(
    asgi: Callable[..., httpx.AsyncClient],
    auth: dict[str, str],
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
    invoices: Stub,
    md: Metadata,
) -> None:
    headers = {**auth, "Content-Type": "application/json"}
    big = json.dumps(INVOICE_JSON).encode()
    assert len(big) > 100

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for start in range(0, len(big), 40):
            yield big[start : start + 40]

    async with asgi(GatewaySettings(max_body_bytes=100)) as small:
        declared = await small.post("/v1/invoices", content=big, headers=headers)
        assert_error(declared, 413, "PAYLOAD_TOO_LARGE")
        streamed = await small.post("/v1/invoices", content=chunked(), headers=headers)
        assert_error(streamed, 413, "PAYLOAD_TOO_LARGE")
        # Under the limit, the same gateway forwards to the real server.
        invoice_id = await fresh(invoices, md)
        issued = await small.post(f"/v1/invoices/{invoice_id}:issue", json={}, headers=auth)
        assert issued.status_code == 200, issued.text
    assert await count_invoices(admin, tenant) == 1


# ---- PATCH and its field mask -------------------------------------------------------


async def test_patch_without_mask_changes_only_the_body_keys(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = await http.post("/v1/invoices", json=INVOICE_JSON, headers=auth)
    assert created.status_code == 201, created.text
    before = created.json()
    patched = await http.patch(
        f"/v1/invoices/{before['id']}", json={"notes": "Net 30"}, headers=auth
    )
    assert patched.status_code == 200, patched.text
    after = patched.json()
    assert after["notes"] == "Net 30"
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"notes", "updated_at", "etag"}

    # lowerCamel body keys make the mask too.
    again = await http.patch(
        f"/v1/invoices/{before['id']}", json={"documentRef": "s3://docs/1.pdf"}, headers=auth
    )
    assert again.status_code == 200, again.text
    assert again.json()["document_ref"] == "s3://docs/1.pdf"
    assert again.json()["notes"] == "Net 30" and again.json()["tags"] == ["gateway"]


async def test_patch_with_explicit_mask_is_honoured(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = (await http.post("/v1/invoices", json=INVOICE_JSON, headers=auth)).json()
    url = f"/v1/invoices/{created['id']}"
    body = {"notes": "ignored", "tags": ["masked"], "currency": "USD"}
    patched = await http.patch(f"{url}?update_mask=tags", json=body, headers=auth)
    assert patched.status_code == 200, patched.text
    after = patched.json()
    assert after["tags"] == ["masked"]
    assert after["notes"] == "first notes" and after["currency"] == "EUR"

    camel = await http.patch(
        f"{url}?updateMask=dueDate",
        json={"dueDate": {"year": 2031, "month": 5, "day": 1}, "notes": "no"},
        headers=auth,
    )
    assert camel.status_code == 200, camel.text
    assert camel.json()["due_date"] == {"year": 2031, "month": 5, "day": 1}
    assert camel.json()["notes"] == "first notes"

    # The mask is checked by the server: a read-only path is refused, naming update_mask.
    error = assert_error(
        await http.patch(f"{url}?update_mask=status", json={"notes": "x"}, headers=auth),
        400,
        "INVALID_ARGUMENT",
    )
    assert any(f.startswith("update_mask") for f in violated_fields(error))


@pytest.mark.parametrize(
    ("mask", "body", "changed"),
    [
        ("document_ref", {"document_ref": "s3://a.pdf"}, "document_ref"),
        ("due_date", {"due_date": {"year": 2031, "month": 5, "day": 1}}, "due_date"),
        ("notes,document_ref", {"notes": "n", "document_ref": "s3://b.pdf"}, "document_ref"),
    ],
    ids=["one", "message", "two"],
)
async def test_update_mask_query_accepts_proto_field_names(
    http: httpx.AsyncClient, auth: dict[str, str], mask: str, body: Json, changed: str
) -> None:
    """`?update_mask=due_date`: the paths as written in the proto (what grpc-gateway takes,
    and what the FieldMask of the gRPC request holds), not only proto3 JSON's lowerCamel."""
    created = (await http.post("/v1/invoices", json=INVOICE_JSON, headers=auth)).json()
    patched = await http.patch(
        f"/v1/invoices/{created['id']}?update_mask={mask}", json=body, headers=auth
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()[changed] == body[changed]


async def test_patch_stale_etag_with_explicit_mask_is_409(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = (await http.post("/v1/invoices", json=INVOICE_JSON, headers=auth)).json()
    url = f"/v1/invoices/{created['id']}?update_mask=notes"
    first = await http.patch(url, json={"notes": "a", "etag": created["etag"]}, headers=auth)
    assert first.status_code == 200, first.text
    stale = await http.patch(url, json={"notes": "b", "etag": created["etag"]}, headers=auth)
    assert_error(stale, 409, "ABORTED")


async def test_patch_with_etag_and_no_mask_uses_the_etag_as_a_precondition(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """The etag in a PATCH body is the concurrency token (invoices.proto: "send it back on
    Update ... to fail with ABORTED"), not a field to update: the mask made from the body's
    keys must not name it, or no REST client can send an etag without writing a mask."""
    created = (await http.post("/v1/invoices", json=INVOICE_JSON, headers=auth)).json()
    url = f"/v1/invoices/{created['id']}"
    first = await http.patch(url, json={"notes": "a", "etag": created["etag"]}, headers=auth)
    assert first.status_code == 200, first.text
    assert first.json()["notes"] == "a"
    stale = await http.patch(url, json={"notes": "b", "etag": created["etag"]}, headers=auth)
    assert_error(stale, 409, "ABORTED")


# ---- status codes and the seeds' paths ----------------------------------------------


async def test_create_is_201_and_the_seed_paths_work(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    canonical = await http.post("/v1/invoices", json=INVOICE_JSON, headers=auth)
    assert canonical.status_code == 201, canonical.text
    seed = await http.post("/api/v1/finance/invoices", json=INVOICE_JSON, headers=auth)
    assert seed.status_code == 201, seed.text
    seed_id = seed.json()["id"]
    assert seed_id.startswith("inv_")
    # The same invoice in seed 001's spelling: short enums, money as exact JSON numbers.
    assert (seed.json()["type"], seed.json()["status"]) == ("customer", "draft")
    assert canonical.json()["total"] == "1440.00" and '"total":1440.00' in seed.text

    got = await http.get(f"/api/v1/finance/invoices/{seed_id}", headers=auth)
    assert got.status_code == 200 and got.json() == seed.json()
    listed = await http.get("/api/v1/finance/invoices?include_total=true", headers=auth)
    assert listed.status_code == 200
    assert listed.json()["total"] == 2
    assert {i["id"] for i in listed.json()["data"]} == {seed_id, canonical.json()["id"]}
    issued = await http.post(f"/api/v1/finance/invoices/{seed_id}:issue", json={}, headers=auth)
    assert issued.status_code == 200 and issued.json()["status"] == "issued"
    again = await http.get(f"/v1/invoices/{seed_id}", headers=auth)
    assert again.json()["status"] == "INVOICE_STATUS_ISSUED"  # canonical path unchanged


async def test_allocation_seed_paths_are_served(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    invoices: Stub,
    allocations: AllocationStub,
    md: Metadata,
    tenant: uuid.UUID,
) -> None:
    """Seed 003's paths (JSON:API), and PayInvoice's, answer with data now that the rpcs
    are served; the canonical /v1/allocations paths answer the same rows in proto JSON."""
    rows = Rows(invoices, allocations, md)
    body = await rows.allocation_body()
    created = await http.post("/v1/invoice-transactions", json=body, headers=auth)
    assert created.status_code == 201, created.text
    resource = created.json()["data"]
    assert resource["type"] == "invoice_transaction" and resource["id"].startswith("alc_")
    attributes = resource["attributes"]
    assert attributes["invoice_transaction_id"] == resource["id"]
    assert attributes["workspace_id"] == str(tenant)
    assert '"amount":100.00' in created.text and attributes["currency"] == "USD"
    assert (attributes["invoice_amount"], attributes["invoice_currency"]) == (92, "EUR")
    assert '"invoice_amount":92.00' in created.text
    assert attributes["allocation_type"] == "partial" and attributes["is_partial"] is True
    relationships = resource["relationships"]
    assert relationships["invoice"]["data"] == {"type": "invoice", "id": body["invoice_id"]}
    assert relationships["transaction"]["data"]["id"] == body["transaction_id"]

    got = await http.get(f"/v1/invoice-transactions/{resource['id']}", headers=auth)
    assert got.status_code == 200 and got.json() == {"data": resource}
    canonical = await http.get(f"/v1/allocations/{resource['id']}", headers=auth)
    assert canonical.json()["allocation_type"] == "ALLOCATION_TYPE_PARTIAL"
    assert canonical.json()["amount"] == "100.00"
    listed = await http.get("/v1/invoice-transactions", headers=auth)
    assert listed.status_code == 200, listed.text
    assert listed.json() == {
        "data": [resource],
        "meta": {"total": 1, "count": 1},
        "links": {"next": None},
    }

    query = {
        "root": "invoice_transactions",
        "where_clause": {"invoice": {"total": {"_gt": "100"}}},
        "limit": 10,
        "include_total": True,
    }
    records = await http.post("/v1/records/query", json=query, headers=auth)
    assert records.status_code == 200, records.text
    assert records.json() == listed.json()  # the rows as the same resource objects
    nothing = await http.post(
        "/v1/records/query",
        json={**query, "where_clause": {"amount": {"_gt": "100"}}},
        headers=auth,
    )
    assert nothing.status_code == 200, nothing.text
    assert nothing.json() == {"data": [], "meta": {"total": 0, "count": 0}, "links": {"next": None}}

    # PayInvoice pays the rest (1440.00 - 92.00) over the seed path, then refuses more.
    paid = await http.post(
        f"/api/v1/finance/invoices/{body['invoice_id']}:pay",
        json={"reference": "wire-2"},
        headers=auth,
    )
    assert paid.status_code == 200, paid.text
    invoice = paid.json()
    assert invoice["id"] == body["invoice_id"]
    assert invoice["payment_status"] == "paid"
    assert '"amount_paid":1440.00' in paid.text and '"amount_due":0.00' in paid.text
    assert invoice["paid_at"]
    again = await http.post(f"/v1/invoices/{body['invoice_id']}:pay", json={}, headers=auth)
    error = assert_error(again, 400, "FAILED_PRECONDITION")
    assert detail(error, ERROR_INFO)["reason"] == "INVOICE_ALREADY_PAID"


async def test_delete_returns_the_deleted_invoice(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = (await http.post("/v1/invoices", json=INVOICE_JSON, headers=auth)).json()
    deleted = await http.delete(f"/v1/invoices/{created['id']}", headers=auth)
    assert deleted.status_code == 200, deleted.text  # DeleteInvoice returns the Invoice
    assert deleted.json()["is_deleted"] is True and deleted.json()["deleted_at"]
    again = await http.delete(f"/v1/invoices/{created['id']}", headers=auth)
    assert_error(again, 404, "NOT_FOUND")
    back = await http.post(f"/v1/invoices/{created['id']}:undelete", headers=auth)
    assert back.status_code == 200 and back.json()["is_deleted"] is False


# ---- routing errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/v2/invoices", "/v1/invoices/", "/v1/invoices/inv_x/extra", "/v1/nope", "/", "/v1//invoices"],
)
async def test_unknown_route_is_404(
    http: httpx.AsyncClient, auth: dict[str, str], path: str
) -> None:
    body = assert_error(await http.get(path, headers=auth), 404, "NOT_FOUND")
    # The gateway's own 404 (no rpc ran): its ErrorInfo says there is no route.
    assert [d["reason"] for d in body["details"]] == ["NO_ROUTE"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/invoices", "GET, POST"),
        ("PUT", "/v1/invoices/inv_x", "DELETE, GET, PATCH"),
        ("GET", "/v1/invoices/inv_x:issue", "POST"),
        ("OPTIONS", "/v1/invoices", "GET, POST"),
        ("POST", "/v1/invoices/inv_x", "DELETE, GET, PATCH"),
    ],
)
async def test_wrong_method_is_405_with_allow(
    http: httpx.AsyncClient, auth: dict[str, str], method: str, path: str, allow: str
) -> None:
    response = await http.request(method, path, headers=auth)
    body = assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == allow
    assert method in body["message"]


# ---- headers ------------------------------------------------------------------------


async def test_authorization_header_is_forwarded_and_required(
    http: httpx.AsyncClient, auth: dict[str, str], tokens: Tokens, tenant: uuid.UUID
) -> None:
    assert (await http.get("/v1/invoices", headers=auth)).status_code == 200
    missing = assert_error(await http.get("/v1/invoices"), 401, "UNAUTHENTICATED")
    assert detail(missing, ERROR_INFO)["reason"]
    garbage = await http.get("/v1/invoices", headers={"Authorization": "Bearer not-a-jwt"})
    assert_error(garbage, 401, "UNAUTHENTICATED")
    read_only = {"Authorization": f"Bearer {tokens.token(tenant, permissions=['invoices.read'])}"}
    assert (await http.get("/v1/invoices", headers=read_only)).status_code == 200
    denied = await http.post("/v1/invoices", json=INVOICE_JSON, headers=read_only)
    assert_error(denied, 403, "PERMISSION_DENIED")


async def test_session_cookie_works_like_authorization(
    http: httpx.AsyncClient, tokens: Tokens, tenant: uuid.UUID, auth: dict[str, str]
) -> None:
    token = tokens.token(tenant)
    cookie = {"Cookie": f"theme=dark; session={token}; other=1"}
    created = await http.post("/v1/invoices", json=INVOICE_JSON, headers=cookie)
    assert created.status_code == 201, created.text
    assert created.json()["tenant_id"] == str(tenant)
    got = await http.get(f"/v1/invoices/{created.json()['id']}", headers=cookie)
    assert got.status_code == 200
    bad = await http.get("/v1/invoices", headers={"Cookie": "session=not-a-jwt"})
    assert_error(bad, 401, "UNAUTHENTICATED")
    empty = await http.get("/v1/invoices", headers={"Cookie": "session="})
    assert_error(empty, 401, "UNAUTHENTICATED")
    # The Authorization header wins over the cookie.
    both = await http.get("/v1/invoices", headers={**auth, "Cookie": "session=not-a-jwt"})
    assert both.status_code == 200


async def test_x_request_id_round_trip(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    ok = await http.get("/v1/invoices", headers={**auth, "X-Request-Id": "trace-ok-1"})
    assert ok.status_code == 200 and ok.headers["x-request-id"] == "trace-ok-1"

    unknown = f"/v1/invoices/{UNKNOWN_ID}"
    server_error = await http.get(unknown, headers={**auth, "X-Request-Id": "trace-404-2"})
    assert assert_error(server_error, 404, "NOT_FOUND")["meta"]["trace_id"] == "trace-404-2"

    route = await http.get("/v1/nowhere", headers={"X-Request-Id": "trace-route-3"})
    assert assert_error(route, 404, "NOT_FOUND")["meta"]["trace_id"] == "trace-route-3"


async def test_without_x_request_id_one_is_generated(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    generated = re.compile(r"[0-9a-f]{32}")
    seen = set()
    for response in (
        await http.get("/v1/invoices", headers=auth),
        await http.get(f"/v1/invoices/{UNKNOWN_ID}", headers=auth),
        await http.get("/v1/nowhere"),
        await http.get("/v1/invoices", headers={**auth, "X-Request-Id": "bad id with spaces"}),
        await http.get("/v1/invoices", headers={**auth, "X-Request-Id": "x" * 65}),
    ):
        trace = response.headers["x-request-id"]
        assert generated.fullmatch(trace), trace
        if response.status_code >= 400:
            assert response.json()["meta"]["trace_id"] == trace
        seen.add(trace)
    assert len(seen) == 5


async def test_idempotency_key_replays_a_create(
    http: httpx.AsyncClient, auth: dict[str, str], admin: asyncpg.Connection, tenant: uuid.UUID
) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await http.post("/v1/invoices", json=INVOICE_JSON, headers={**auth, **key})
    retry = await http.post("/v1/invoices", json=INVOICE_JSON, headers={**auth, **key})
    assert first.status_code == retry.status_code == 201, (first.text, retry.text)
    assert retry.json() == first.json()
    assert await count_invoices(admin, tenant) == 1

    other = {**INVOICE_JSON, "notes": "another request"}
    reused = await http.post("/v1/invoices", json=other, headers={**auth, **key})
    body = assert_error(reused, 400, "INVALID_ARGUMENT")
    assert detail(body, ERROR_INFO)["reason"] == "REQUEST_ID_REUSED"

    disagree = await http.post(
        f"/v1/invoices?request_id={uuid.uuid4()}", json=INVOICE_JSON, headers={**auth, **key}
    )
    assert "request_id" in violated_fields(assert_error(disagree, 400, "INVALID_ARGUMENT"))
    assert await count_invoices(admin, tenant) == 1


async def test_idempotency_key_replays_an_issue(
    http: httpx.AsyncClient, auth: dict[str, str], invoices: Stub, md: Metadata
) -> None:
    invoice_id = await fresh(invoices, md)
    headers = {**auth, "Idempotency-Key": f"issue-{uuid.uuid4()}"}
    first = await http.post(f"/v1/invoices/{invoice_id}:issue", json={}, headers=headers)
    retry = await http.post(f"/v1/invoices/{invoice_id}:issue", json={}, headers=headers)
    assert first.status_code == retry.status_code == 200, (first.text, retry.text)
    assert retry.json()["number"] == first.json()["number"] != ""
    unkeyed = await http.post(f"/v1/invoices/{invoice_id}:issue", json={}, headers=auth)
    assert_error(unkeyed, 400, "FAILED_PRECONDITION")


async def test_grpc_timeout_header(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    """`Grpc-Timeout: 1n` becomes the call's deadline: DEADLINE_EXCEEDED, mapped to 504.

    grpc core tracks deadlines at millisecond granularity and a loopback ListInvoices takes
    about 2 ms, so a 1 ns deadline often does not fire in time: plain gRPC with timeout=1e-9
    answers OK about 3 times in 4 as well. Hence: every answer is 504 DEADLINE_EXCEEDED or a
    200, and 504 does come within a few tries.
    """
    outcomes = set()
    for _ in range(200):
        tiny = await http.get("/v1/invoices", headers={**auth, "Grpc-Timeout": "1n"})
        if tiny.status_code == 200:
            outcomes.add(200)
            continue
        body = assert_error(tiny, 504, "DEADLINE_EXCEEDED")
        assert body["title"] == "Gateway Timeout"
        outcomes.add(504)
        break
    assert 504 in outcomes
    roomy = await http.get("/v1/invoices", headers={**auth, "Grpc-Timeout": "10S"})
    assert roomy.status_code == 200, roomy.text
    for malformed in ("abc", "10", "10s", "-1S", "1.5S", "123456789S", ""):
        bad = await http.get("/v1/invoices", headers={**auth, "Grpc-Timeout": malformed})
        assert "Grpc-Timeout" in assert_error(bad, 400, "INVALID_ARGUMENT")["message"]


async def test_other_headers_are_not_forwarded(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    tenant: uuid.UUID,
    tokens: Tokens,
    invoices: Stub,
) -> None:
    other_tenant = uuid.uuid4()
    spoofed = {
        **auth,
        "X-Tenant-Id": str(other_tenant),
        "Grpc-Metadata-X-Tenant-Id": str(other_tenant),
        "Grpc-Metadata-Foo": "bar",
        "Tenant-Id": str(other_tenant),
    }
    created = await http.post("/v1/invoices", json=INVOICE_JSON, headers=spoofed)
    assert created.status_code == 201, created.text
    assert created.json()["tenant_id"] == str(tenant)
    invoice_id = created.json()["id"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await invoices.GetInvoice(
            pb.GetInvoiceRequest(id=invoice_id), metadata=tokens.md(other_tenant)
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    mine = await invoices.GetInvoice(
        pb.GetInvoiceRequest(id=invoice_id), metadata=tokens.md(tenant)
    )
    assert mine.id == invoice_id

    # grpc-gateway would forward Grpc-Metadata-* as metadata; this gateway does not.
    smuggled = {"Grpc-Metadata-Authorization": auth["Authorization"]}
    assert_error(await http.get("/v1/invoices", headers=smuggled), 401, "UNAUTHENTICATED")
    trace = await http.get(
        "/v1/invoices", headers={**auth, "Grpc-Metadata-X-Request-Id": "smuggled"}
    )
    assert trace.status_code == 200 and trace.headers["x-request-id"] != "smuggled"


# ---- escaping in path variables -----------------------------------------------------


async def test_encoded_slash_in_id_reaches_the_server_decoded(
    http: httpx.AsyncClient, auth: dict[str, str], invoices: Stub, md: Metadata
) -> None:
    response = await http.get("/v1/invoices/inv_abc%2Fdef", headers=auth)
    body = assert_error(response, 400, "INVALID_ARGUMENT")
    assert violated_fields(body) == ["id"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await invoices.GetInvoice(pb.GetInvoiceRequest(id="inv_abc/def"), metadata=md)
    assert body["message"] == caught.value.details()  # the server saw "inv_abc/def"
    assert detail(body, ERROR_INFO) == json_format.MessageToDict(
        error_info(caught.value), preserving_proto_field_name=True
    ) | {"@type": ERROR_INFO}


async def test_encoded_colon_in_id_is_data_not_a_verb(
    http: httpx.AsyncClient, auth: dict[str, str], invoices: Stub, md: Metadata
) -> None:
    invoice_id = await fresh(invoices, md)
    response = await http.get(f"/v1/invoices/{invoice_id}%3Aissue", headers=auth)
    body = assert_error(response, 400, "INVALID_ARGUMENT")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await invoices.GetInvoice(pb.GetInvoiceRequest(id=f"{invoice_id}:issue"), metadata=md)
    assert body["message"] == caught.value.details()
    refused = await http.post(f"/v1/invoices/{invoice_id}%3Aissue", headers=auth)
    assert_error(refused, 405, "METHOD_NOT_ALLOWED")
    still = await invoices.GetInvoice(pb.GetInvoiceRequest(id=invoice_id), metadata=md)
    assert still.status == pb.INVOICE_STATUS_DRAFT


# ---- CORS -----------------------------------------------------------------------------


async def test_cors_preflight_only_for_the_configured_origin(
    asgi: Callable[..., httpx.AsyncClient], auth: dict[str, str]
) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
    }
    async with asgi(GatewaySettings(cors_origins=("https://app.example",))) as client:
        allowed = await client.options(
            "/v1/invoices", headers={"Origin": "https://app.example", **preflight}
        )
        assert allowed.status_code == 200, allowed.text
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        assert "POST" in allowed.headers["access-control-allow-methods"]
        allowed_headers = allowed.headers["access-control-allow-headers"].lower()
        for name in ("authorization", "content-type", "idempotency-key"):
            assert name in allowed_headers

        # Starlette still lists the methods and headers it would allow, but without
        # Access-Control-Allow-Origin the browser refuses the preflight: that is the grant.
        other = await client.options(
            "/v1/invoices", headers={"Origin": "https://evil.example", **preflight}
        )
        assert other.status_code == 400, other.text
        assert "access-control-allow-origin" not in other.headers
        assert "access-control-allow-credentials" not in other.headers

        simple = await client.get("/v1/invoices", headers={**auth, "Origin": "https://app.example"})
        assert simple.status_code == 200, simple.text
        assert simple.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()
        foreign = await client.get(
            "/v1/invoices", headers={**auth, "Origin": "https://evil.example"}
        )
        assert foreign.status_code == 200
        assert "access-control-allow-origin" not in foreign.headers

    async with asgi(GatewaySettings()) as plain:  # no origins configured: no CORS at all
        response = await plain.options(
            "/v1/invoices", headers={"Origin": "https://app.example", **preflight}
        )
        assert "access-control-allow-origin" not in response.headers


# ---- OpenAPI and the docs page ----------------------------------------------------------


async def test_openapi_json_is_served(http: httpx.AsyncClient) -> None:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert {"/v1/invoices", "/v1/invoices/{id}", "/v1/invoices/{id}:issue"} <= set(
        document["paths"]
    )
    assert "post" in document["paths"]["/v1/invoices"]
    assert "201" in document["paths"]["/v1/invoices"]["post"]["responses"]


async def test_docs_page_uses_only_local_assets(http: httpx.AsyncClient) -> None:
    page = await http.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "/openapi.json" in html
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    references = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert references, html
    assert all(ref.startswith("/docs/static/") for ref in references), references
    for ref in references:
        asset = await http.get(ref)
        assert asset.status_code == 200, f"{ref}: {asset.status_code}"
        assert asset.content
    assert_error(await http.get("/docs/static/../../pyproject.toml"), 404, "NOT_FOUND")
    assert_error(await http.get("/docs/static/nope.js"), 404, "NOT_FOUND")
