"""Schemathesis against the gateway's own /openapi.json: no 5xx, every response as documented.

How it runs, and why: the gateway and the gRPC server of the `server` fixture live on the
pytest-asyncio session event loop. Schemathesis (Hypothesis + `requests`) is synchronous, so
calling it from a plain sync test, or from an async test directly, would block that loop and
with it the very server it talks to. The async test below prepares real invoices over gRPC,
then hands the whole Hypothesis run to `asyncio.to_thread`: the worker thread sends real HTTP
requests to the in-process gateway while the session loop keeps serving them (and forwarding
them over gRPC to the real server). No second server or event loop is needed.

What is generated: for every operation, MAX_EXAMPLES cases from the schema alone (random ids
are mostly malformed, so these exercise the error paths); and for the InvoiceService
operations, SEEDED_EXAMPLES more with the path id of a real invoice of the token's tenant or,
for creates, a valid body, so that success responses are validated against the schema too.
Every request carries a valid bearer token.

Bounded: no shrinking, no example database, no Hypothesis deadline; the whole run is timed
and must stay well under a minute (it takes about 10 s).

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
from hypothesis import HealthCheck, Phase
from hypothesis.strategies import SearchStrategy
from invoicing.v1 import invoices_pb2 as pb
from invoicing.v1 import invoices_pb2_grpc
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from service import app
from tests.conftest import Tokens, sample_invoice

MAX_EXAMPLES = 10
SEEDED_EXAMPLES = 5
TIME_LIMIT_S = 60.0
IMPLEMENTED_SERVICE = "InvoiceService"
# Every InvoiceService rpc is served except PayInvoice (it comes with Allocations); the
# other services are contract-only and answer UNIMPLEMENTED (README, Status).
PENDING_RPCS = frozenset({"PayInvoice"})
VALID_INVOICE: dict[str, Any] = {
    "type": "INVOICE_TYPE_CUSTOMER",
    "currency": "EUR",
    "counterparty_id": "0b9c4a52-8d0e-4a8e-9a51-2f7d4d2c1e11",
    "tags": ["fuzz"],
    "line_items": [{"description": "x", "quantity": "2", "unit_price": "10.00"}],
}

pytestmark = pytest.mark.timeout(180)


@dataclass
class Outcome:
    cases: int = 0
    statuses: set[int] = field(default_factory=set)


def _operation_id(operation: Any) -> str:
    return str(operation.definition.raw.get("operationId", operation.label))


def _rpc_name(operation: Any) -> tuple[str, str]:
    """("InvoiceService", "GetInvoice") from "InvoiceService_GetInvoice_1"."""
    service, rpc, *_ = _operation_id(operation).split("_")
    return service, rpc


def _implemented(operation: Any) -> bool:
    service, rpc = _rpc_name(operation)
    return service == IMPLEMENTED_SERVICE and rpc not in PENDING_RPCS


def _strategies(operation: Any, seeds: dict[str, str]) -> list[tuple[SearchStrategy[Any], int]]:
    """The schema's own cases, plus cases with real data for the served operations."""
    strategies = [(operation.as_strategy(), MAX_EXAMPLES)]
    if not _implemented(operation):
        return strategies
    _, rpc = _rpc_name(operation)
    path_names = [p.name for p in operation.path_parameters]
    if path_names and _operation_id(operation) in seeds:
        real = dict.fromkeys(path_names, seeds[_operation_id(operation)])
        strategies.append((operation.as_strategy(path_parameters=real), SEEDED_EXAMPLES))
    if rpc == "CreateInvoice":
        strategies.append((operation.as_strategy(body=VALID_INVOICE), SEEDED_EXAMPLES))
    return strategies


def _fuzz_operation(
    operation: Any,
    seeds: dict[str, str],
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
    schema: Any, seeds: dict[str, str], base_url: str, headers: dict[str, str]
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
}


async def _seed(
    schema: Any,
    invoices: invoices_pb2_grpc.InvoiceServiceStub,
    md: tuple[tuple[str, str], ...],
) -> dict[str, str]:
    """A real invoice of the token's tenant per id-taking operation (operationId -> id)."""
    seeds: dict[str, str] = {}
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            continue  # reported by _fuzz_all
        operation = result.ok()
        service, rpc = _rpc_name(operation)
        if service != IMPLEMENTED_SERVICE or rpc not in _SEED_STATE:
            continue
        request = pb.CreateInvoiceRequest(invoice=sample_invoice(tags=["fuzz"]))
        invoice_id = (await invoices.CreateInvoice(request, metadata=md)).id
        if _SEED_STATE[rpc] == "issued":
            await invoices.IssueInvoice(pb.IssueInvoiceRequest(id=invoice_id), metadata=md)
        elif _SEED_STATE[rpc] == "deleted":
            await invoices.DeleteInvoice(pb.DeleteInvoiceRequest(id=invoice_id), metadata=md)
        seeds[_operation_id(operation)] = invoice_id
    return seeds


async def test_gateway_conforms_to_its_openapi(
    server: app.Running, tokens: Tokens, invoices: invoices_pb2_grpc.InvoiceServiceStub
) -> None:
    assert server.gateway_port, "the test settings start the REST gateway in-process"
    base_url = f"http://127.0.0.1:{server.gateway_port}"
    schema = schemathesis.openapi.from_dict(await _document(base_url))
    tenant = uuid.uuid4()
    headers = {"Authorization": f"Bearer {tokens.token(tenant)}"}
    seeds = await _seed(schema, invoices, tokens.md(tenant))

    started = time.monotonic()
    failures, seen = await asyncio.to_thread(_fuzz_all, schema, seeds, base_url, headers)
    elapsed = time.monotonic() - started

    print(*(f"{name}: {o.cases} cases, {sorted(o.statuses)}" for name, o in seen.items()), sep="\n")
    assert not failures, "\n".join(failures)
    assert elapsed < TIME_LIMIT_S, f"schemathesis took {elapsed:.1f} s"
    # Every operation of the document ran ...
    operations = sum(len(item) for item in schema.raw_schema["paths"].values())
    assert len(seen) == operations
    assert all(outcome.cases >= 1 for outcome in seen.values())
    # ... and every served one answered 2xx at least once, so its success schema was checked.
    for name, outcome in seen.items():
        if "InvoiceService_" in name and "PayInvoice" not in name:
            assert any(200 <= status < 300 for status in outcome.statuses), (name, outcome)
