"""Metrics, W3C trace context, OpenTelemetry spans and the REST access log."""

from __future__ import annotations

import logging
import re
import uuid

import grpc
import httpx
import pytest
from invoicing.v1 import invoices_pb2 as ipb
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from service import app
from service.edge import tracing
from service.kit import config
from service.kit.idempotency import PURGE_TASK
from tests.conftest import Tokens, sample_invoice
from tests.factories import Invoices, Metadata

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition text (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def _metrics(server: app.Running) -> str:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.gateway_port}") as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_metrics_count_rpcs_by_method_code_and_transport(
    server: app.Running, invoices: Invoices, md: Metadata, tokens: Tokens, tenant: uuid.UUID
) -> None:
    method = "/invoicing.v1.InvoiceService/GetInvoice"
    before = await _metrics(server)
    created = await invoices.CreateInvoice(
        ipb.CreateInvoiceRequest(invoice=sample_invoice()), metadata=md
    )
    await invoices.GetInvoice(ipb.GetInvoiceRequest(id=created.id), metadata=md)
    with pytest.raises(grpc.aio.AioRpcError):
        await invoices.GetInvoice(ipb.GetInvoiceRequest(id="inv_x"), metadata=md)
    headers = {"Authorization": f"Bearer {tokens.token(tenant)}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.gateway_port}") as http:
        await http.get(f"/v1/invoices/{created.id}", headers=headers)
    after = await _metrics(server)

    def delta(name: str, **labels: str) -> float:
        return _sample(after, name, **labels) - _sample(before, name, **labels)

    rpc = "invoicing_rpc_requests_total"
    assert delta(rpc, method=method, code="OK", transport="grpc") == 1
    assert delta(rpc, method=method, code="INVALID_ARGUMENT", transport="grpc") == 1
    assert delta(rpc, method=method, code="OK", transport="rest") == 1
    assert delta("invoicing_rpc_duration_seconds_count", method=method, transport="grpc") == 2
    http_total = "invoicing_http_requests_total"
    assert delta(http_total, method="GET", route="/v1/invoices/{id}", status="200") == 1
    assert _sample(after, "invoicing_db_pool_max_connections") == 10
    assert _sample(after, "invoicing_ready") == 1


async def test_metrics_count_task_runs(
    server: app.Running, settings: config.Settings, admin: object
) -> None:
    runner = app.build_runner(server.runtime, settings, server.metrics)
    tenant = uuid.uuid4()
    await admin.execute(  # type: ignore[attr-defined]
        "INSERT INTO work_items (tenant_id, task, key, due_at) VALUES ($1, $2, '', now())",
        tenant,
        PURGE_TASK,
    )
    before = _sample(await _metrics(server), "invoicing_task_runs_total", task=PURGE_TASK)
    for _ in range(20):
        if not await runner.run_once():
            break
    after = await _metrics(server)
    assert _sample(after, "invoicing_task_runs_total", task=PURGE_TASK, outcome="ok") > before
    assert "invoicing_task_duration_seconds_bucket" in after


async def test_traceparent_names_the_trace_over_grpc(invoices: Invoices, md: Metadata) -> None:
    call = invoices.ListInvoices(
        ipb.ListInvoicesRequest(), metadata=(*md, ("traceparent", TRACEPARENT))
    )
    await call
    trailing = dict(await call.trailing_metadata())
    assert trailing["x-request-id"] == TRACE
    answer = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01", trailing["traceparent"])
    assert answer is not None and answer.group(1) == TRACE and answer.group(2) != PARENT


@pytest.mark.parametrize("given", ["00-" + "0" * 32 + "-" + PARENT + "-01", "garbage", "01-x"])
async def test_an_invalid_traceparent_starts_a_new_trace(
    invoices: Invoices, md: Metadata, given: str
) -> None:
    call = invoices.ListInvoices(ipb.ListInvoicesRequest(), metadata=(*md, ("traceparent", given)))
    await call
    trailing = dict(await call.trailing_metadata())
    assert re.fullmatch(r"[0-9a-f]{32}", trailing["x-request-id"])
    assert trailing["traceparent"].split("-")[1] != "0" * 32


async def test_traceparent_names_the_trace_over_rest_in_both_modes(
    rest_base_url: str, tokens: Tokens, tenant: uuid.UUID
) -> None:
    headers = {"Authorization": f"Bearer {tokens.token(tenant)}", "traceparent": TRACEPARENT}
    async with httpx.AsyncClient(base_url=rest_base_url) as http:
        ok = await http.get("/v1/invoices", headers=headers)
        missing = await http.get("/v1/invoices/inv_01JD6N8Q6Z7T3M3Y5C4V8R2K1P", headers=headers)
    assert ok.headers["x-request-id"] == TRACE
    assert ok.headers["traceparent"].split("-")[1] == TRACE
    assert missing.json()["meta"]["trace_id"] == TRACE


async def test_opentelemetry_spans_continue_the_callers_trace(
    invoices: Invoices, md: Metadata
) -> None:
    exporter = InMemorySpanExporter()
    tracing.configure(exporter)
    try:
        call = invoices.ListInvoices(
            ipb.ListInvoicesRequest(), metadata=(*md, ("traceparent", TRACEPARENT))
        )
        await call
        trailing = dict(await call.trailing_metadata())
        with pytest.raises(grpc.aio.AioRpcError):
            await invoices.GetInvoice(
                ipb.GetInvoiceRequest(id="inv_x"), metadata=(*md, ("traceparent", TRACEPARENT))
            )
    finally:
        tracing.disable()
    spans = exporter.get_finished_spans()
    listed = next(s for s in spans if s.name == "invoicing.v1.InvoiceService/ListInvoices")
    assert f"{listed.context.trace_id:032x}" == TRACE
    assert listed.parent is not None and f"{listed.parent.span_id:016x}" == PARENT
    assert trailing["traceparent"].split("-")[2] == f"{listed.context.span_id:016x}"
    failed = next(s for s in spans if s.name == "invoicing.v1.InvoiceService/GetInvoice")
    assert failed.attributes is not None
    assert failed.attributes["rpc.grpc.status_code"] == "INVALID_ARGUMENT"


async def test_each_rest_request_logs_one_access_line(
    server: app.Running, tokens: Tokens, tenant: uuid.UUID, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"Authorization": f"Bearer {tokens.token(tenant)}", "x-request-id": "access-1"}
    with caplog.at_level(logging.INFO, logger="service.gateway.access"):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.gateway_port}") as http:
            await http.get("/v1/invoices/inv_01JD6N8Q6Z7T3M3Y5C4V8R2K1P", headers=headers)
            await http.get("/nowhere", headers=headers)
    lines = [r.fields for r in caplog.records if r.name == "service.gateway.access"]  # type: ignore[attr-defined]
    assert (
        lines[0].items() >= {"method": "GET", "route": "/v1/invoices/{id}", "status": 404}.items()
    )
    assert lines[0]["trace_id"] == "access-1" and lines[0]["duration_ms"] >= 0
    assert lines[1]["route"] == "unmatched" and lines[1]["status"] == 404


async def test_the_standalone_gateway_serves_health_and_metrics(
    standalone_gateway: object,
) -> None:
    port = standalone_gateway.port  # type: ignore[attr-defined]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        assert (await http.get("/healthz")).status_code == 200
        ready = await http.get("/readyz")
        metrics = await http.get("/metrics")
    assert ready.status_code == 200, ready.text
    assert "invoicing_http_requests_total" in metrics.text
