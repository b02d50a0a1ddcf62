"""Webhooks from Yooz (PROVIDERS.md, Standard Webhooks) on the REST port: every rejection,
redeliveries and replays, secret rotation, the body cap, deletion stopping processing, and
the events becoming invoices through the worker."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import time
import uuid
from typing import Any

import asyncpg
import grpc
import httpx
import pytest
from invoicing.v1 import connections_pb2 as cpb
from invoicing.v1 import connections_pb2_grpc, invoices_pb2_grpc
from invoicing.v1 import invoices_pb2 as ipb

from sandbox.yooz import sample_document, webhook_headers
from service import app
from service.ingestion import service as ingestion
from service.ingestion.module import MODULE as INGESTION
from service.kit import ids
from service.worker.runner import Runner
from tests.conftest import Tokens

Md = tuple[tuple[str, str], ...]


def whsec() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


class Hooks:
    def __init__(self, server: app.Running, channel: grpc.aio.Channel, tokens: Tokens) -> None:
        self.server = server
        self.base = f"http://127.0.0.1:{server.gateway_port}"
        self.connections = connections_pb2_grpc.ConnectionServiceStub(channel)
        self.invoices = invoices_pb2_grpc.InvoiceServiceStub(channel)
        self.tokens = tokens

    async def connection(self, secret: str | None, **kwargs: Any) -> tuple[cpb.Connection, Md]:
        md = self.tokens.md(uuid.uuid4())
        created = await self.connections.CreateConnection(
            cpb.CreateConnectionRequest(
                provider="yooz", api_key="yz_k", webhook_secret=secret or "", **kwargs
            ),
            metadata=md,
        )
        return created, md

    async def post(
        self,
        connection_id: str,
        secret: str,
        event: dict[str, Any] | None = None,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        **sign: Any,
    ) -> httpx.Response:
        if body is None:
            body = json.dumps(
                event or {"type": "invoice.created", "data": sample_document(0)}
            ).encode()
        signed = webhook_headers(secret, body, **sign)
        async with httpx.AsyncClient(base_url=self.base) as http:
            return await http.post(
                f"/v1/invoice-connections/{connection_id}/webhooks",
                content=body,
                headers={**signed, **(headers or {})},
            )

    async def process(self) -> None:
        runner = Runner(
            self.server.runtime,
            [t for t in INGESTION.tasks if t.name == "ingestion.webhooks"],
            owner="hooks",
            batch=50,
        )
        for _ in range(10):
            if await runner.run_once() == 0:
                return

    async def invoices_of(self, md: Md) -> list[ipb.Invoice]:
        listed = await self.invoices.ListInvoices(
            ipb.ListInvoicesRequest(filter='external_provider = "yooz"', limit=50), metadata=md
        )
        return list(listed.data)


@pytest.fixture
def hooks(server: app.Running, channel: grpc.aio.Channel, tokens: Tokens) -> Hooks:
    return Hooks(server, channel, tokens)


async def test_a_signed_event_is_stored_then_becomes_an_invoice_once(
    hooks: Hooks, admin: asyncpg.Connection
) -> None:
    secret = whsec()
    connection, md = await hooks.connection(secret)
    assert connection.webhook_path == f"/v1/invoice-connections/{connection.id}/webhooks"
    first = await hooks.post(connection.id, secret, message_id="msg_1")
    assert first.status_code == 202 and first.json()["status"] == "received"
    again = await hooks.post(connection.id, secret, message_id="msg_1")  # redelivery
    assert again.status_code == 202 and again.json()["status"] == "duplicate"
    await hooks.process()
    invoices = await hooks.invoices_of(md)
    assert [i.external.id for i in invoices] == ["yz_doc_000000"]
    raw = ids.decode_id(connection.id, "con", "id")
    rows = await admin.fetch(
        "SELECT outcome, processed_at FROM webhook_events WHERE connection_id = $1", raw
    )
    assert [(r["outcome"], r["processed_at"] is not None) for r in rows] == [("created", True)]
    assert (
        await admin.fetchval(
            "SELECT count(*) FROM invoice_provenances WHERE connection_id = $1", raw
        )
        == 1
    )


async def test_one_delivery_posted_twenty_times_at_once_is_one_invoice(hooks: Hooks) -> None:
    secret = whsec()
    connection, md = await hooks.connection(secret)
    answers = await asyncio.gather(
        *(hooks.post(connection.id, secret, message_id="msg_same") for _ in range(20))
    )
    assert {a.status_code for a in answers} == {202}
    assert sorted(a.json()["status"] for a in answers).count("received") == 1
    await hooks.process()
    assert len(await hooks.invoices_of(md)) == 1


async def test_bad_signatures_stale_timestamps_and_missing_headers_are_401(hooks: Hooks) -> None:
    secret = whsec()
    connection, md = await hooks.connection(secret)
    body = json.dumps({"type": "invoice.created", "data": sample_document(0)}).encode()
    wrong = await hooks.post(connection.id, whsec(), body=body)
    assert wrong.status_code == 401
    tampered = webhook_headers(secret, body)
    async with httpx.AsyncClient(base_url=hooks.base) as http:
        changed = await http.post(
            f"/v1/invoice-connections/{connection.id}/webhooks",
            content=body + b" ",
            headers=tampered,
        )
        assert changed.status_code == 401
        for missing in ("webhook-id", "webhook-timestamp", "webhook-signature"):
            headers = {k: v for k, v in tampered.items() if k != missing}
            answer = await http.post(
                f"/v1/invoice-connections/{connection.id}/webhooks", content=body, headers=headers
            )
            assert answer.status_code == 401, missing
    old = await hooks.post(connection.id, secret, body=body, timestamp=int(time.time()) - 301)
    future = await hooks.post(connection.id, secret, body=body, timestamp=int(time.time()) + 301)
    assert (old.status_code, future.status_code) == (401, 401)
    await hooks.process()
    assert await hooks.invoices_of(md) == []
    assert secret not in wrong.text + old.text


async def test_during_a_secret_rotation_any_valid_signature_is_enough(hooks: Hooks) -> None:
    old_secret, new_secret = whsec(), whsec()
    connection, md = await hooks.connection(old_secret)
    body = json.dumps({"type": "invoice.created", "data": sample_document(1)}).encode()
    stamp, message_id = int(time.time()), "msg_rot"
    old = webhook_headers(old_secret, body, message_id=message_id, timestamp=stamp)
    new = webhook_headers(new_secret, body, message_id=message_id, timestamp=stamp)
    both = f"{new['webhook-signature']} {old['webhook-signature']}"
    answer = await hooks.post(
        connection.id, old_secret, body=body, headers={**old, "webhook-signature": both}
    )
    assert answer.status_code == 202
    await hooks.connections.UpdateConnection(
        cpb.UpdateConnectionRequest(id=connection.id, webhook_secret=new_secret), metadata=md
    )
    stale = await hooks.post(connection.id, old_secret, body=body, message_id="msg_after")
    assert stale.status_code == 401
    fresh = await hooks.post(connection.id, new_secret, body=body, message_id="msg_after")
    assert fresh.status_code == 202


async def test_connections_that_take_no_webhooks_are_404(hooks: Hooks, tokens: Tokens) -> None:
    secret = whsec()
    unknown = await hooks.post(ids.new_id("con")[1], secret)
    malformed = await hooks.post("nope", secret)
    without, _ = await hooks.connection(None)
    no_secret = await hooks.post(without.id, secret)
    inactive, _ = await hooks.connection(secret, active=False)
    disabled = await hooks.post(inactive.id, secret)
    gone, md = await hooks.connection(secret)
    await hooks.connections.DeleteConnection(cpb.DeleteConnectionRequest(id=gone.id), metadata=md)
    deleted = await hooks.post(gone.id, secret)
    assert [r.status_code for r in (unknown, malformed, no_secret, disabled, deleted)] == [404] * 5
    # Another tenant's connection with this tenant's secret: its signature does not verify.
    other, _ = await hooks.connection(whsec())
    assert (await hooks.post(other.id, secret)).status_code == 401


async def test_oversized_and_malformed_bodies_are_refused(hooks: Hooks) -> None:
    secret = whsec()
    connection, md = await hooks.connection(secret)
    cap = hooks.server.runtime.deps.settings.webhook_max_body_bytes
    huge = json.dumps({"type": "invoice.created", "data": {"x": "y" * cap}}).encode()
    assert (await hooks.post(connection.id, secret, body=huge)).status_code == 413
    assert (await hooks.post(connection.id, secret, body=b"{not json")).status_code == 400
    wrong_type = json.dumps({"type": "invoice.exploded", "data": {}}).encode()
    assert (await hooks.post(connection.id, secret, body=wrong_type)).status_code == 400
    await hooks.process()
    assert await hooks.invoices_of(md) == []


async def test_events_stored_before_a_delete_are_not_applied_after_it(hooks: Hooks) -> None:
    secret = whsec()
    connection, md = await hooks.connection(secret)
    assert (await hooks.post(connection.id, secret)).status_code == 202
    await hooks.connections.DeleteConnection(
        cpb.DeleteConnectionRequest(id=connection.id), metadata=md
    )
    await hooks.process()
    assert await hooks.invoices_of(md) == []


async def test_updated_and_rejected_events_follow_the_document(hooks: Hooks) -> None:
    secret = whsec()
    connection, md = await hooks.connection(secret)
    doc = sample_document(2)
    await hooks.post(connection.id, secret, {"type": "invoice.created", "data": doc})
    changed = dict(doc, updated_at="2026-11-27T00:00:00Z", number="F-UPDATED")
    await hooks.post(connection.id, secret, {"type": "invoice.updated", "data": changed})
    await hooks.process()
    [invoice] = await hooks.invoices_of(md)
    assert invoice.number == "F-UPDATED"
    rejected = dict(changed, updated_at="2026-11-28T00:00:00Z")
    await hooks.post(connection.id, secret, {"type": "invoice.rejected", "data": rejected})
    await hooks.process()
    assert await hooks.invoices_of(md) == []


async def test_fuzzed_headers_and_bodies_never_reach_a_5xx(hooks: Hooks) -> None:
    """Random header values (including near-valid ones) and bodies: always a 4xx."""
    rng = random.Random(20261130)
    secret = whsec()
    connection, md = await hooks.connection(secret)
    printable = [chr(c) for c in range(32, 127)]

    def junk(size: int) -> str:
        return "".join(rng.choice(printable) for _ in range(rng.randint(0, size)))

    now = int(time.time())
    statuses = set()
    async with httpx.AsyncClient(base_url=hooks.base) as http:
        for _ in range(200):
            body = rng.randbytes(rng.randint(0, 200))
            headers = {
                "webhook-id": rng.choice([junk(40), "msg_x", ""]),
                "webhook-timestamp": rng.choice([junk(12), str(now), str(now - 10**9), "9" * 40]),
                "webhook-signature": rng.choice(
                    [junk(80), "v1," + junk(60), "v1,!!!", "v2,abc v1,", " " * 5]
                ),
            }
            # Header values as a client can send them (no leading/trailing blanks).
            headers = {k: v.strip() for k, v in headers.items() if rng.random() > 0.1}
            answer = await http.post(
                f"/v1/invoice-connections/{connection.id}/webhooks", content=body, headers=headers
            )
            statuses.add(answer.status_code)
    assert statuses <= {400, 401}, statuses
    await hooks.process()
    assert await hooks.invoices_of(md) == []


def test_signature_checks_use_constant_time_comparison_only() -> None:
    import inspect

    source = inspect.getsource(ingestion.verify)
    assert "hmac.compare_digest" in source and "==" not in source.split("expected =")[1]
