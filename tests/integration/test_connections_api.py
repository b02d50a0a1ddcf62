"""ConnectionService (seed 004 "invoice connections") over the real gRPC port, the real
REST gateway (in-process and standalone: every REST test runs in both modes) and a real
PostgreSQL, nothing mocked. Asserts protos/invoicing/v1/connections.proto.

Every test runs in its own random tenant. Secrets are canaries (`sk_canary_<hex>`): no
response, error, header or stored idempotency row may ever contain one. Sections:

  helpers · create (defaults, providers, validation, secrets) · one active per provider
  (and the 50-way race) · get · update · delete · list · tenant isolation · permissions
  · PollConnection · idempotency · REST (create, errors, conditionals, seed 004, fuzz)
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import json
import logging
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import httpx
import pytest
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from invoicing.v1 import connections_pb2 as pb
from invoicing.v1 import connections_pb2_grpc

from service.kit import ids
from service.kit.logs import JsonFormatter
from tests.conftest import Tokens, error_info, rich_status
from tests.factories import Code, Metadata, fails, invalid, mask

if TYPE_CHECKING:
    Stub = connections_pb2_grpc.ConnectionServiceAsyncStub
else:
    Stub = connections_pb2_grpc.ConnectionServiceStub
Json = dict[str, Any]

OK = pb.CONNECTION_STATE_OK
FAILING = pb.CONNECTION_STATE_FAILING
NEEDS_CREDENTIALS = pb.CONNECTION_STATE_NEEDS_CREDENTIALS
DISABLED = pb.CONNECTION_STATE_DISABLED
SECRETS_UNAVAILABLE = pb.CONNECTION_STATE_SECRETS_UNAVAILABLE
DELETED = pb.CONNECTION_STATE_DELETED

VALID_BODY = "01JD6N8Q6Z7T3M3Y5C4V8R2K1P"  # 26 Crockford base32 characters
UNKNOWN_CON = f"con_{VALID_BODY}"
OTHER_BODY = "01JD6N8Q6Z7T3M3Y5C4V8R2K1Q"
ID = re.compile(r"^con_[0-9A-HJKMNP-TV-Z]{26}$")
ETAG = re.compile(r'^W/"\d+"$')
HOOK_URL = "https://hooks.example.com/invoices"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
ERROR_KEYS = {"code", "status", "title", "message", "details", "meta"}


# ---- helpers ----------------------------------------------------------------------


def canary() -> str:
    """A secret that must never come back from the service."""
    return f"sk_canary_{uuid.uuid4().hex}"


def whsec(size: int = 32) -> str:
    """A Standard Webhooks secret: whsec_ + base64 of `size` random bytes."""
    return "whsec_" + base64.b64encode(os.urandom(size)).decode()


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> Stub:
    return connections_pb2_grpc.ConnectionServiceStub(channel)


@pytest.fixture
def auth(tokens: Tokens, tenant: uuid.UUID) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.token(tenant)}"}


@pytest.fixture
async def http(rest_base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the REST gateway (in-process and standalone), no credentials."""
    async with httpx.AsyncClient(base_url=rest_base_url, timeout=30) as client:
        yield client


async def create(
    stub: Stub,
    md: Metadata,
    provider: str = "yooz",
    api_key: str | None = None,
    **fields: Any,
) -> pb.Connection:
    if provider == "webhook":
        fields.setdefault("webhook_secret", whsec())
        fields.setdefault("endpoint_url", HOOK_URL)
    request = pb.CreateConnectionRequest(
        provider=provider, api_key=canary() if api_key is None else api_key, **fields
    )
    result: pb.Connection = await stub.CreateConnection(request, metadata=md)
    return result


async def get(stub: Stub, md: Metadata, connection_id: str) -> pb.Connection:
    result: pb.Connection = await stub.GetConnection(
        pb.GetConnectionRequest(id=connection_id), metadata=md
    )
    return result


async def update(stub: Stub, md: Metadata, connection_id: str, **fields: Any) -> pb.Connection:
    result: pb.Connection = await stub.UpdateConnection(
        pb.UpdateConnectionRequest(id=connection_id, **fields), metadata=md
    )
    return result


async def delete(stub: Stub, md: Metadata, connection_id: str, etag: str = "") -> None:
    await stub.DeleteConnection(
        pb.DeleteConnectionRequest(id=connection_id, etag=etag), metadata=md
    )


async def listing(stub: Stub, md: Metadata, **fields: Any) -> pb.ListConnectionsResponse:
    result: pb.ListConnectionsResponse = await stub.ListConnections(
        pb.ListConnectionsRequest(**fields), metadata=md
    )
    return result


async def list_ids(stub: Stub, md: Metadata, **fields: Any) -> list[str]:
    page = await listing(stub, md, limit=200, **fields)
    assert page.next_cursor == ""
    return [c.id for c in page.data]


def error_text(err: grpc.aio.AioRpcError) -> str:
    """Everything an error carries to the caller."""
    return " ".join(
        [
            str(err.details()),
            str(rich_status(err)),
            str(err.trailing_metadata()),
            str(err.initial_metadata()),
            str(err.debug_error_string()),
        ]
    )


def assert_secret_free(text: str, *secrets: str) -> None:
    for secret in filter(None, secrets):
        assert secret not in text, f"a secret leaked: {text[:500]}"
        # Not base64- or hex-encoded either.
        assert base64.b64encode(secret.encode()).decode() not in text
        assert secret.encode().hex() not in text


def assert_message_secret_free(message: Message, *secrets: str) -> None:
    assert_secret_free(str(message), *secrets)
    assert_secret_free(repr(message.SerializeToString()), *secrets)


def assert_response_secret_free(response: httpx.Response, *secrets: str) -> None:
    assert_secret_free(response.text, *secrets)
    assert_secret_free(str(list(response.headers.items())), *secrets)


def assert_rest_error(
    response: httpx.Response, status: int, code: str, reason: str | None = None
) -> Json:
    """The gateway's error body (one ErrorInfo of our domain); returns it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: Json = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["code"] == code, body
    assert body["status"] == status
    infos = [d for d in body["details"] if d.get("@type") == ERROR_INFO]
    assert len(infos) == 1, body
    assert infos[0]["domain"] == "invoicing.v1"
    if reason is not None:
        assert infos[0]["reason"] == reason, body
    for leak in ("Traceback", 'File "', "AioRpcError", "site-packages"):
        assert leak not in response.text
    return body


def rest_reason(body: Json) -> str:
    reason: str = next(d for d in body["details"] if d["@type"] == ERROR_INFO)["reason"]
    return reason


def rest_fields(body: Json) -> list[str]:
    return [
        v["field"]
        for d in body["details"]
        if d["@type"] == BAD_REQUEST
        for v in d.get("field_violations", [])
    ]


def assert_public_view(data: Json) -> None:
    """A connection as REST returns it: flags for the secrets, never the secrets."""
    for forbidden in ("api_key", "apiKey", "webhook_secret", "webhookSecret"):
        assert forbidden not in data, data
    assert ID.match(data["id"]), data
    assert isinstance(data["has_credentials"], bool)
    assert isinstance(data["has_webhook_secret"], bool)


# Seed 004's timestamps: RFC 3339 UTC with exactly milliseconds.
MILLIS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def seed_key(name: str) -> str:
    """A Connection field's key in seed 004's spelling: lowerCamel, `tenant_id` as
    `client`."""
    if name == "tenant_id":
        return "client"
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def assert_seed_view(data: Json) -> None:
    """A connection as seed 004's paths return it: camelCase keys (no snake_case one),
    flags for the secrets and never the secrets, timestamps with milliseconds and
    `lastPolledAt` present (null until polled)."""
    for forbidden in ("api_key", "apiKey", "webhook_secret", "webhookSecret"):
        assert forbidden not in data, data
    assert not [k for k in data if "_" in k], data
    assert "tenantId" not in data and "client" in data, data
    assert ID.match(data["id"]), data
    assert isinstance(data["hasCredentials"], bool)
    assert isinstance(data["hasWebhookSecret"], bool)
    assert "lastPolledAt" in data, data
    for key in ("createdAt", "updatedAt", "lastPolledAt", "deletedAt"):
        assert data.get(key) is None or MILLIS.match(data[key]), data


def to_millis(stamp: str) -> str:
    """A canonical RFC 3339 timestamp as seed 004 writes it (milliseconds, truncated)."""
    moment = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def next_page(response: httpx.Response) -> str | None:
    """Seed 004's next page: the URL of `Link: <...>; rel="next"`, None on the last page."""
    link = response.headers.get("link")
    if link is None:
        return None
    found = re.fullmatch(r'<([^>]+)>; rel="next"', link)
    assert found, link
    return found.group(1)


async def connection_rows(admin: asyncpg.Connection, tenant: uuid.UUID) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await admin.fetch(
        "SELECT * FROM connections WHERE tenant_id = $1", tenant
    )
    return rows


async def count_rows(admin: asyncpg.Connection, tenant: uuid.UUID) -> int:
    return len(await connection_rows(admin, tenant))


# ---- CreateConnection -------------------------------------------------------------


async def test_create_yooz_defaults_to_active_and_never_returns_secrets(
    stub: Stub, md: Metadata, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    key, secret = canary(), whsec()
    created = await create(stub, md, api_key=key, webhook_secret=secret)

    assert ID.match(created.id), created.id
    assert created.tenant_id == str(tenant)
    assert created.provider == "yooz"
    assert created.active is True
    assert created.has_credentials and created.has_webhook_secret
    assert created.state == OK
    assert created.endpoint_url == ""
    assert ETAG.match(created.etag), created.etag
    assert created.HasField("created_at") and created.HasField("updated_at")
    assert not created.HasField("deleted_at")
    assert not created.HasField("last_polled_at")
    assert created.consecutive_failures == 0 and created.last_error == ""
    assert_message_secret_free(created, key, secret)
    assert await get(stub, md, created.id) == created

    # Stored sealed: the plaintext is nowhere in the row.
    (row,) = await connection_rows(admin, tenant)
    assert row["provider"] == "yooz" and row["active"] is True and row["deleted_at"] is None
    assert row["api_key_sealed"] is not None and row["webhook_secret_sealed"] is not None
    for value in (key, secret):
        assert value.encode() not in bytes(row["api_key_sealed"])
        assert value.encode() not in bytes(row["webhook_secret_sealed"])
        assert value not in str(dict(row))


async def test_create_without_webhook_secret_reports_none(stub: Stub, md: Metadata) -> None:
    created = await create(stub, md)
    assert created.has_credentials and not created.has_webhook_secret
    assert created.state == OK


async def test_create_inactive_is_disabled(stub: Stub, md: Metadata) -> None:
    created = await create(stub, md, active=False)
    assert created.active is False
    assert created.state == DISABLED
    assert created.has_credentials
    assert not created.HasField("next_poll_at")


async def test_create_webhook_provider(stub: Stub, md: Metadata) -> None:
    key, secret = canary(), whsec(24)
    created = await create(
        stub, md, "webhook", api_key=key, webhook_secret=secret, endpoint_url=HOOK_URL
    )
    assert created.provider == "webhook"
    assert created.endpoint_url == HOOK_URL
    assert created.active and created.state == OK
    assert created.has_credentials and created.has_webhook_secret
    assert_message_secret_free(created, key, secret)


@pytest.mark.parametrize(
    "secret",
    [
        whsec(24),
        whsec(64),
        "any printable secret, even with spaces and é",
        "x",
    ],
    ids=["whsec-24", "whsec-64", "printable", "one-char"],
)
async def test_webhook_secret_forms_accepted(stub: Stub, md: Metadata, secret: str) -> None:
    created = await create(stub, md, webhook_secret=secret)
    assert created.has_webhook_secret
    if len(secret) > 16:  # a one-character secret is in any text
        assert_message_secret_free(created, secret)


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        (
            {"provider": "yooz", "endpoint_url": HOOK_URL},
            "endpoint_url",
            "NOT_ALLOWED_FOR_PROVIDER",
        ),
        ({"provider": "sage"}, "provider", "UNKNOWN_PROVIDER"),
        ({"provider": "YOOZ"}, "provider", "UNKNOWN_PROVIDER"),
        ({"provider": ""}, "provider", "REQUIRED"),
        ({"provider": "yooz", "api_key": ""}, "api_key", "REQUIRED"),
        ({"provider": "webhook", "api_key": ""}, "api_key", "REQUIRED"),
        ({"provider": "webhook", "webhook_secret": ""}, "webhook_secret", "REQUIRED"),
        ({"provider": "webhook", "endpoint_url": ""}, "endpoint_url", "REQUIRED"),
        (
            {"provider": "webhook", "endpoint_url": "http://hooks.example.com/x"},
            "endpoint_url",
            "INSECURE_URL",
        ),
        (
            {"provider": "webhook", "endpoint_url": "http://127.0.0.1:8080/x"},
            "endpoint_url",
            "INSECURE_URL",
        ),
        (
            {"provider": "webhook", "endpoint_url": "http://localhost/x"},
            "endpoint_url",
            "INSECURE_URL",
        ),
        (
            {"provider": "webhook", "endpoint_url": "https://localhost/x"},
            "endpoint_url",
            "FORBIDDEN_HOST",
        ),
        (
            {"provider": "webhook", "endpoint_url": "https://127.0.0.1/x"},
            "endpoint_url",
            "FORBIDDEN_HOST",
        ),
        (
            {"provider": "webhook", "endpoint_url": "https://10.0.0.1/x"},
            "endpoint_url",
            "FORBIDDEN_HOST",
        ),
        (
            {"provider": "webhook", "endpoint_url": "https://169.254.169.254/"},
            "endpoint_url",
            "FORBIDDEN_HOST",
        ),
        (
            {"provider": "webhook", "endpoint_url": "https://[::1]/x"},
            "endpoint_url",
            "FORBIDDEN_HOST",
        ),
        (
            {"provider": "webhook", "endpoint_url": "https://u:p@h.example/"},
            "endpoint_url",
            "INVALID_ENDPOINT_URL",
        ),
        (
            {"provider": "webhook", "endpoint_url": "https://h.example/x#frag"},
            "endpoint_url",
            "INVALID_ENDPOINT_URL",
        ),
        (
            {"provider": "webhook", "endpoint_url": "ftp://h.example/x"},
            "endpoint_url",
            "INVALID_ENDPOINT_URL",
        ),
        (
            {"provider": "webhook", "endpoint_url": "https://h.example/" + "a" * 2048},
            "endpoint_url",
            "INVALID_ENDPOINT_URL",
        ),
        (
            {"provider": "yooz", "webhook_secret": "whsec_" + base64.b64encode(b"x" * 10).decode()},
            "webhook_secret",
            "INVALID_WEBHOOK_SECRET",
        ),
        (
            {"provider": "yooz", "webhook_secret": "whsec_" + base64.b64encode(b"x" * 65).decode()},
            "webhook_secret",
            "INVALID_WEBHOOK_SECRET",
        ),
        (
            {"provider": "yooz", "webhook_secret": "whsec_not*base64!"},
            "webhook_secret",
            "INVALID_WEBHOOK_SECRET",
        ),
        (
            {"provider": "yooz", "webhook_secret": "line\nbreak"},
            "webhook_secret",
            "INVALID_WEBHOOK_SECRET",
        ),
        (
            {"provider": "yooz", "webhook_secret": "s" * 4097},
            "webhook_secret",
            "INVALID_WEBHOOK_SECRET",
        ),
    ],
    ids=[
        "yooz-endpoint",
        "unknown-provider",
        "provider-case",
        "empty-provider",
        "no-api-key",
        "webhook-no-api-key",
        "webhook-no-secret",
        "webhook-no-url",
        "http-url",
        "http-loopback-ip",
        "http-localhost",
        "https-localhost",
        "https-127",
        "https-10",
        "https-metadata",
        "https-ipv6-loopback",
        "userinfo",
        "fragment",
        "ftp",
        "too-long-url",
        "whsec-short",
        "whsec-long",
        "whsec-not-base64",
        "secret-not-printable",
        "secret-too-long",
    ],
)
async def test_create_validation(
    stub: Stub,
    md: Metadata,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
    fields: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    values: dict[str, Any] = {"api_key": canary()}
    if fields.get("provider") == "webhook":
        values.update(webhook_secret=whsec(), endpoint_url=HOOK_URL)
    values.update(fields)
    request = pb.CreateConnectionRequest(**values)
    err = await invalid(stub.CreateConnection(request, metadata=md), field, reason)
    secrets = [v for k, v in values.items() if k in ("api_key", "webhook_secret") and v]
    assert_secret_free(error_text(err), *secrets)
    assert await count_rows(admin, tenant) == 0


@pytest.mark.parametrize(
    "url",
    [
        "https://2130706433/x",
        "https://0x7f000001/x",
        "https://127.1/x",
        "https://0177.0.0.1/x",
        "https://0xa9.0xfe.0xa9.0xfe/latest/meta-data/",
        "https://167772161/x",
        "https://0/x",
    ],
    ids=[
        "decimal-loopback",
        "hex-loopback",
        "short-loopback",
        "octal-loopback",
        "hex-metadata",
        "decimal-10",
        "zero",
    ],
)
async def test_numeric_ipv4_hosts_are_forbidden(
    stub: Stub, md: Metadata, tenant: uuid.UUID, admin: asyncpg.Connection, url: str
) -> None:
    """HTTP clients (getaddrinfo, WHATWG URL parsing) read these hosts as the IPv4 literals
    127.0.0.1, 169.254.169.254, 10.0.0.1 and 0.0.0.0: they must be refused like the dotted
    forms (the contract: never an IP literal of a private, link-local or reserved network)."""
    await invalid(
        stub.CreateConnection(
            pb.CreateConnectionRequest(
                provider="webhook", api_key=canary(), webhook_secret=whsec(), endpoint_url=url
            ),
            metadata=md,
        ),
        "endpoint_url",
        "FORBIDDEN_HOST",
    )
    assert await count_rows(admin, tenant) == 0


async def test_unknown_provider_is_named_in_the_error(stub: Stub, md: Metadata) -> None:
    err = await invalid(
        stub.CreateConnection(
            pb.CreateConnectionRequest(provider="quickbooks", api_key=canary()), metadata=md
        ),
        "provider",
        "UNKNOWN_PROVIDER",
    )
    assert "quickbooks" in str(err.details())
    assert error_info(err).metadata["provider"] == "quickbooks"


@pytest.mark.parametrize(
    "shape",
    ["space", "tab", "newline", "non-ascii", "del", "too-long", "leading-space"],
)
async def test_api_key_must_be_visible_ascii_and_is_never_quoted(
    stub: Stub, md: Metadata, tenant: uuid.UUID, admin: asyncpg.Connection, shape: str
) -> None:
    secret = canary()
    key = {
        "space": f"{secret} tail",
        "tab": f"{secret}\ttail",
        "newline": f"{secret}\n",
        "non-ascii": f"{secret}••••",
        "del": f"{secret}\x7f",
        "too-long": secret + "k" * (4097 - len(secret)),
        "leading-space": f" {secret}",
    }[shape]
    err = await invalid(
        stub.CreateConnection(
            pb.CreateConnectionRequest(provider="yooz", api_key=key), metadata=md
        ),
        "api_key",
        "INVALID_API_KEY",
    )
    assert_secret_free(error_text(err), secret, key)
    assert await count_rows(admin, tenant) == 0


async def test_api_key_of_4096_visible_characters_is_accepted(stub: Stub, md: Metadata) -> None:
    key = canary()
    key += "~" * (4096 - len(key))
    created = await create(stub, md, api_key=key)
    assert created.has_credentials
    assert_message_secret_free(created, key)


# ---- one active connection per provider -------------------------------------------


async def test_one_active_connection_per_provider(
    stub: Stub, md: Metadata, tokens: Tokens, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    first = await create(stub, md)
    key = canary()
    err = await fails(
        stub.CreateConnection(
            pb.CreateConnectionRequest(provider="yooz", api_key=key), metadata=md
        ),
        Code.ALREADY_EXISTS,
    )
    assert error_info(err).reason == "CONNECTION_ALREADY_ACTIVE"
    assert_secret_free(error_text(err), key)
    assert await count_rows(admin, tenant) == 1

    # An inactive second one is fine; enabling it is refused and changes nothing.
    second = await create(stub, md, active=False)
    assert second.state == DISABLED
    err = await fails(
        stub.UpdateConnection(pb.UpdateConnectionRequest(id=second.id, active=True), metadata=md),
        Code.ALREADY_EXISTS,
    )
    assert error_info(err).reason == "CONNECTION_ALREADY_ACTIVE"
    assert (await get(stub, md, second.id)) == second

    # Another provider has its own slot; another tenant has its own.
    assert (await create(stub, md, "webhook")).active
    other = tokens.md(uuid.uuid4())
    assert (await create(stub, other)).active

    # Disabling the first frees the slot for the second, and then the first can't return.
    disabled = await update(stub, md, first.id, active=False)
    assert disabled.state == DISABLED and not disabled.active
    enabled = await update(stub, md, second.id, active=True)
    assert enabled.active and enabled.state == OK
    await fails(update(stub, md, first.id, active=True), Code.ALREADY_EXISTS)

    # Deleting the active one frees the slot too.
    await delete(stub, md, second.id)
    third = await create(stub, md)
    assert third.active and third.state == OK
    live = await admin.fetchval(
        "SELECT count(*) FROM connections WHERE tenant_id = $1 AND provider = 'yooz'"
        " AND active AND deleted_at IS NULL",
        tenant,
    )
    assert live == 1


async def test_fifty_concurrent_creates_make_exactly_one_active(
    stub: Stub, md: Metadata, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    keys = [canary() for _ in range(50)]

    async def attempt(key: str) -> pb.Connection | grpc.aio.AioRpcError:
        try:
            return await create(stub, md, api_key=key)
        except grpc.aio.AioRpcError as err:
            return err

    outcomes = await asyncio.gather(*(attempt(k) for k in keys))
    created = [o for o in outcomes if isinstance(o, pb.Connection)]
    errors = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    codes = sorted(str(e.code()) for e in errors)
    assert len(created) == 1, codes
    assert len(errors) == 49
    assert all(e.code() == Code.ALREADY_EXISTS for e in errors), codes
    assert all(error_info(e).reason == "CONNECTION_ALREADY_ACTIVE" for e in errors)
    for err in errors:
        assert_secret_free(error_text(err), *keys)
    live = await admin.fetch(
        "SELECT id FROM connections WHERE tenant_id = $1 AND provider = 'yooz'"
        " AND active AND deleted_at IS NULL",
        tenant,
    )
    assert len(live) == 1
    assert await count_rows(admin, tenant) == 1
    assert await list_ids(stub, md) == [created[0].id]


# ---- GetConnection ----------------------------------------------------------------


async def test_get_returns_soft_deleted_connections(stub: Stub, md: Metadata) -> None:
    created = await create(stub, md)
    await delete(stub, md, created.id)
    got = await get(stub, md, created.id)
    assert got.id == created.id
    assert got.HasField("deleted_at")
    assert got.state == DELETED
    assert got.active is False
    assert not got.HasField("next_poll_at")
    assert got.etag != created.etag


@pytest.mark.parametrize(
    ("connection_id", "reason"),
    [
        ("", "REQUIRED"),
        ("nonsense", None),
        (f"inv_{VALID_BODY}", None),
        (f"txn_{VALID_BODY}", None),
        (f"con_{VALID_BODY[:-1]}", None),
        (f"con_{VALID_BODY}X", None),
        (str(uuid.uuid4()), None),
    ],
    ids=["empty", "garbage", "invoice-id", "txn-id", "short", "long", "bare-uuid"],
)
async def test_malformed_ids_are_invalid_argument(
    stub: Stub, md: Metadata, connection_id: str, reason: str | None
) -> None:
    await invalid(
        stub.GetConnection(pb.GetConnectionRequest(id=connection_id), metadata=md), "id", reason
    )
    await invalid(
        stub.UpdateConnection(
            pb.UpdateConnectionRequest(id=connection_id, active=False), metadata=md
        ),
        "id",
        reason,
    )
    await invalid(
        stub.DeleteConnection(pb.DeleteConnectionRequest(id=connection_id), metadata=md),
        "id",
        reason,
    )


async def test_unknown_id_is_not_found(stub: Stub, md: Metadata) -> None:
    err = await fails(get(stub, md, UNKNOWN_CON), Code.NOT_FOUND)
    assert UNKNOWN_CON in str(err.details())
    await fails(update(stub, md, UNKNOWN_CON, active=False), Code.NOT_FOUND)
    await fails(delete(stub, md, UNKNOWN_CON), Code.NOT_FOUND)


def _without(text: str, *ids: str) -> str:
    for value in ids:
        text = text.replace(value, "<id>")
    return text


async def test_another_tenants_connection_is_indistinguishable_from_unknown(
    stub: Stub, md: Metadata, tokens: Tokens, admin: asyncpg.Connection, tenant: uuid.UUID
) -> None:
    mine = await create(stub, md, webhook_secret=whsec())
    intruder = tokens.md(uuid.uuid4())
    # An unknown id of the same shape (same length, prefix and alphabet).
    unknown = "con_" + ("0" * 26 if mine.id[4:] != "0" * 26 else "1" * 26)

    requests: list[tuple[str, Callable[[str], Message]]] = [
        ("GetConnection", lambda i: pb.GetConnectionRequest(id=i)),
        ("UpdateConnection", lambda i: pb.UpdateConnectionRequest(id=i, active=False)),
        ("UpdateConnection", lambda i: pb.UpdateConnectionRequest(id=i, api_key=canary())),
        ("DeleteConnection", lambda i: pb.DeleteConnectionRequest(id=i)),
        ("DeleteConnection", lambda i: pb.DeleteConnectionRequest(id=i, etag=mine.etag)),
    ]
    for name, make in requests:
        rpc = getattr(stub, name)
        theirs = await fails(rpc(make(mine.id), metadata=intruder), Code.NOT_FOUND)
        missing = await fails(rpc(make(unknown), metadata=intruder), Code.NOT_FOUND)
        assert _without(str(theirs.details()), mine.id) == _without(str(missing.details()), unknown)
        assert _without(str(rich_status(theirs)), mine.id) == _without(
            str(rich_status(missing)), unknown
        )
        assert error_info(theirs).reason == error_info(missing).reason
    # Nothing changed for the owner.
    assert await get(stub, md, mine.id) == mine
    assert await list_ids(stub, intruder) == []


# ---- UpdateConnection -------------------------------------------------------------


async def test_rotating_the_api_key_bumps_the_etag(
    stub: Stub, md: Metadata, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    created = await create(stub, md)
    (before,) = await connection_rows(admin, tenant)
    new_key = canary()
    rotated = await update(stub, md, created.id, api_key=new_key)
    assert rotated.has_credentials and rotated.state == OK
    assert rotated.etag != created.etag and ETAG.match(rotated.etag)
    assert rotated.updated_at.ToDatetime() >= created.updated_at.ToDatetime()
    assert rotated.created_at == created.created_at
    assert_message_secret_free(rotated, new_key)
    (after,) = await connection_rows(admin, tenant)
    assert bytes(after["api_key_sealed"]) != bytes(before["api_key_sealed"])
    assert new_key.encode() not in bytes(after["api_key_sealed"])
    # The old etag is stale now.
    err = await fails(
        update(stub, md, created.id, api_key=canary(), etag=created.etag), Code.ABORTED
    )
    assert error_info(err).reason == "ETAG_MISMATCH"
    # The current one works.
    again = await update(stub, md, created.id, active=False, etag=rotated.etag)
    assert again.state == DISABLED and again.etag != rotated.etag


async def test_webhook_secret_can_be_set_replaced_and_removed_for_yooz(
    stub: Stub, md: Metadata
) -> None:
    created = await create(stub, md)
    assert not created.has_webhook_secret
    secret = whsec()
    set_ = await update(stub, md, created.id, webhook_secret=secret)
    assert set_.has_webhook_secret
    assert_message_secret_free(set_, secret)
    removed = await update(stub, md, created.id, webhook_secret="")
    assert not removed.has_webhook_secret and removed.has_credentials
    assert (await get(stub, md, created.id)).has_webhook_secret is False
    # Named in the mask and left unset: removed as well.
    await update(stub, md, created.id, webhook_secret=whsec())
    masked = await update(stub, md, created.id, update_mask=mask("webhook_secret"))
    assert not masked.has_webhook_secret


async def test_webhook_provider_keeps_its_webhook_secret(stub: Stub, md: Metadata) -> None:
    created = await create(stub, md, "webhook")
    await invalid(
        stub.UpdateConnection(
            pb.UpdateConnectionRequest(id=created.id, webhook_secret=""), metadata=md
        ),
        "webhook_secret",
        "REQUIRED",
    )
    assert (await get(stub, md, created.id)) == created
    replaced = await update(stub, md, created.id, webhook_secret=whsec(48))
    assert replaced.has_webhook_secret and replaced.etag != created.etag


async def test_webhook_endpoint_url_updates_are_checked(stub: Stub, md: Metadata) -> None:
    created = await create(stub, md, "webhook")
    for url, reason in [
        ("http://hooks.example.com/x", "INSECURE_URL"),
        ("https://10.0.0.1/x", "FORBIDDEN_HOST"),
        ("https://169.254.169.254/", "FORBIDDEN_HOST"),
        ("https://u:p@h.example/", "INVALID_ENDPOINT_URL"),
        ("", "REQUIRED"),
    ]:
        await invalid(
            stub.UpdateConnection(
                pb.UpdateConnectionRequest(id=created.id, endpoint_url=url), metadata=md
            ),
            "endpoint_url",
            reason,
        )
    assert (await get(stub, md, created.id)) == created
    moved = await update(stub, md, created.id, endpoint_url="https://other.example.org/in")
    assert moved.endpoint_url == "https://other.example.org/in"


async def test_yooz_takes_no_endpoint_url_on_update(stub: Stub, md: Metadata) -> None:
    created = await create(stub, md)
    await invalid(
        stub.UpdateConnection(
            pb.UpdateConnectionRequest(id=created.id, endpoint_url=HOOK_URL), metadata=md
        ),
        "endpoint_url",
        "NOT_ALLOWED_FOR_PROVIDER",
    )
    assert (await get(stub, md, created.id)).endpoint_url == ""


async def test_update_validation(stub: Stub, md: Metadata) -> None:
    created = await create(stub, md)
    cid = created.id

    def call(**fields: Any) -> Any:
        return stub.UpdateConnection(pb.UpdateConnectionRequest(id=cid, **fields), metadata=md)

    await invalid(call(), "update_mask", "NO_FIELDS")
    await invalid(call(etag=created.etag), "update_mask", "NO_FIELDS")
    await invalid(call(api_key="", update_mask=mask("api_key")), "api_key", "REQUIRED")
    await invalid(call(api_key=""), "api_key", "REQUIRED")
    await invalid(call(update_mask=mask("api_key")), "api_key", "REQUIRED")
    for path in ("provider", "id", "has_credentials", "etag", "state", "tenant_id"):
        await invalid(
            call(active=False, update_mask=mask(path)), "update_mask", "INVALID_UPDATE_MASK"
        )
    for path in ("nope", "apiKey", "api_key.x", ""):
        await invalid(
            call(active=False, update_mask=mask(path)), "update_mask", "INVALID_UPDATE_MASK"
        )
    secret = canary()
    err = await invalid(call(api_key=f"{secret} x"), "api_key", "INVALID_API_KEY")
    assert_secret_free(error_text(err), secret)
    err = await invalid(
        call(webhook_secret="whsec_" + base64.b64encode(b"k" * 8).decode()),
        "webhook_secret",
        "INVALID_WEBHOOK_SECRET",
    )
    assert (await get(stub, md, cid)) == created


async def test_update_mask_limits_what_changes(stub: Stub, md: Metadata) -> None:
    created = await create(stub, md, webhook_secret=whsec())
    # Only `active` is in the mask: the webhook_secret "" in the request is ignored.
    updated = await update(
        stub, md, created.id, active=False, webhook_secret="", update_mask=mask("active")
    )
    assert updated.active is False and updated.has_webhook_secret


async def test_rotating_the_key_ends_needs_credentials(
    stub: Stub, md: Metadata, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    created = await create(stub, md)
    await admin.execute(
        "UPDATE connections SET health = 'needs_credentials', consecutive_failures = 3"
        " WHERE tenant_id = $1",
        tenant,
    )
    waiting = await get(stub, md, created.id)
    assert waiting.state == NEEDS_CREDENTIALS and waiting.consecutive_failures == 3
    # Disabled beats needs_credentials.
    assert (await update(stub, md, created.id, active=False)).state == DISABLED
    assert (await update(stub, md, created.id, active=True)).state == NEEDS_CREDENTIALS
    rotated = await update(stub, md, created.id, api_key=canary())
    assert rotated.state == OK and rotated.consecutive_failures == 0
    await admin.execute("UPDATE connections SET health = 'failing' WHERE tenant_id = $1", tenant)
    assert (await get(stub, md, created.id)).state == FAILING


async def test_unreadable_secret_is_secrets_unavailable_until_set_anew(
    stub: Stub, md: Metadata, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    created = await create(stub, md)
    await admin.execute(
        "UPDATE connections SET api_key_kid = 'gone-key' WHERE tenant_id = $1", tenant
    )
    assert (await get(stub, md, created.id)).state == SECRETS_UNAVAILABLE
    fixed = await update(stub, md, created.id, api_key=canary())
    assert fixed.state == OK


async def test_sealed_secrets_are_bound_to_their_row_and_field(
    stub: Stub, md: Metadata, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    """A sealed blob copied to another row, or to the other field, does not open."""
    source = await create(stub, md, webhook_secret=whsec())
    target = await create(stub, md, "webhook")
    await admin.execute(
        "UPDATE connections t SET api_key_kid = s.api_key_kid, api_key_sealed = s.api_key_sealed"
        " FROM connections s WHERE t.tenant_id = $1 AND s.tenant_id = $1 AND t.id <> s.id"
        " AND t.provider = 'webhook' AND s.provider = 'yooz'",
        tenant,
    )
    assert (await get(stub, md, target.id)).state == SECRETS_UNAVAILABLE
    assert (await get(stub, md, source.id)).state == OK
    await admin.execute(
        "UPDATE connections SET webhook_secret_kid = api_key_kid,"
        " webhook_secret_sealed = api_key_sealed WHERE tenant_id = $1 AND provider = 'yooz'",
        tenant,
    )
    assert (await get(stub, md, source.id)).state == SECRETS_UNAVAILABLE
    assert (await update(stub, md, source.id, webhook_secret=whsec())).state == OK
    assert (await update(stub, md, target.id, api_key=canary())).state == OK


# ---- DeleteConnection -------------------------------------------------------------


async def test_delete_soft_deletes_once(
    stub: Stub, md: Metadata, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    created = await create(stub, md)
    stale = await update(stub, md, created.id, api_key=canary())
    err = await fails(delete(stub, md, created.id, etag=created.etag), Code.ABORTED)
    assert error_info(err).reason == "ETAG_MISMATCH"
    assert not (await get(stub, md, created.id)).HasField("deleted_at")

    result = await stub.DeleteConnection(
        pb.DeleteConnectionRequest(id=created.id, etag=stale.etag), metadata=md
    )
    assert result.ByteSize() == 0
    (row,) = await connection_rows(admin, tenant)
    assert row["deleted_at"] is not None and row["active"] is False

    await fails(delete(stub, md, created.id), Code.NOT_FOUND)
    await fails(update(stub, md, created.id, api_key=canary()), Code.NOT_FOUND)
    await fails(update(stub, md, created.id, active=True), Code.NOT_FOUND)
    after = await get(stub, md, created.id)
    assert after.state == DELETED and not after.active


# ---- ListConnections --------------------------------------------------------------


async def _three(stub: Stub, md: Metadata) -> tuple[pb.Connection, pb.Connection, pb.Connection]:
    """An active yooz with a webhook secret, a webhook, an inactive yooz without one."""
    a = await create(stub, md, webhook_secret=whsec())
    b = await create(stub, md, "webhook")
    c = await create(stub, md, active=False)
    return a, b, c


async def test_list_filters(stub: Stub, md: Metadata) -> None:
    a, b, c = await _three(stub, md)
    assert set(await list_ids(stub, md)) == {a.id, b.id, c.id}
    assert set(await list_ids(stub, md, filter='provider = "yooz"')) == {a.id, c.id}
    assert set(await list_ids(stub, md, filter='provider = "webhook"')) == {b.id}
    assert set(await list_ids(stub, md, filter="active = true")) == {a.id, b.id}
    assert set(await list_ids(stub, md, filter="active = false")) == {c.id}
    assert set(await list_ids(stub, md, filter="has_credentials = true")) == {a.id, b.id, c.id}
    assert await list_ids(stub, md, filter="has_credentials = false") == []
    assert set(await list_ids(stub, md, filter="has_webhook_secret = false")) == {c.id}
    assert set(await list_ids(stub, md, filter="has_webhook_secret = true")) == {a.id, b.id}
    both = 'provider = "yooz" AND active = true'
    assert await list_ids(stub, md, filter=both) == [a.id]
    assert await list_ids(stub, md, filter=f'id = "{b.id}"') == [b.id]
    assert await list_ids(stub, md, filter=f'endpoint_url = "{HOOK_URL}"') == [b.id]


async def test_list_page_carries_views_without_secrets(stub: Stub, md: Metadata) -> None:
    key = canary()
    created = await create(stub, md, api_key=key)
    page = await listing(stub, md)
    assert list(page.data) == [created]
    assert_message_secret_free(page, key)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"filter": 'api_key = "x"'}, "filter"),
        ({"filter": 'secret = "x"'}, "filter"),
        ({"filter": 'active = "yes"'}, "filter"),
        ({"filter": "provider = "}, "filter"),
        ({"order_by": "api_key"}, "order_by"),
        ({"order_by": "nope desc"}, "order_by"),
        ({"limit": -1}, "limit"),
        ({"direction": "sideways"}, "direction"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
    ids=[
        "filter-secret-field",
        "filter-unknown",
        "filter-ill-typed",
        "filter-syntax",
        "order-secret",
        "order-unknown",
        "negative-limit",
        "direction",
        "cursor",
    ],
)
async def test_list_validation(
    stub: Stub, md: Metadata, fields: dict[str, Any], field: str
) -> None:
    await invalid(stub.ListConnections(pb.ListConnectionsRequest(**fields), metadata=md), field)


async def test_list_ordering(stub: Stub, md: Metadata) -> None:
    a, b, c = await _three(stub, md)
    assert await list_ids(stub, md) == [c.id, b.id, a.id]  # created_at desc by default
    assert await list_ids(stub, md, order_by="created_at", direction="asc") == [a.id, b.id, c.id]
    by_provider = await listing(stub, md, order_by="provider", direction="asc")
    assert [x.provider for x in by_provider.data] == ["webhook", "yooz", "yooz"]
    desc = await listing(stub, md, order_by="provider desc")
    assert [x.provider for x in desc.data] == ["yooz", "yooz", "webhook"]
    aip = await listing(stub, md, order_by="provider asc")
    assert [x.provider for x in aip.data] == ["webhook", "yooz", "yooz"]
    polled = await list_ids(stub, md, order_by="last_polled_at")
    assert sorted(polled) == sorted([a.id, b.id, c.id])
    updated = await list_ids(stub, md, order_by="updated_at", direction="asc")
    assert sorted(updated) == sorted([a.id, b.id, c.id])


@pytest.mark.parametrize("order_by", ["", "provider", "last_polled_at", "updated_at"])
async def test_list_pagination(stub: Stub, md: Metadata, order_by: str) -> None:
    made = {c.id for c in await _three(stub, md)}
    seen: list[str] = []
    cursor = ""
    for _ in range(10):
        page = await listing(
            stub, md, limit=1, cursor=cursor, order_by=order_by, include_total=True
        )
        assert len(page.data) <= 1
        assert page.HasField("total") and page.total == 3
        seen += [c.id for c in page.data]
        cursor = page.next_cursor
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 3, seen
    assert set(seen) == made
    # A cursor is bound to its query.
    first = await listing(stub, md, limit=1, order_by=order_by)
    other = "created_at" if order_by != "created_at" and order_by else "provider"
    await invalid(
        stub.ListConnections(
            pb.ListConnectionsRequest(limit=1, cursor=first.next_cursor, order_by=other),
            metadata=md,
        ),
        "cursor",
    )


async def test_cursors_are_bound_to_query_and_tenant(
    stub: Stub, md: Metadata, tokens: Tokens
) -> None:
    await _three(stub, md)
    first = await listing(stub, md, limit=1, filter='provider = "yooz"')
    assert first.next_cursor
    for changed in (
        {"filter": 'provider = "webhook"'},
        {"filter": ""},
        {"filter": 'provider = "yooz"', "show_deleted": True},
        {"filter": 'provider = "yooz"', "direction": "asc"},
    ):
        await invalid(
            stub.ListConnections(
                pb.ListConnectionsRequest(limit=1, cursor=first.next_cursor, **changed),
                metadata=md,
            ),
            "cursor",
        )
    other = tokens.md(uuid.uuid4())
    await create(stub, other)
    await invalid(
        stub.ListConnections(
            pb.ListConnectionsRequest(
                limit=1, cursor=first.next_cursor, filter='provider = "yooz"'
            ),
            metadata=other,
        ),
        "cursor",
    )
    tampered = first.next_cursor[:-2] + ("AA" if first.next_cursor[-2:] != "AA" else "BB")
    await invalid(
        stub.ListConnections(
            pb.ListConnectionsRequest(limit=1, cursor=tampered, filter='provider = "yooz"'),
            metadata=md,
        ),
        "cursor",
    )


async def test_list_total_and_show_deleted(stub: Stub, md: Metadata) -> None:
    a, b, c = await _three(stub, md)
    assert not (await listing(stub, md)).HasField("total")
    await delete(stub, md, c.id)
    page = await listing(stub, md, include_total=True)
    assert {x.id for x in page.data} == {a.id, b.id} and page.total == 2
    everything = await listing(stub, md, include_total=True, show_deleted=True)
    assert {x.id for x in everything.data} == {a.id, b.id, c.id} and everything.total == 3
    deleted = next(x for x in everything.data if x.id == c.id)
    assert deleted.state == DELETED and deleted.HasField("deleted_at")
    filtered = await listing(stub, md, show_deleted=True, filter='provider = "yooz"')
    assert {x.id for x in filtered.data} == {a.id, c.id}


async def test_large_limit_is_capped(stub: Stub, md: Metadata) -> None:
    await create(stub, md)
    page = await listing(stub, md, limit=100_000)
    assert len(page.data) == 1 and page.next_cursor == ""


async def test_tenant_isolation_in_lists(stub: Stub, md: Metadata, tokens: Tokens) -> None:
    mine = {c.id for c in await _three(stub, md)}
    other_md = tokens.md(uuid.uuid4())
    theirs = await create(stub, other_md)
    assert set(await list_ids(stub, md)) == mine
    assert await list_ids(stub, other_md) == [theirs.id]
    assert await list_ids(stub, other_md, show_deleted=True) == [theirs.id]
    total = await listing(stub, other_md, include_total=True)
    assert total.total == 1
    for cid in mine:
        assert await list_ids(stub, other_md, filter=f'id = "{cid}"') == []


# ---- permissions ------------------------------------------------------------------


async def test_read_permission_reads_but_cannot_write(
    stub: Stub, md: Metadata, tokens: Tokens, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    created = await create(stub, md)
    reader = tokens.md(tenant, permissions=["connections.read"])
    assert (await get(stub, reader, created.id)) == created
    assert await list_ids(stub, reader) == [created.id]
    await fails(create(stub, reader, active=False), Code.PERMISSION_DENIED)
    await fails(update(stub, reader, created.id, active=False), Code.PERMISSION_DENIED)
    await fails(update(stub, reader, created.id, api_key=canary()), Code.PERMISSION_DENIED)
    await fails(delete(stub, reader, created.id), Code.PERMISSION_DENIED)
    assert (await get(stub, md, created.id)) == created
    assert await count_rows(admin, tenant) == 1


async def test_other_permissions_do_not_grant_connections(
    stub: Stub, md: Metadata, tokens: Tokens, tenant: uuid.UUID
) -> None:
    created = await create(stub, md)
    invoices_only = tokens.md(tenant, permissions=["invoices.read", "invoices.write"])
    await fails(listing(stub, invoices_only), Code.PERMISSION_DENIED)
    await fails(get(stub, invoices_only, created.id), Code.PERMISSION_DENIED)
    await fails(create(stub, invoices_only, active=False), Code.PERMISSION_DENIED)
    nothing = tokens.md(tenant, permissions=[])
    await fails(listing(stub, nothing), Code.PERMISSION_DENIED)
    # Writing does not imply reading.
    writer = tokens.md(tenant, permissions=["connections.write"])
    second = await create(stub, writer, active=False)
    assert second.state == DISABLED
    await fails(get(stub, writer, second.id), Code.PERMISSION_DENIED)
    await fails(listing(stub, writer), Code.PERMISSION_DENIED)


async def test_no_or_bad_token_is_unauthenticated(stub: Stub, md: Metadata) -> None:
    created = await create(stub, md)
    for metadata in [(), (("authorization", "Bearer not-a-jwt"),), (("authorization", "x"),)]:
        await fails(listing(stub, metadata), Code.UNAUTHENTICATED)
        await fails(get(stub, metadata, created.id), Code.UNAUTHENTICATED)
        await fails(create(stub, metadata), Code.UNAUTHENTICATED)
        await fails(update(stub, metadata, created.id, active=False), Code.UNAUTHENTICATED)
        await fails(delete(stub, metadata, created.id), Code.UNAUTHENTICATED)
    assert (await get(stub, md, created.id)) == created


# ---- PollConnection ---------------------------------------------------------------


async def test_poll_checks_the_id_the_token_and_the_connection(stub: Stub, md: Metadata) -> None:
    """Polling itself is tested against the Yooz stand-in (test_ingestion_poll.py); here
    the service has no YOOZ_BASE_URL: the poll fails honestly and the state says why."""
    created = await create(stub, md)
    await fails(stub.PollConnection(pb.PollConnectionRequest(id=created.id)), Code.UNAUTHENTICATED)
    unknown = ids.new_id("con")[1]
    await fails(
        stub.PollConnection(pb.PollConnectionRequest(id=unknown), metadata=md), Code.NOT_FOUND
    )
    await fails(
        stub.PollConnection(pb.PollConnectionRequest(id="inv_nope"), metadata=md),
        Code.INVALID_ARGUMENT,
    )
    err = await fails(
        stub.PollConnection(pb.PollConnectionRequest(id=created.id), metadata=md),
        Code.UNAVAILABLE,
    )
    assert error_info(err).reason == "PROVIDER_UNAVAILABLE"
    state = await stub.GetConnection(pb.GetConnectionRequest(id=created.id), metadata=md)
    assert state.state == pb.CONNECTION_STATE_FAILING
    assert state.last_error == "YOOZ_BASE_URL is not set on the service"


# ---- idempotency ------------------------------------------------------------------


async def test_request_id_replays_the_first_response(
    stub: Stub, md: Metadata, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    key, secret = canary(), whsec()
    rid = str(uuid.uuid4())
    request = pb.CreateConnectionRequest(
        provider="yooz", api_key=key, webhook_secret=secret, request_id=rid
    )
    first_call = stub.CreateConnection(request, metadata=md)
    first = await first_call
    assert dict(await first_call.trailing_metadata()).get("idempotent-replayed") != "true"
    second_call = stub.CreateConnection(request, metadata=md)
    second = await second_call
    assert second.id == first.id and second == first
    assert dict(await second_call.trailing_metadata())["idempotent-replayed"] == "true"
    assert await count_rows(admin, tenant) == 1

    # Same request_id, different secret or different anything: refused, nothing written.
    for change in (
        {"api_key": canary()},
        {"webhook_secret": whsec()},
        {"webhook_secret": ""},
        {"active": False},
    ):
        other = pb.CreateConnectionRequest()
        other.CopyFrom(request)
        for name, value in change.items():
            setattr(other, name, value)
        err = await invalid(
            stub.CreateConnection(other, metadata=md), "request_id", "REQUEST_ID_REUSED"
        )
        assert_secret_free(error_text(err), key, secret, other.api_key)
    assert await count_rows(admin, tenant) == 1

    # What the idempotency table keeps says nothing about the secrets.
    plain = pb.CreateConnectionRequest()
    plain.CopyFrom(request)
    plain.ClearField("request_id")
    naive = hashlib.sha256(plain.SerializeToString(deterministic=True)).digest()
    rows = await admin.fetch(
        "SELECT request_hash, response FROM idempotency_keys WHERE tenant_id = $1", tenant
    )
    assert len(rows) == 1
    for row in rows:
        stored_hash, response = bytes(row["request_hash"]), bytes(row["response"])
        assert stored_hash != naive
        for value in (key, secret):
            assert value.encode() not in response
            assert value.encode() not in stored_hash
            assert hashlib.sha256(value.encode()).digest() not in stored_hash
        assert pb.Connection.FromString(response).id == first.id


async def test_request_id_is_per_tenant(stub: Stub, md: Metadata, tokens: Tokens) -> None:
    rid = uuid.uuid4().hex
    request = pb.CreateConnectionRequest(provider="yooz", api_key=canary(), request_id=rid)
    mine = await stub.CreateConnection(request, metadata=md)
    theirs = await stub.CreateConnection(request, metadata=tokens.md(uuid.uuid4()))
    assert mine.id != theirs.id and mine.tenant_id != theirs.tenant_id


async def test_invalid_request_id_is_refused(stub: Stub, md: Metadata) -> None:
    await invalid(
        stub.CreateConnection(
            pb.CreateConnectionRequest(provider="yooz", api_key=canary(), request_id="has space"),
            metadata=md,
        ),
        "request_id",
        "INVALID_REQUEST_ID",
    )


async def test_concurrent_retries_of_one_request_create_one_connection(
    stub: Stub, md: Metadata, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    request = pb.CreateConnectionRequest(
        provider="yooz", api_key=canary(), request_id=uuid.uuid4().hex
    )
    results = await asyncio.gather(*(stub.CreateConnection(request, metadata=md) for _ in range(8)))
    assert len({r.id for r in results}) == 1
    assert await count_rows(admin, tenant) == 1


# ---- logs ------------------------------------------------------------------------

_CLIENT_LOGGERS = frozenset({"httpx", "httpcore", "hpack", "hypothesis"})


class _Capture(logging.Handler):
    """Every record the server side emits, rendered as the service renders it plus all
    its attributes (args, extras, exception)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._json = JsonFormatter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in _CLIENT_LOGGERS:
            return
        try:
            text = self._json.format(record)
        except Exception as exc:  # a record that does not even format is a finding too
            text = f"unformattable record {record.name}: {exc!r}"
        self.lines.append(text + repr(vars(record)))


@pytest.fixture
def server_logs() -> Iterator[list[str]]:
    root = logging.getLogger()
    handler = _Capture()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_secrets_are_never_logged(
    stub: Stub,
    md: Metadata,
    http: httpx.AsyncClient,
    auth: dict[str, str],
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
    server_logs: list[str],
) -> None:
    """Success and failure paths at DEBUG, over gRPC and REST: no canary in any record."""
    secrets: list[str] = []

    def fresh() -> str:
        secrets.append(canary())
        return secrets[-1]

    def fresh_whsec() -> str:
        secrets.append(whsec())
        return secrets[-1]

    created = await create(stub, md, api_key=fresh(), webhook_secret=fresh_whsec())
    await fails(create(stub, md, api_key=fresh()), Code.ALREADY_EXISTS)
    await fails(create(stub, md, api_key=fresh() + " x"), Code.INVALID_ARGUMENT)
    await fails(
        create(stub, md, api_key=fresh(), webhook_secret="whsec_" + fresh()), Code.INVALID_ARGUMENT
    )
    await fails(create(stub, md, "sage", api_key=fresh()), Code.INVALID_ARGUMENT)
    await update(stub, md, created.id, api_key=fresh())
    await fails(update(stub, md, created.id, api_key=fresh(), etag='W/"999"'), Code.ABORTED)
    await fails(update(stub, md, created.id, api_key=fresh() + "\n"), Code.INVALID_ARGUMENT)
    rid = uuid.uuid4().hex
    await create(stub, md, active=False, api_key=fresh(), request_id=rid)
    await create(stub, md, active=False, api_key=secrets[-1], request_id=rid)
    await fails(
        create(stub, md, active=False, api_key=fresh(), request_id=rid), Code.INVALID_ARGUMENT
    )
    await fails(create(stub, tokens_free(md), api_key=fresh()), Code.UNAUTHENTICATED)
    await admin.execute(
        "UPDATE connections SET api_key_kid = 'gone-key' WHERE tenant_id = $1 AND id IN"
        " (SELECT id FROM connections WHERE tenant_id = $1 AND NOT active)",
        tenant,
    )
    await listing(stub, md)
    for body in (
        {"provider": "yooz", "apiKey": fresh(), "active": False},
        {"provider": "yooz", "apiKey": fresh()},
        {"provider": "yooz", "apiKey": fresh() + "é"},
        {"provider": "yooz", "apiKey": [fresh()]},
        {"provider": "yooz", "apiKey": fresh(), "webhookSecret": {"v": fresh()}},
        {"provider": "webhook", "apiKey": fresh(), "webhookSecret": fresh(), "endpointUrl": "x"},
    ):
        response = await http.post("/v1/invoice-connections", json=body, headers=auth)
        assert response.status_code in (201, 400, 409), response.text
        assert_response_secret_free(response, *secrets)
    truncated = f'{{"provider":"yooz","apiKey":"{fresh()}"'
    response = await http.post(
        "/v1/invoice-connections",
        content=truncated,
        headers={**auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert_response_secret_free(response, *secrets)
    patched = await http.patch(
        f"/v1/invoice-connections/{created.id}", json={"apiKey": fresh()}, headers=auth
    )
    assert patched.status_code == 200, patched.text

    assert server_logs, "no server log record was captured at DEBUG"
    for line in server_logs:
        assert_secret_free(line, *secrets)


def tokens_free(md: Metadata) -> Metadata:
    """The metadata without its credentials."""
    return tuple((k, v) for k, v in md if k != "authorization")


# ---- REST -------------------------------------------------------------------------


async def test_rest_create_is_201_with_location(
    http: httpx.AsyncClient, auth: dict[str, str], tenant: uuid.UUID
) -> None:
    key, secret = canary(), whsec()
    for prefix in ("/v1", ""):
        provider = "yooz" if prefix else "webhook"
        body: Json = {"provider": provider, "apiKey": key, "webhookSecret": secret}
        if provider == "webhook":
            body["endpointUrl"] = HOOK_URL
        created = await http.post(f"{prefix}/invoice-connections", json=body, headers=auth)
        assert created.status_code == 201, created.text
        assert_response_secret_free(created, key, secret)
        data: Json = created.json()
        assert data["provider"] == provider and data["active"] is True
        assert data["state"] == "CONNECTION_STATE_OK"
        if prefix:  # the canonical JSON
            assert_public_view(data)
            assert data["has_credentials"] is True and data["has_webhook_secret"] is True
            assert data["tenant_id"] == str(tenant)
        else:  # seed 004's spelling
            assert_seed_view(data)
            assert data["hasCredentials"] is True and data["hasWebhookSecret"] is True
            assert data["client"] == str(tenant)
            assert data["lastPolledAt"] is None
            # The same row at the canonical path: the same facts, the canonical spelling.
            canon = await http.get(f"/v1/invoice-connections/{data['id']}", headers=auth)
            assert canon.status_code == 200, canon.text
            assert_public_view(canon.json())
            assert canon.json()["tenant_id"] == str(tenant)
            assert canon.json()["has_credentials"] is True
            assert canon.json()["has_webhook_secret"] is True
            assert canon.json()["etag"] == data["etag"]
            assert to_millis(canon.json()["created_at"]) == data["createdAt"]
            assert to_millis(canon.json()["updated_at"]) == data["updatedAt"]
        assert created.headers["location"] == f"{prefix}/invoice-connections/{data['id']}"
        assert created.headers["etag"] == data["etag"]
        got = await http.get(created.headers["location"], headers=auth)
        assert got.status_code == 200 and got.json() == data
        assert got.headers["etag"] == data["etag"]
        assert_response_secret_free(got, key, secret)
        fresh = await http.get(
            created.headers["location"], headers={**auth, "If-None-Match": data["etag"]}
        )
        assert fresh.status_code == 304 and fresh.content == b""


async def test_rest_inactive_create_and_snake_case_body(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = await http.post(
        "/v1/invoice-connections",
        json={"provider": "yooz", "api_key": canary(), "active": False},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    data = created.json()
    assert data["active"] is False and data["state"] == "CONNECTION_STATE_DISABLED"
    assert data["has_webhook_secret"] is False


@pytest.mark.parametrize(
    ("body", "reason", "field"),
    [
        ({"provider": "sage"}, "UNKNOWN_PROVIDER", "provider"),
        ({"provider": ""}, "REQUIRED", "provider"),
        ({}, "REQUIRED", "provider"),
        ({"provider": "yooz", "apiKey": ""}, "REQUIRED", "api_key"),
        ({"provider": "yooz", "endpointUrl": HOOK_URL}, "NOT_ALLOWED_FOR_PROVIDER", "endpoint_url"),
        (
            {"provider": "webhook", "endpointUrl": "http://hooks.example.com/"},
            "INSECURE_URL",
            "endpoint_url",
        ),
        (
            {"provider": "webhook", "endpointUrl": "https://169.254.169.254/"},
            "FORBIDDEN_HOST",
            "endpoint_url",
        ),
        (
            {"provider": "webhook", "endpointUrl": "https://u:p@h.example/"},
            "INVALID_ENDPOINT_URL",
            "endpoint_url",
        ),
        ({"provider": "webhook", "endpointUrl": HOOK_URL, "webhookSecret": ""}, "REQUIRED", None),
        ({"provider": "yooz", "webhookSecret": "whsec_AAAA"}, "INVALID_WEBHOOK_SECRET", None),
    ],
    ids=[
        "unknown",
        "empty-provider",
        "no-provider",
        "no-key",
        "yooz-url",
        "http",
        "metadata-ip",
        "userinfo",
        "webhook-no-secret",
        "bad-whsec",
    ],
)
async def test_rest_create_errors_are_400(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    body: Json,
    reason: str,
    field: str | None,
) -> None:
    key = canary()
    payload = {"apiKey": key, "webhookSecret": whsec(), **body}
    response = await http.post("/v1/invoice-connections", json=payload, headers=auth)
    error = assert_rest_error(response, 400, "INVALID_ARGUMENT", reason)
    if field is not None:
        assert field in rest_fields(error), error
    assert_response_secret_free(response, key, payload["webhookSecret"], payload["apiKey"])


async def test_rest_bad_api_key_is_never_echoed(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    secret = canary()
    for key in (f"{secret} spaced", f"{secret}é", secret + "x" * 4097):
        response = await http.post(
            "/invoice-connections", json={"provider": "yooz", "apiKey": key}, headers=auth
        )
        error = assert_rest_error(response, 400, "INVALID_ARGUMENT", "INVALID_API_KEY")
        assert "api_key" in rest_fields(error)
        assert_response_secret_free(response, secret, key)


async def test_rest_conflicts_and_conditionals(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    first = await http.post(
        "/v1/invoice-connections", json={"provider": "yooz", "apiKey": canary()}, headers=auth
    )
    assert first.status_code == 201, first.text
    again = await http.post(
        "/v1/invoice-connections", json={"provider": "yooz", "apiKey": canary()}, headers=auth
    )
    assert_rest_error(again, 409, "ALREADY_EXISTS", "CONNECTION_ALREADY_ACTIVE")

    off = await http.post(
        "/v1/invoice-connections",
        json={"provider": "yooz", "apiKey": canary(), "active": False},
        headers=auth,
    )
    assert off.status_code == 201, off.text
    path = f"/v1/invoice-connections/{off.json()['id']}"
    enable = await http.patch(path, json={"active": True}, headers=auth)
    assert_rest_error(enable, 409, "ALREADY_EXISTS", "CONNECTION_ALREADY_ACTIVE")

    etag = off.json()["etag"]
    rotated = await http.patch(path, json={"apiKey": canary()}, headers={**auth, "If-Match": etag})
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["etag"] != etag == off.json()["etag"]
    assert rotated.headers["etag"] == rotated.json()["etag"]
    stale_header = await http.patch(
        path, json={"apiKey": canary()}, headers={**auth, "If-Match": etag}
    )
    assert_rest_error(stale_header, 412, "ABORTED", "ETAG_MISMATCH")
    stale_body = await http.patch(path, json={"apiKey": canary(), "etag": etag}, headers=auth)
    assert_rest_error(stale_body, 409, "ABORTED", "ETAG_MISMATCH")
    stale_delete = await http.delete(path, headers={**auth, "If-Match": etag})
    assert_rest_error(stale_delete, 412, "ABORTED", "ETAG_MISMATCH")
    assert not (await http.get(path, headers=auth)).json().get("deleted_at")

    none = await http.patch(path, json={}, headers=auth)
    body = assert_rest_error(none, 400, "INVALID_ARGUMENT", "NO_FIELDS")
    assert "update_mask" in rest_fields(body)
    empty_key = await http.patch(path, json={"apiKey": ""}, headers=auth)
    assert_rest_error(empty_key, 400, "INVALID_ARGUMENT", "REQUIRED")
    bad_mask = await http.patch(
        path, json={"active": False, "updateMask": "provider"}, headers=auth
    )
    assert_rest_error(bad_mask, 400, "INVALID_ARGUMENT", "INVALID_UPDATE_MASK")
    removed = await http.patch(path, json={"webhookSecret": ""}, headers=auth)
    assert removed.status_code == 200 and removed.json()["has_webhook_secret"] is False


async def test_rest_delete_is_204_then_404(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    created = await http.post(
        "/v1/invoice-connections", json={"provider": "yooz", "apiKey": canary()}, headers=auth
    )
    path = f"/v1/invoice-connections/{created.json()['id']}"
    deleted = await http.delete(path, headers=auth)
    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    assert_rest_error(await http.delete(path, headers=auth), 404, "NOT_FOUND")
    patched = await http.patch(path, json={"apiKey": canary()}, headers=auth)
    assert_rest_error(patched, 404, "NOT_FOUND")
    got = await http.get(path, headers=auth)
    assert got.status_code == 200
    assert got.json()["state"] == "CONNECTION_STATE_DELETED" and got.json()["active"] is False
    assert got.json()["deleted_at"]
    listed = await http.get("/v1/invoice-connections", headers=auth)
    assert listed.json()["data"] == []
    shown = await http.get("/v1/invoice-connections?show_deleted=true", headers=auth)
    assert [c["id"] for c in shown.json()["data"]] == [created.json()["id"]]


async def test_rest_ids_and_not_found(
    http: httpx.AsyncClient, auth: dict[str, str], tokens: Tokens
) -> None:
    for bad in (f"inv_{VALID_BODY}", "nonsense", f"con_{VALID_BODY[:-2]}"):
        for method in ("GET", "DELETE"):
            response = await http.request(method, f"/v1/invoice-connections/{bad}", headers=auth)
            body = assert_rest_error(response, 400, "INVALID_ARGUMENT")
            assert "id" in rest_fields(body)
        patched = await http.patch(
            f"/invoice-connections/{bad}", json={"active": False}, headers=auth
        )
        assert_rest_error(patched, 400, "INVALID_ARGUMENT")

    created = await http.post(
        "/v1/invoice-connections", json={"provider": "yooz", "apiKey": canary()}, headers=auth
    )
    mine = created.json()["id"]
    unknown = f"con_{OTHER_BODY}"
    intruder = {"Authorization": f"Bearer {tokens.token(uuid.uuid4())}"}
    for method, json_body in (("GET", None), ("PATCH", {"active": False}), ("DELETE", None)):
        theirs = await http.request(
            method, f"/v1/invoice-connections/{mine}", json=json_body, headers=intruder
        )
        missing = await http.request(
            method, f"/v1/invoice-connections/{unknown}", json=json_body, headers=intruder
        )
        a = assert_rest_error(theirs, 404, "NOT_FOUND")
        b = assert_rest_error(missing, 404, "NOT_FOUND")
        a.pop("meta"), b.pop("meta")
        assert _without(json.dumps(a), mine) == _without(json.dumps(b), unknown)
    assert (await http.get(f"/v1/invoice-connections/{mine}", headers=auth)).json()["active"]


async def test_rest_poll_without_a_provider_url_is_503(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = await http.post(
        "/v1/invoice-connections", json={"provider": "yooz", "apiKey": canary()}, headers=auth
    )
    response = await http.post(
        f"/v1/invoice-connections/{created.json()['id']}:poll", json={}, headers=auth
    )
    assert_rest_error(response, 503, "UNAVAILABLE", "PROVIDER_UNAVAILABLE")


async def test_rest_permissions(
    http: httpx.AsyncClient, auth: dict[str, str], tokens: Tokens, tenant: uuid.UUID
) -> None:
    created = await http.post(
        "/v1/invoice-connections", json={"provider": "yooz", "apiKey": canary()}, headers=auth
    )
    path = f"/v1/invoice-connections/{created.json()['id']}"
    reader = {"Authorization": f"Bearer {tokens.token(tenant, permissions=['connections.read'])}"}
    assert (await http.get("/v1/invoice-connections", headers=reader)).status_code == 200
    assert (await http.get(path, headers=reader)).status_code == 200
    denied = [
        await http.post(
            "/v1/invoice-connections",
            json={"provider": "yooz", "apiKey": canary(), "active": False},
            headers=reader,
        ),
        await http.patch(path, json={"active": False}, headers=reader),
        await http.delete(path, headers=reader),
    ]
    for response in denied:
        assert_rest_error(response, 403, "PERMISSION_DENIED")
    invoices = {"Authorization": f"Bearer {tokens.token(tenant, permissions=['invoices.read'])}"}
    assert_rest_error(
        await http.get("/invoice-connections", headers=invoices), 403, "PERMISSION_DENIED"
    )
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}, {"Cookie": "session=garbage"}):
        assert_rest_error(
            await http.get("/invoice-connections", headers=headers), 401, "UNAUTHENTICATED"
        )
        assert_rest_error(await http.delete(path, headers=headers), 401, "UNAUTHENTICATED")
    still = await http.get(path, headers=auth)
    assert still.json()["active"] is True and not still.json().get("deleted_at")


async def test_rest_list_query_parameters(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    ids = []
    for body in (
        {"provider": "yooz", "apiKey": canary(), "webhookSecret": whsec()},
        {"provider": "yooz", "apiKey": canary(), "active": False},
        {
            "provider": "webhook",
            "apiKey": canary(),
            "webhookSecret": whsec(),
            "endpointUrl": HOOK_URL,
        },
    ):
        response = await http.post("/v1/invoice-connections", json=body, headers=auth)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    yooz = await http.get(
        "/v1/invoice-connections",
        params={"filter": 'provider = "yooz" AND active = true'},
        headers=auth,
    )
    assert [c["id"] for c in yooz.json()["data"]] == [ids[0]]
    no_secret = await http.get(
        "/invoice-connections", params={"filter": "has_webhook_secret = false"}, headers=auth
    )
    assert no_secret.status_code == 200, no_secret.text
    assert [c["id"] for c in no_secret.json()] == [ids[1]]  # seed 004: a bare array
    assert no_secret.json()[0]["hasWebhookSecret"] is False
    assert next_page(no_secret) is None
    # Seed 004's pages: one a page, the next one in the Link header, none after the last.
    seed_seen: list[str] = []
    url: str | None = "/invoice-connections?limit=1&order_by=provider"
    for _ in range(5):
        assert url is not None
        page = await http.get(url, headers=auth)
        assert page.status_code == 200, page.text
        assert isinstance(page.json(), list) and len(page.json()) == 1, page.text
        assert_seed_view(page.json()[0])
        seed_seen += [c["id"] for c in page.json()]
        url = next_page(page)
        if url is None:
            break
        assert "limit=1" in url and "order_by=provider" in url, url
    assert len(seed_seen) == 3 and set(seed_seen) == set(ids)
    seen: list[str] = []
    params: dict[str, str] = {"limit": "1", "order_by": "provider", "include_total": "true"}
    for _ in range(5):
        page = await http.get("/v1/invoice-connections", params=params, headers=auth)
        assert page.status_code == 200, page.text
        assert page.json()["total"] == 3
        seen += [c["id"] for c in page.json()["data"]]
        if not page.json()["next_cursor"]:
            break
        params["cursor"] = page.json()["next_cursor"]
    assert len(seen) == 3 and set(seen) == set(ids)
    for bad in ({"limit": "-1"}, {"order_by": "api_key"}, {"filter": 'api_key = "x"'}):
        response = await http.get("/v1/invoice-connections", params=bad, headers=auth)
        assert_rest_error(response, 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize("prefix", ["", "/v1"])
async def test_seed_004_curl_examples(
    http: httpx.AsyncClient, tokens: Tokens, tenant: uuid.UUID, prefix: str
) -> None:
    """The seed's curl examples, verbatim but for an ASCII key: session cookie auth. The
    seed's path answers in seed 004's spelling (camelCase, a bare array), the /v1 path in
    the canonical JSON: the same facts under both spellings."""
    seed = not prefix

    def spelt(name: str) -> str:
        return seed_key(name) if seed else name

    def rows(response: httpx.Response) -> list[Json]:
        assert response.status_code == 200, response.text
        if seed:
            assert next_page(response) is None
            found: list[Json] = response.json()
            assert isinstance(found, list), response.text
            return found
        data: list[Json] = response.json()["data"]
        assert not response.json()["next_cursor"]
        return data

    session = {"Cookie": f"session={tokens.token(tenant)}"}
    json_type = {"Content-Type": "application/json"}
    collection = f"{prefix}/invoice-connections"

    listed = await http.get(collection, headers=session)
    assert rows(listed) == []

    key, secret = "yz_live_sk_" + uuid.uuid4().hex, whsec()
    seed_body = json.dumps(
        {"provider": "yooz", "apiKey": key, "webhookSecret": secret, "active": True}, indent=2
    )
    created = await http.post(collection, content=seed_body, headers={**json_type, **session})
    assert created.status_code == 201, created.text
    assert_response_secret_free(created, key, secret)
    view = created.json()
    if seed:
        assert_seed_view(view)
        assert view["lastPolledAt"] is None  # explicit null until polled
    else:
        assert_public_view(view)
        assert "last_polled_at" not in view or view["last_polled_at"] is None
    assert view["provider"] == "yooz" and view["active"] is True
    assert view[spelt("has_credentials")] is True and view[spelt("has_webhook_secret")] is True
    assert view[spelt("tenant_id")] == str(tenant)
    assert view[spelt("created_at")] and view[spelt("updated_at")]
    assert created.headers["location"] == f"{collection}/{view['id']}"

    again = await http.post(collection, content=seed_body, headers={**json_type, **session})
    assert_rest_error(again, 409, "ALREADY_EXISTS", "CONNECTION_ALREADY_ACTIVE")
    unknown = await http.post(
        collection,
        content=json.dumps({"provider": "sage", "apiKey": key}),
        headers={**json_type, **session},
    )
    assert_rest_error(unknown, 400, "INVALID_ARGUMENT", "UNKNOWN_PROVIDER")
    assert_response_secret_free(unknown, key)

    item = f"{collection}/{view['id']}"
    new_key = "yz_live_sk_new" + uuid.uuid4().hex
    patched = await http.patch(
        item, content=json.dumps({"apiKey": new_key}), headers={**json_type, **session}
    )
    assert patched.status_code == 200, patched.text
    assert_response_secret_free(patched, key, new_key, secret)
    (assert_seed_view if seed else assert_public_view)(patched.json())
    assert patched.json()[spelt("has_credentials")] is True
    assert patched.json()[spelt("has_webhook_secret")] is True
    assert patched.json()["etag"] != view["etag"]
    assert patched.json()[spelt("created_at")] == view[spelt("created_at")]

    empty = await http.patch(item, content="{}", headers={**json_type, **session})
    assert_rest_error(empty, 400, "INVALID_ARGUMENT", "NO_FIELDS")
    missing = await http.patch(
        f"{collection}/{UNKNOWN_CON}",
        content=json.dumps({"apiKey": new_key}),
        headers={**json_type, **session},
    )
    assert_rest_error(missing, 404, "NOT_FOUND")
    assert_response_secret_free(missing, new_key)

    # curl -X DELETE sends no Content-Type (and no body): only the cookie.
    request = http.build_request("DELETE", item, headers=session)
    assert "content-type" not in request.headers
    deleted = await http.send(request)
    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    gone = await http.send(http.build_request("DELETE", item, headers=session))
    assert_rest_error(gone, 404, "NOT_FOUND")

    after = await http.get(collection, headers=session)
    assert rows(after) == []


async def test_rest_request_id_replay(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    key = canary()
    body = {"provider": "yooz", "apiKey": key, "requestId": uuid.uuid4().hex}
    first = await http.post("/v1/invoice-connections", json=body, headers=auth)
    second = await http.post("/v1/invoice-connections", json=body, headers=auth)
    assert first.status_code == 201 and second.status_code == 201, second.text
    assert first.json()["id"] == second.json()["id"]
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    reused = await http.post(
        "/v1/invoice-connections", json={**body, "apiKey": canary()}, headers=auth
    )
    assert_rest_error(reused, 400, "INVALID_ARGUMENT", "REQUEST_ID_REUSED")
    assert_response_secret_free(reused, key)


# Any provider string that is not a provider: a 400, never a 500 nor a write.
_PROVIDERS = st.text(max_size=80).filter(lambda s: s not in ("yooz", "webhook"))


def _fuzz_providers(base_url: str, headers: dict[str, str]) -> list[int]:
    statuses: list[int] = []
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:

        @settings(
            max_examples=40,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(provider=_PROVIDERS)
        def check(provider: str) -> None:
            key = canary()
            response = client.post(
                "/v1/invoice-connections", json={"provider": provider, "apiKey": key}
            )
            statuses.append(response.status_code)
            assert response.status_code == 400, (provider, response.text)
            assert key not in response.text
            reason = rest_reason(response.json())
            assert reason in {"UNKNOWN_PROVIDER", "REQUIRED", "INVALID_TEXT", "TOO_LONG"}

        check()
    return statuses


async def test_rest_arbitrary_providers_are_400(
    rest_base_url: str, auth: dict[str, str], tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    statuses = await asyncio.to_thread(_fuzz_providers, rest_base_url, auth)
    assert statuses and set(statuses) == {400}
    assert await count_rows(admin, tenant) == 0
