"""The worker's delivery task: an issued invoice sent to the tenant's outbound connections
(provider `webhook`), as the REST gateway renders it, signed with Standard Webhooks."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import time
import uuid
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import httpx
from google.protobuf import json_format

from service.connections import service as connections
from service.edge.modules import TaskResult
from service.edge.runtime import Runtime
from service.invoices import convert, service
from service.kit import db, webhooks
from service.kit.auth import Principal

TIMEOUT_S = 10.0
_client: httpx.AsyncClient | None = None


def render(invoice: service.Invoice) -> bytes:
    """The event body: the invoice with proto field names and every field printed."""
    message = convert.invoice_to_pb(invoice, today=date.today())
    data = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return json.dumps({"type": "invoice.issued", "data": data}, separators=(",", ":")).encode()


async def _public(url: str, allow_loopback: bool) -> str:
    """Why the endpoint's host may not be called ("" if it may): every address it resolves
    to must be public (DNS may have changed since the URL was checked), or loopback when
    the development setting allows it."""
    host = urlsplit(url).hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return "the endpoint's host does not resolve"
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if address.is_loopback and allow_loopback:
            continue
        if not address.is_global:
            return "the endpoint's host resolves to a private or reserved address"
    return ""


def sender(runtime: Runtime) -> Any:
    allow_loopback = runtime.deps.settings.webhook_allow_loopback_http

    async def send(target: connections.Target, delivery_id: uuid.UUID, body: bytes) -> service.Sent:
        global _client
        refused = await _public(target.endpoint_url, allow_loopback)
        if refused:
            return service.Sent(0, refused)
        assert target.webhook_secret is not None
        headers = webhooks.headers(target.webhook_secret, str(delivery_id), int(time.time()), body)
        headers["content-type"] = "application/json"
        if target.api_key is not None:
            headers["authorization"] = f"Bearer {target.api_key.reveal()}"
        if _client is None:
            _client = httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=False)
        try:
            response = await _client.post(target.endpoint_url, content=body, headers=headers)
        except httpx.TimeoutException:
            return service.Sent(0, "the endpoint did not answer in time")
        except httpx.HTTPError as exc:
            return service.Sent(0, f"the endpoint could not be reached ({type(exc).__name__})")
        if 200 <= response.status_code < 300:
            return service.Sent(response.status_code)
        return service.Sent(response.status_code, f"the endpoint answered {response.status_code}")

    return send


async def deliver(runtime: Runtime, conn: db.Conn, principal: Principal, key: str) -> TaskResult:
    finished, next_in = await service.deliver(
        conn,
        principal,
        invoice_id=uuid.UUID(key),
        deps=runtime.deps,
        render=render,
        send=sender(runtime),
    )
    if finished:
        return TaskResult(count=1, finished=True)
    return TaskResult(count=1, next_in=next_in)
