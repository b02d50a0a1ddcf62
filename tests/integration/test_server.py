"""The gRPC server as a process boundary: reflection (also through the grpcurl binary),
UNIMPLEMENTED for pending services, port binding, graceful stop, INTERNAL mapping and
the x-request-id round trip."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import shutil
import socket
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf.descriptor_pool import DescriptorPool
from google.rpc import code_pb2, error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from invoicing.v1 import (
    allocations_pb2,
    connections_pb2,
    connections_pb2_grpc,
    invoices_pb2,
    invoices_pb2_grpc,
    provenance_pb2,
    records_pb2,
)

from service import app
from service.edge import grpc_server, status
from service.invoices import service as invoice_service
from service.kit import config, ids
from tests.conftest import Database, Tokens, error_info, sample_invoice

INVOICING_SERVICES = {
    "invoicing.v1.InvoiceService": invoices_pb2,
    "invoicing.v1.AllocationService": allocations_pb2,
    "invoicing.v1.ProvenanceService": provenance_pb2,
    "invoicing.v1.ConnectionService": connections_pb2,
    "invoicing.v1.RecordsService": records_pb2,
}
PUBLIC_SERVICES = {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}


def _grpcurl() -> str:
    path = shutil.which("grpcurl", path=str(Path(sys.executable).parent))
    assert path is not None, "grpcurl not installed in the virtualenv"
    return path


async def _grpcurl_run(*args: str, limit_s: float = 20) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        _grpcurl(),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


# ---- reflection -------------------------------------------------------------------------


def _reflect(target: str) -> tuple[set[str], dict[str, list[str]]]:
    with grpc.insecure_channel(target) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        pool = DescriptorPool(database)
        methods = {
            name: [m.name for m in pool.FindServiceByName(name).methods]
            for name in (*INVOICING_SERVICES, *PUBLIC_SERVICES)
        }
    return services, methods


async def test_reflection_lists_all_services_without_token(target: str) -> None:
    services, methods = await asyncio.to_thread(_reflect, target)
    assert set(INVOICING_SERVICES) | PUBLIC_SERVICES <= services
    for name, module in INVOICING_SERVICES.items():
        descriptor = module.DESCRIPTOR.services_by_name[name.rsplit(".", 1)[1]]
        assert methods[name] == [m.name for m in descriptor.methods], name
    assert "Check" in methods["grpc.health.v1.Health"]


# ---- grpcurl smoke ------------------------------------------------------------------------


async def test_grpcurl_list_and_describe_through_reflection(target: str) -> None:
    code, out, err = await _grpcurl_run("-plaintext", target, "list")
    assert code == 0, err
    listed = set(out.split())
    assert set(INVOICING_SERVICES) | PUBLIC_SERVICES <= listed

    code, out, err = await _grpcurl_run(
        "-plaintext", target, "describe", "invoicing.v1.InvoiceService"
    )
    assert code == 0, err
    assert "invoicing.v1.InvoiceService is a service" in out
    for rpc in ("CreateInvoice", "GetInvoice", "IssueInvoice", "ListInvoices"):
        assert f"rpc {rpc}" in out


async def test_grpcurl_describe_shows_the_proto_comments(target: str) -> None:
    code, out, err = await _grpcurl_run(
        "-plaintext", target, "describe", "invoicing.v1.InvoiceService.PayInvoice"
    )
    assert code == 0, err
    assert "Records a payment" in out and "Errors:" in out
    code, out, err = await _grpcurl_run(
        "-plaintext", target, "describe", "invoicing.v1.Invoice.amount_due"
    )
    assert code == 0, err
    assert "//" in out  # the field's comment
    code, out, err = await _grpcurl_run("-plaintext", target, "describe", "grpc.health.v1.Health")
    assert code == 0, err


async def test_grpcurl_create_and_get_invoice_as_json(
    target: str, tokens: Tokens, tenant: uuid.UUID
) -> None:
    auth_header = f"authorization: Bearer {tokens.token(tenant)}"
    body = {
        "invoice": {
            "type": "INVOICE_TYPE_CUSTOMER",
            "currency": "EUR",
            "counterparty_id": "0b9c4a52-8d0e-4a8e-9a51-2f7d4d2c1e11",
            "line_items": [
                {
                    "description": "Consulting",
                    "quantity": "10",
                    "unit_price": "120.00",
                    "tax_rate": "0.20",
                }
            ],
        },
        "request_id": f"grpcurl-{uuid.uuid4().hex}",
    }
    code, out, err = await _grpcurl_run(
        "-plaintext",
        "-H",
        auth_header,
        "-d",
        json.dumps(body),
        target,
        "invoicing.v1.InvoiceService/CreateInvoice",
    )
    assert code == 0, err
    created = json.loads(out)
    assert created["id"].startswith("inv_")
    assert created["tenant_id"] == str(tenant)  # proto names, as DESIGN.md section 4 says
    assert created["total"] == "1440.00"
    assert created["status"] == "INVOICE_STATUS_DRAFT"

    code, out, err = await _grpcurl_run(
        "-plaintext",
        "-H",
        auth_header,
        "-d",
        json.dumps({"id": created["id"]}),
        target,
        "invoicing.v1.InvoiceService/GetInvoice",
    )
    assert code == 0, err
    got = json.loads(out)
    assert got["id"] == created["id"]
    assert got["total"] == "1440.00"
    assert got["subtotal"] == "1200.00"


async def test_grpcurl_without_token_reports_unauthenticated(target: str) -> None:
    missing = ids.new_id(ids.PREFIXES["invoice"])[1]
    code, out, err = await _grpcurl_run(
        "-plaintext",
        "-d",
        json.dumps({"id": missing}),
        target,
        "invoicing.v1.InvoiceService/GetInvoice",
    )
    assert code != 0
    assert "Unauthenticated" in err + out


# ---- pending services ---------------------------------------------------------------------


async def test_pending_service_without_token_is_unauthenticated(
    channel: grpc.aio.Channel,
) -> None:
    stub = connections_pb2_grpc.ConnectionServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListConnections(connections_pb2.ListConnectionsRequest())
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


# ---- binding ------------------------------------------------------------------------------


def test_server_options_disable_reuseport(settings: config.Settings) -> None:
    assert ("grpc.so_reuseport", 0) in grpc_server.server_options(settings)


async def test_binding_port_in_use_by_server_raises_oserror(
    settings: config.Settings, database: Database, server: app.Running
) -> None:
    taken = dataclasses.replace(settings, grpc_port=server.port)
    with pytest.raises(OSError):
        running = await app.start(taken, database.app_url)
        await app.stop(running, grace=0)


async def test_binding_port_in_use_by_socket_raises_oserror(
    settings: config.Settings, database: Database
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        taken = dataclasses.replace(settings, grpc_port=port)
        with pytest.raises(OSError):
            running = await app.start(taken, database.app_url)
            await app.stop(running, grace=0)


# ---- graceful stop ------------------------------------------------------------------------


async def _wait_for_lock_waiter(database: Database, limit_s: float = 5.0) -> None:
    watcher = await asyncpg.connect(database.admin_url)
    try:
        deadline = asyncio.get_running_loop().time() + limit_s
        while asyncio.get_running_loop().time() < deadline:
            waiting = await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = 'invoicing' AND wait_event_type = 'Lock'"
            )
            if waiting:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the in-flight RPC never waited on the row lock")
    finally:
        await watcher.close()


async def _health(target: str) -> Any:
    async with grpc.aio.insecure_channel(target) as ch:
        return await health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(), timeout=2
        )


async def test_graceful_stop_lets_in_flight_rpc_finish(
    settings: config.Settings,
    database: Database,
    md: Any,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
) -> None:
    running = await app.start(settings, database.app_url)
    stopped = False
    target = f"127.0.0.1:{running.port}"
    try:
        async with grpc.aio.insecure_channel(target) as ch:
            stub = invoices_pb2_grpc.InvoiceServiceStub(ch)
            draft = await stub.CreateInvoice(
                invoices_pb2.CreateInvoiceRequest(invoice=sample_invoice()), metadata=md
            )
            row_id = ids.decode_id(draft.id, ids.PREFIXES["invoice"], "id")
            lock = admin.transaction()
            await lock.start()
            try:
                await admin.execute(
                    "SELECT 1 FROM invoices WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                    tenant,
                    row_id,
                )
                in_flight = asyncio.ensure_future(
                    stub.IssueInvoice(invoices_pb2.IssueInvoiceRequest(id=draft.id), metadata=md)
                )
                await _wait_for_lock_waiter(database)
                stopping = asyncio.ensure_future(app.stop(running, grace=2))
                stopped = True
                await asyncio.sleep(0.3)
                assert not in_flight.done()
                assert not stopping.done()
                # While draining, health says NOT_SERVING (or new calls are refused).
                for name in ("", "invoicing.v1.InvoiceService"):
                    served = await running.health.Check(
                        health_pb2.HealthCheckRequest(service=name), None
                    )
                    assert served.status == health_pb2.HealthCheckResponse.NOT_SERVING
                with contextlib.suppress(grpc.aio.AioRpcError):
                    status = (await _health(target)).status
                    assert status == health_pb2.HealthCheckResponse.NOT_SERVING
            finally:
                await lock.rollback()
            issued = await in_flight
            await stopping
    finally:
        if not stopped:
            await app.stop(running, grace=0)

    assert issued.status == invoices_pb2.INVOICE_STATUS_ISSUED
    assert issued.number.startswith("INV-")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _health(target)
    assert caught.value.code() in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    )


async def test_graceful_stop_sets_health_not_serving(
    settings: config.Settings, database: Database
) -> None:
    running = await app.start(settings, database.app_url)
    try:
        assert (await _health(f"127.0.0.1:{running.port}")).status == (
            health_pb2.HealthCheckResponse.SERVING
        )
    finally:
        await app.stop(running, grace=0)
    with pytest.raises(grpc.aio.AioRpcError):
        await _health(f"127.0.0.1:{running.port}")


# ---- INTERNAL ---------------------------------------------------------------------------


def test_unexpected_exception_maps_to_generic_internal() -> None:
    mapped = status.to_status(RuntimeError("secret-xyz"), "t1", {})
    assert mapped.code == code_pb2.INTERNAL
    assert "secret-xyz" not in mapped.message
    assert "t1" in mapped.message
    assert b"secret-xyz" not in mapped.SerializeToString()
    infos = []
    for detail in mapped.details:
        assert detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)
        info = error_details_pb2.ErrorInfo()
        detail.Unpack(info)
        infos.append(info)
    assert len(infos) == 1
    assert infos[0].reason == "INTERNAL"
    assert infos[0].metadata["traceId"] == "t1"


async def test_unexpected_exception_over_wire_is_internal_without_secret(
    invoices: Any, tokens: Tokens, tenant: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = tokens.token(tenant)

    async def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"secret-xyz password=hunter2 token={token}")

    monkeypatch.setattr(invoice_service, "get_invoice", boom)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await invoices.GetInvoice(
            invoices_pb2.GetInvoiceRequest(id=ids.new_id(ids.PREFIXES["invoice"])[1]),
            metadata=(("authorization", f"Bearer {token}"), ("x-request-id", "trace-internal-1")),
        )
    err = caught.value
    assert err.code() == grpc.StatusCode.INTERNAL
    for secret in ("secret-xyz", "hunter2", token):
        assert secret not in (err.details() or "")
    assert "trace-internal-1" in (err.details() or "")
    info = error_info(err)
    assert info.reason == "INTERNAL"
    assert info.metadata["traceId"] == "trace-internal-1"


# ---- x-request-id ------------------------------------------------------------------------


async def test_request_id_comes_back_in_trailers_on_success(invoices: Any, md: Any) -> None:
    call = invoices.CreateInvoice(
        invoices_pb2.CreateInvoiceRequest(invoice=sample_invoice()),
        metadata=(*md, ("x-request-id", "req-abc.123")),
    )
    await call
    trailers = dict(await call.trailing_metadata())
    assert trailers.get("x-request-id") == "req-abc.123"


async def test_request_id_comes_back_in_trailers_on_error(invoices: Any, md: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await invoices.GetInvoice(
            invoices_pb2.GetInvoiceRequest(id=ids.new_id(ids.PREFIXES["invoice"])[1]),
            metadata=(*md, ("x-request-id", "req-err-42")),
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    trailers = dict(caught.value.trailing_metadata() or ())
    assert trailers.get("x-request-id") == "req-err-42"


async def test_request_id_on_auth_failure_comes_back_in_trailers(invoices: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await invoices.GetInvoice(
            invoices_pb2.GetInvoiceRequest(id=ids.new_id(ids.PREFIXES["invoice"])[1]),
            metadata=(("x-request-id", "req-unauth-7"),),
        )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert dict(caught.value.trailing_metadata() or ()).get("x-request-id") == "req-unauth-7"


async def test_malformed_request_id_is_replaced_by_generated_trace_id(
    invoices: Any, md: Any
) -> None:
    call = invoices.CreateInvoice(
        invoices_pb2.CreateInvoiceRequest(invoice=sample_invoice()),
        metadata=(*md, ("x-request-id", "bad id with spaces " + "x" * 80)),
    )
    await call
    trace = dict(await call.trailing_metadata()).get("x-request-id")
    assert isinstance(trace, str)
    assert " " not in trace
    assert 1 <= len(trace) <= 64
