"""Outbound delivery (provider `webhook`): issued invoices are POSTed to the tenant's
endpoint, signed (Standard Webhooks) with its secret and sent with its API key, retried
with backoff until a limit, every attempt visible; a 2xx records OUTPUT provenance. The
endpoint is a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import os
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from invoicing.v1 import connections_pb2 as cpb
from invoicing.v1 import connections_pb2_grpc, invoices_pb2_grpc
from invoicing.v1 import invoices_pb2 as ipb

from sandbox.yooz import sign
from service import app
from service.invoices.module import MODULE as INVOICES
from service.kit import config, ids
from service.worker.runner import Runner
from tests.conftest import Database, Tokens, sample_invoice

MAX_ATTEMPTS = 3


class Endpoint:
    """Records what it receives; answers `statuses` in turn, then 204."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                endpoint.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = endpoint.statuses.pop(0) if endpoint.statuses else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/invoices"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    served = Endpoint()
    yield served
    served.server.shutdown()


@pytest.fixture(scope="module")
async def routed(data_dir: Path, database: Database) -> AsyncIterator[app.Running]:
    settings = config.load(
        {
            "DATA_DIR": str(data_dir),
            "GRPC_PORT": "0",
            "GATEWAY_PORT": "0",
            "LOG_LEVEL": "WARNING",
            "WORKER_ENABLED": "false",
            "WEBHOOK_ALLOW_LOOPBACK_HTTP": "true",
            "DELIVERY_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        }
    )
    server = await app.start(settings, database.app_url)
    yield server
    await app.stop(server, grace=1)


class Tenant:
    def __init__(self, channel: grpc.aio.Channel, tokens: Tokens) -> None:
        self.tenant = uuid.uuid4()
        self.md = tokens.md(self.tenant)
        self.connections = connections_pb2_grpc.ConnectionServiceStub(channel)
        self.invoices = invoices_pb2_grpc.InvoiceServiceStub(channel)
        self.secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        self.api_key = f"out_{uuid.uuid4().hex}"

    async def route_to(self, url: str) -> cpb.Connection:
        return await self.connections.CreateConnection(
            cpb.CreateConnectionRequest(
                provider="webhook",
                api_key=self.api_key,
                webhook_secret=self.secret,
                endpoint_url=url,
            ),
            metadata=self.md,
        )

    async def issue(self) -> ipb.Invoice:
        draft = await self.invoices.CreateInvoice(
            ipb.CreateInvoiceRequest(invoice=sample_invoice()), metadata=self.md
        )
        return await self.invoices.IssueInvoice(
            ipb.IssueInvoiceRequest(id=draft.id), metadata=self.md
        )

    async def deliveries(self, invoice_id: str) -> list[ipb.InvoiceDelivery]:
        listed = await self.invoices.ListInvoiceDeliveries(
            ipb.ListInvoiceDeliveriesRequest(invoice_id=invoice_id), metadata=self.md
        )
        return list(listed.data)


@pytest.fixture
async def tenant(routed: app.Running, tokens: Tokens) -> AsyncIterator[Tenant]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{routed.port}") as channel:
        yield Tenant(channel, tokens)


async def _run(routed: app.Running, admin: asyncpg.Connection, invoice_id: str) -> None:
    """Make the invoice's delivery item and attempts due now, and run the worker once."""
    key = str(ids.decode_id(invoice_id, "inv", "id"))
    await admin.execute(
        "UPDATE work_items SET due_at = now() WHERE task = 'invoices.deliver' AND key = $1", key
    )
    await admin.execute(
        "UPDATE invoice_deliveries SET next_attempt_at = now() WHERE invoice_id = $1"
        " AND status = 'pending'",
        uuid.UUID(key),
    )
    runner = Runner(routed.runtime, list(INVOICES.tasks), owner="deliver", batch=100)
    await runner.run_once()


async def test_an_issued_invoice_is_delivered_signed_once_and_recorded(
    routed: app.Running, tenant: Tenant, endpoint: Endpoint, admin: asyncpg.Connection
) -> None:
    connection = await tenant.route_to(endpoint.url)
    invoice = await tenant.issue()
    before = len(endpoint.received)
    await _run(routed, admin, invoice.id)
    headers, body = endpoint.received[before]
    event = json.loads(body)
    assert event["type"] == "invoice.issued"
    assert event["data"]["id"] == invoice.id and event["data"]["number"] == invoice.number
    assert event["data"]["status"] == "INVOICE_STATUS_ISSUED"
    assert headers["authorization"] == f"Bearer {tenant.api_key}"
    expected = sign(tenant.secret, headers["webhook-id"], int(headers["webhook-timestamp"]), body)
    assert headers["webhook-signature"] == expected
    [delivery] = await tenant.deliveries(invoice.id)
    assert delivery.status == ipb.DELIVERY_STATUS_DELIVERED and delivery.attempts == 1
    assert delivery.id == headers["webhook-id"] and delivery.last_status_code == 204
    assert delivery.connection_id == connection.id
    assert (
        await admin.fetchval(
            "SELECT count(*) FROM invoice_provenances WHERE invoice_id = $1 AND connection_id = $2"
            " AND direction = 'output'",
            ids.decode_id(invoice.id, "inv", "id"),
            ids.decode_id(connection.id, "con", "id"),
        )
        == 1
    )
    # Finished: the work item is gone, and another run sends nothing again.
    assert (
        await admin.fetchval(
            "SELECT count(*) FROM work_items WHERE task = 'invoices.deliver' AND key = $1",
            str(ids.decode_id(invoice.id, "inv", "id")),
        )
        == 0
    )
    await _run(routed, admin, invoice.id)
    assert len(endpoint.received) == before + 1


async def test_failures_are_retried_with_backoff_and_every_attempt_shows(
    routed: app.Running, tenant: Tenant, endpoint: Endpoint, admin: asyncpg.Connection
) -> None:
    await tenant.route_to(endpoint.url)
    invoice = await tenant.issue()
    endpoint.statuses += [500, 503]
    await _run(routed, admin, invoice.id)
    [first] = await tenant.deliveries(invoice.id)
    assert first.status == ipb.DELIVERY_STATUS_PENDING and first.attempts == 1
    assert first.last_status_code == 500 and first.last_error == "the endpoint answered 500"
    wait = first.next_attempt_at.seconds - first.created_at.seconds
    assert 4 <= wait <= 11  # 10 s ceiling, jittered over its upper half
    await _run(routed, admin, invoice.id)
    await _run(routed, admin, invoice.id)
    [done] = await tenant.deliveries(invoice.id)
    assert done.status == ipb.DELIVERY_STATUS_DELIVERED and done.attempts == 3
    # The same webhook-id on every attempt: the endpoint can deduplicate.
    ids_seen = {h["webhook-id"] for h, _ in endpoint.received[-3:]}
    assert ids_seen == {done.id}


async def test_an_endpoint_that_keeps_failing_is_given_up_after_the_limit(
    routed: app.Running, tenant: Tenant, endpoint: Endpoint, admin: asyncpg.Connection
) -> None:
    await tenant.route_to(endpoint.url)
    invoice = await tenant.issue()
    endpoint.statuses += [500] * MAX_ATTEMPTS
    for _ in range(MAX_ATTEMPTS + 2):
        await _run(routed, admin, invoice.id)
    [failed] = await tenant.deliveries(invoice.id)
    assert failed.status == ipb.DELIVERY_STATUS_FAILED and failed.attempts == MAX_ATTEMPTS
    assert not failed.next_attempt_at.seconds


async def test_unresolvable_or_private_hosts_are_not_called(
    routed: app.Running, tenant: Tenant, admin: asyncpg.Connection
) -> None:
    await tenant.route_to("https://hooks.invalid/invoices")
    invoice = await tenant.issue()
    await _run(routed, admin, invoice.id)
    [pending] = await tenant.deliveries(invoice.id)
    assert pending.status == ipb.DELIVERY_STATUS_PENDING
    assert pending.last_error == "the endpoint's host does not resolve"


async def test_without_an_outbound_connection_nothing_is_queued(
    tenant: Tenant, admin: asyncpg.Connection
) -> None:
    invoice = await tenant.issue()
    assert await tenant.deliveries(invoice.id) == []
    assert (
        await admin.fetchval(
            "SELECT count(*) FROM work_items WHERE task = 'invoices.deliver' AND key = $1",
            str(ids.decode_id(invoice.id, "inv", "id")),
        )
        == 0
    )
