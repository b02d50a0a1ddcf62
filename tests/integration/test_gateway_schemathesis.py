"""Schemathesis against the gateway's own /openapi.json: no 5xx, every response as documented.

How it runs, and why: the gateway and the gRPC server of the `server` fixture live on the
pytest-asyncio session event loop. Schemathesis (Hypothesis + `requests`) is synchronous, so
calling it from a plain sync test, or from an async test directly, would block that loop and
with it the very server it talks to. The async test below prepares real invoices over gRPC,
then hands the whole Hypothesis run to `asyncio.to_thread`: the worker thread sends real HTTP
requests to the in-process gateway while the session loop keeps serving them (and forwarding
them over gRPC to the real server). No second server or event loop is needed.

What is generated: for every operation, MAX_EXAMPLES cases from the schema alone (random ids
are mostly malformed, so these exercise the error paths); and for the operations of the
served services (InvoiceService, AllocationService, RecordsService), SEEDED_EXAMPLES more
with the path id of a real row of the token's tenant (an invoice, transaction, exchange rate
or allocation) and, for creates, PayInvoice, the workspace settings update and the records
query, a valid body, so that success responses are validated against the schema too. Every
request carries a valid bearer token.

Bounded: no shrinking, no example database, no Hypothesis deadline; the whole run is timed
and must stay well under a minute (it takes about 20 s).

Checks: not_a_server_error (except the 501 of the operations that are UNIMPLEMENTED by
design), response_schema_conformance and status_code_conformance (every operation documents
its success status plus `default`, so the latter holds for any documented error).
"""

from __future__ import annotations

import asyncio
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import hypothesis
import pytest
import requests
import schemathesis
from google.protobuf import json_format
from hypothesis import HealthCheck, Phase
from hypothesis.strategies import SearchStrategy
from invoicing.v1 import allocations_pb2 as apb
from invoicing.v1 import allocations_pb2_grpc, invoices_pb2_grpc
from invoicing.v1 import invoices_pb2 as pb
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import Tokens, sample_invoice

MAX_EXAMPLES = 10
SEEDED_EXAMPLES = 5
# Every rpc of these is served; ProvenanceService and ConnectionService are contract-only
# and answer UNIMPLEMENTED (README, Status).
IMPLEMENTED_SERVICES = frozenset({"InvoiceService", "AllocationService", "RecordsService"})
PENDING_RPCS: frozenset[str] = frozenset()  # rpcs of the services above not served yet
PARTY = "0b9c4a52-8d0e-4a8e-9a51-2f7d4d2c1e11"
VALID_INVOICE: dict[str, Any] = {
    "type": "INVOICE_TYPE_CUSTOMER",
    "currency": "EUR",
    "counterparty_id": PARTY,
    "tags": ["fuzz"],
    "line_items": [{"description": "x", "quantity": "2", "unit_price": "10.00"}],
}
VALID_TRANSACTION: dict[str, Any] = {
    "direction": "TRANSACTION_DIRECTION_RECEIVABLE",
    "amount": "100.00",
    "currency": "EUR",
    "reference": "fuzz",
    "counterparty_id": PARTY,
}
VALID_RATE: dict[str, Any] = {
    "base_currency": "USD",
    "quote_currency": "EUR",
    "rate": "0.92",
    "rate_date": {"year": 2026, "month": 4, "day": 28},
}
# Valid bodies by rpc (CreateAllocation's is made by _seed, with real ids).
VALID_BODIES: dict[str, Any] = {
    "CreateInvoice": VALID_INVOICE,
    "PayInvoice": {"amount": "1.00", "reference": "fuzz"},
    "CreateTransaction": VALID_TRANSACTION,
    "CreateExchangeRate": VALID_RATE,
    "UpdateWorkspaceSettings": {"name": "fuzz"},
    "QueryRecords": {
        "root": "invoice_transactions",
        "where_clause": {"amount": {"_gt": "0"}},
        "order_by": {"field": "amount", "direction": "asc"},
        "limit": 5,
        "include_total": True,
    },
}

pytestmark = pytest.mark.timeout(180)


@dataclass
class Outcome:
    cases: int = 0
    statuses: set[int] = field(default_factory=set)


@dataclass
class Seeds:
    ids: dict[str, str] = field(default_factory=dict)  # operationId -> a real row's id
    bodies: dict[str, Any] = field(default_factory=lambda: dict(VALID_BODIES))  # rpc -> body


def _operation_id(operation: Any) -> str:
    return str(operation.definition.raw.get("operationId", operation.label))


def _rpc_name(operation: Any) -> tuple[str, str]:
    """("InvoiceService", "GetInvoice") from "InvoiceService_GetInvoice_1"."""
    service, rpc, *_ = _operation_id(operation).split("_")
    return service, rpc


def _implemented(operation: Any) -> bool:
    service, rpc = _rpc_name(operation)
    return service in IMPLEMENTED_SERVICES and rpc not in PENDING_RPCS


def _strategies(operation: Any, seeds: Seeds) -> list[tuple[SearchStrategy[Any], int]]:
    """The schema's own cases, plus cases with real data for the served operations."""
    strategies = [(operation.as_strategy(), MAX_EXAMPLES)]
    if not _implemented(operation):
        return strategies
    _, rpc = _rpc_name(operation)
    fixed: dict[str, Any] = {}
    path_names = [p.name for p in operation.path_parameters]
    if path_names and _operation_id(operation) in seeds.ids:
        fixed["path_parameters"] = dict.fromkeys(path_names, seeds.ids[_operation_id(operation)])
    if rpc in seeds.bodies:
        fixed["body"] = seeds.bodies[rpc]
    if fixed:
        strategies.append((operation.as_strategy(**fixed), SEEDED_EXAMPLES))
    return strategies


def _fuzz_operation(
    operation: Any,
    seeds: Seeds,
    base_url: str,
    headers: dict[str, str],
    session: requests.Session,
) -> Outcome:
    implemented = _implemented(operation)
    checks = [response_schema_conformance, status_code_conformance]
    if implemented:
        checks.insert(0, not_a_server_error)
    outcome = Outcome()

    def check(case: schemathesis.Case) -> None:
        outcome.cases += 1
        # Copies: the transport adds its own headers to the dict it is given.
        response = case.call(base_url=base_url, headers=dict(headers), session=session, timeout=20)
        outcome.statuses.add(response.status_code)
        if not implemented:
            # UNIMPLEMENTED by design: 501 is the answer, after auth and transcoding (4xx).
            assert response.status_code < 500 or response.status_code == 501, (
                f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
            )
        case.validate_response(response, checks=checks, headers=dict(headers))

    for strategy, examples in _strategies(operation, seeds):
        run = hypothesis.settings(
            max_examples=examples,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            print_blob=True,
        )(hypothesis.given(case=strategy)(check))
        run()
    return outcome


def _fuzz_all(
    schema: Any, seeds: Seeds, base_url: str, headers: dict[str, str]
) -> tuple[list[str], dict[str, Outcome]]:
    """Every operation, each failure collected (one operation failing does not hide another)."""
    failures: list[str] = []
    seen: dict[str, Outcome] = {}
    with requests.Session() as session:
        for result in schema.get_all_operations():
            if not isinstance(result, Ok):
                error = result.err()
                failures.append(f"--- cannot load {error.method} {error.path}: {error!r}")
                continue
            operation = result.ok()
            name = f"{operation.method.upper()} {operation.path} ({_operation_id(operation)})"
            try:
                seen[name] = _fuzz_operation(operation, seeds, base_url, headers, session)
            except Exception as exc:  # a check failure, or a Hypothesis error: report it all
                text = "".join(traceback.format_exception_only(type(exc), exc))
                failures.append(f"--- {name}\n{text}")
    return failures, seen


async def _document(base_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


# The state an invoice must be in for the rpc to succeed on it.
_SEED_STATE = {
    "GetInvoice": "draft",
    "UpdateInvoice": "draft",
    "DeleteInvoice": "draft",
    "IssueInvoice": "draft",
    "VoidInvoice": "issued",
    "UndeleteInvoice": "deleted",
    "PayInvoice": "issued",
    "ListInvoiceDeliveries": "issued",
    "GetInvoiceDocument": "draft",
}


@dataclass
class _Maker:
    """Real rows of the token's tenant, over gRPC."""

    invoices: invoices_pb2_grpc.InvoiceServiceStub
    allocations: allocations_pb2_grpc.AllocationServiceStub
    md: tuple[tuple[str, str], ...]

    async def invoice(self, state: str) -> str:
        request = pb.CreateInvoiceRequest(invoice=sample_invoice(tags=["fuzz"]))
        invoice_id: str = (await self.invoices.CreateInvoice(request, metadata=self.md)).id
        if state == "issued":
            await self.invoices.IssueInvoice(
                pb.IssueInvoiceRequest(id=invoice_id), metadata=self.md
            )
        elif state == "deleted":
            await self.invoices.DeleteInvoice(
                pb.DeleteInvoiceRequest(id=invoice_id), metadata=self.md
            )
        return invoice_id

    async def with_project(self) -> str:
        """A draft an aggregation can take (children share a project)."""
        invoice = sample_invoice(tags=["fuzz"], project_id="7d1f0e4a-1111-4a8e-9a51-2f7d4d2c1e11")
        request = pb.CreateInvoiceRequest(invoice=invoice)
        return str((await self.invoices.CreateInvoice(request, metadata=self.md)).id)

    async def parent(self) -> str:
        children = [await self.with_project() for _ in range(2)]
        request = pb.AggregateInvoicesRequest(child_ids=children)
        return str((await self.invoices.AggregateInvoices(request, metadata=self.md)).id)

    async def transaction(self) -> str:
        transaction = json_format.ParseDict(VALID_TRANSACTION, apb.Transaction())
        request = apb.CreateTransactionRequest(transaction=transaction)
        created = await self.allocations.CreateTransaction(request, metadata=self.md)
        return str(created.id)

    async def rate(self) -> str:
        rate = json_format.ParseDict({**VALID_RATE, "source": "seed"}, apb.ExchangeRate())
        request = apb.CreateExchangeRateRequest(exchange_rate=rate)
        created = await self.allocations.CreateExchangeRate(request, metadata=self.md)
        return str(created.id)

    async def allocation_body(self) -> dict[str, Any]:
        """1.00 EUR of a new payment for a new issued invoice (1440.00 EUR)."""
        invoice_id, transaction_id = await self.invoice("issued"), await self.transaction()
        return {"invoice_id": invoice_id, "transaction_id": transaction_id, "amount": "1.00"}

    async def allocation(self) -> str:
        allocation = json_format.ParseDict(await self.allocation_body(), apb.Allocation())
        request = apb.CreateAllocationRequest(allocation=allocation)
        created = await self.allocations.CreateAllocation(request, metadata=self.md)
        return str(created.id)


async def _seed(schema: Any, make: _Maker) -> Seeds:
    """A real row of the token's tenant per id-taking operation, and the valid bodies."""
    seeds = Seeds()
    seeds.bodies["CreateAllocation"] = await make.allocation_body()
    seeds.bodies["AggregateInvoices"] = {"child_ids": [await make.with_project() for _ in range(2)]}
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            continue  # reported by _fuzz_all
        operation = result.ok()
        service, rpc = _rpc_name(operation)
        if service not in IMPLEMENTED_SERVICES or not operation.path_parameters:
            continue
        if rpc in _SEED_STATE:
            row = await make.invoice(_SEED_STATE[rpc])
        elif rpc in ("GetTransaction", "DeleteTransaction"):
            row = await make.transaction()
        elif rpc == "ReleaseAggregation":
            row = await make.parent()
        elif rpc == "GetExchangeRate":
            row = await make.rate()
        elif rpc in ("GetAllocation", "DeleteAllocation"):
            row = await make.allocation()
        else:
            raise AssertionError(f"no seed row for {_operation_id(operation)}: add one")
        seeds.ids[_operation_id(operation)] = row
    return seeds


async def test_gateway_conforms_to_its_openapi(
    rest_base_url: str,
    tokens: Tokens,
    invoices: invoices_pb2_grpc.InvoiceServiceStub,
    allocations: allocations_pb2_grpc.AllocationServiceStub,
) -> None:
    base_url = rest_base_url  # the in-process and the standalone gateway
    schema = schemathesis.openapi.from_dict(await _document(base_url))
    tenant = uuid.uuid4()
    headers = {"Authorization": f"Bearer {tokens.token(tenant)}"}
    seeds = await _seed(schema, _Maker(invoices, allocations, tokens.md(tenant)))

    started = time.monotonic()
    failures, seen = await asyncio.to_thread(_fuzz_all, schema, seeds, base_url, headers)
    elapsed = time.monotonic() - started

    print(*(f"{name}: {o.cases} cases, {sorted(o.statuses)}" for name, o in seen.items()), sep="\n")
    assert not failures, "\n".join(failures)
    print(f"schemathesis: {elapsed:.1f} s")  # speed belongs to bench/, not to assertions
    # Every operation of the document ran ...
    operations = sum(len(item) for item in schema.raw_schema["paths"].values())
    assert len(seen) == operations
    assert all(outcome.cases >= 1 for outcome in seen.values())
    # ... and every served one answered 2xx at least once, so its success schema was checked.
    served = [f"({service}_" for service in IMPLEMENTED_SERVICES]
    for name, outcome in seen.items():
        if any(prefix in name for prefix in served) and not any(
            f"_{rpc}" in name for rpc in PENDING_RPCS
        ):
            assert any(200 <= status < 300 for status in outcome.statuses), (name, outcome)
