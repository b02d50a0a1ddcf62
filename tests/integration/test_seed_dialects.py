"""The seed paths in their seeds' own wire formats (service/gateway/dialects), over the real
REST gateway (in-process, real TCP), the real gRPC server and a real PostgreSQL.

Every request example of /work/shared/seeds/000..004 is replayed as the seed writes it (only
the host, the credentials and the ids changed) and its response compared with the seed's
example response: every key the example shows is present with the same JSON type. Every
JSON:API success document (seeds 000 and 003, the records query included) is validated
against the official JSON:API schema (tests/fixtures/jsonapi-1.0.schema.json). The canonical
paths keep the canonical JSON. Every test runs in its own random tenant. Sections:

  helpers · seed 004 (connections) · seed 003 (invoice transactions, records query)
  · seed 000 (invoice workspace connectors) · seed 001 (finance invoices)
  · seed 002 (invoice document) · canonical paths
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from google.protobuf import field_mask_pb2
from invoicing.v1 import allocations_pb2 as apb
from invoicing.v1 import invoices_pb2 as ipb
from jsonschema import Draft7Validator, Draft202012Validator, ValidationError, validators

from service import app
from tests.conftest import Tokens, sample_invoice
from tests.factories import Allocs, Invoices, Metadata, create_txn

Json = dict[str, Any]

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "jsonapi-1.0.schema.json"


def _additional_properties(validator: Any, allowed: Any, instance: Any, schema: Json) -> Any:
    """`additionalProperties` as JSON Schema 2020-12 defines it. jsonschema 4.x joins the
    patternProperties keys with "|" and skips the result when it is empty, so the pattern
    "" (matches every name), which the JSON:API schema uses for `meta`, `attributes` and
    `relationships`, counts as no pattern: every member would be "additional" and any
    document with attributes invalid (python-jsonschema/jsonschema PR #1522)."""
    if not validator.is_type(instance, "object"):
        return
    patterns = list(schema.get("patternProperties", {}))
    extras = [
        name
        for name in instance
        if name not in schema.get("properties", {})
        and not any(re.search(pattern, name) for pattern in patterns)
    ]
    if validator.is_type(allowed, "object"):
        for name in extras:
            yield from validator.descend(instance[name], allowed, path=name)
    elif allowed is False and extras:
        yield ValidationError(f"additional properties are not allowed: {extras}")


# The schema also says "data and errors never both" with the draft-07 keyword
# `dependencies`, which 2020-12 replaced (dependentSchemas) and Draft202012Validator ignores.
JsonApiValidator = validators.extend(
    Draft202012Validator,
    {
        "additionalProperties": _additional_properties,
        "dependencies": Draft7Validator.VALIDATORS["dependencies"],
    },
)
JSONAPI = JsonApiValidator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ISO_DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
VALID_BODY = "01JD6N8Q6Z7T3M3Y5C4V8R2K1P"  # 26 Crockford base32 characters
UNKNOWN_CON = f"con_{VALID_BODY}"
UNKNOWN_ALC = f"alc_{VALID_BODY}"
PARTY = "0b9c4a52-8d0e-4a8e-9a51-2f7d4d2c1e11"  # sample_invoice's counterparty
WORKSPACE_NAME = "ACME Holdings"

# ---- the seeds' example responses, copied as the seeds show them -----------------------

SEED_004_LIST_RESPONSE: list[Json] = [
    {
        "id": "64b2e4d19ab7e72a4fb4ac20",
        "client": "5d9b5b5b9ab7e72a4fb4ae69",
        "provider": "yooz",
        "active": True,
        "hasCredentials": True,
        "hasWebhookSecret": True,
        "lastPolledAt": "2024-06-20T06:00:00.000Z",
        "createdAt": "2024-01-15T10:30:00.000Z",
        "updatedAt": "2024-06-20T06:00:00.000Z",
    }
]
SEED_004_CREATE_RESPONSE: Json = {
    "id": "64b2e4d19ab7e72a4fb4ac20",
    "client": "5d9b5b5b9ab7e72a4fb4ae69",
    "provider": "yooz",
    "active": True,
    "hasCredentials": True,
    "hasWebhookSecret": True,
    "lastPolledAt": None,
    "createdAt": "2024-06-22T09:00:00.000Z",
    "updatedAt": "2024-06-22T09:00:00.000Z",
}
SEED_004_PATCH_RESPONSE: Json = {
    "id": "64b2e4d19ab7e72a4fb4ac20",
    "client": "5d9b5b5b9ab7e72a4fb4ae69",
    "provider": "yooz",
    "active": True,
    "hasCredentials": True,
    "hasWebhookSecret": True,
    "lastPolledAt": "2024-06-20T06:00:00.000Z",
    "createdAt": "2024-01-15T10:30:00.000Z",
    "updatedAt": "2024-06-22T11:45:00.000Z",
}
# Shown as a string by the examples of a connection that was polled; null until then.
LAST_POLLED_MAY_BE_NULL = frozenset({"$.lastPolledAt", "$[].lastPolledAt"})

SEED_003_LIST_RESPONSE: Json = {
    "data": [
        {
            "type": "invoice_transaction",
            "id": "e1f2a3b4-0000-4000-8000-0000000000ab",
            "attributes": {
                "invoice_transaction_id": "e1f2a3b4-0000-4000-8000-0000000000ab",
                "amount": 1200,
                "currency": "USD",
                "accounting_amount": 1200,
                "accounting_currency": "USD",
                "allocation_type": "full",
                "is_partial": False,
                "created_at": "2026-04-28T11:00:00Z",
                "updated_at": "2026-04-28T11:00:00Z",
                "deleted_at": None,
            },
            "relationships": {
                "invoice": {
                    "data": {"type": "invoice", "id": "00000000-0000-4000-8000-000000000001"}
                },
                "transaction": {
                    "data": {"type": "transaction", "id": "00000000-0000-4000-8000-000000000001"}
                },
                "subscription": {
                    "data": {"type": "subscription", "id": "00000000-0000-4000-8000-000000000001"}
                },
                "exchange_rate": {
                    "data": {"type": "exchange_rate", "id": "00000000-0000-4000-8000-000000000001"}
                },
            },
        }
    ],
    "meta": {"total": 1, "count": 1},
    "links": {"next": None},
}
# A to-one relationship is `{"data": null}` when the allocation has none (seed 003's
# "object or null"); links.next is a cursor while there is a next page.
SEED_003_LOOSE = frozenset(
    {
        "$.data[].relationships.subscription.data",
        "$.data[].relationships.exchange_rate.data",
        "$.links.next",
    }
)
SEED_003_ERROR: Json = {
    "code": "BAD_REQUEST",
    "status": 400,
    "title": "Bad Request",
    "message": "See title.",
    "meta": {"trace_id": "a1b2c3", "log_id": "a1b2c3"},
}
SEED_003_QUERY: Json = {
    "root": "invoice_transactions",
    "whereClause": {"workspace": {"name": {"_ilike": "%acme%"}}},
    "orderBy": {"field": "workspace.name", "direction": "asc"},
}

SEED_000_RESPONSE: Json = {
    "data": {
        "type": "invoice_workspace_connector",
        "id": "1047382",
        "attributes": {
            "direction": "input",
            "created_at": "2026-05-10T14:23:11.000Z",
            "updated_at": "2026-05-10T14:23:11.000Z",
            "deleted_at": None,
        },
        "relationships": {
            "invoice": {"data": {"type": "invoice", "id": "f3a1e2b4-9c87-4d62-b105-002de8f1a234"}},
            "workspace_connector": {
                "data": {
                    "type": "workspace_connector",
                    "id": "a9c34f21-1234-4abc-9def-5678def01234",
                }
            },
        },
    }
}
# Seed 000 documents updated_at as "Nullable — will be null until the first update after
# creation in practice", although its example shows a string.
SEED_000_LOOSE = frozenset({"$.data.attributes.updated_at", "$.data[].attributes.updated_at"})

SEED_002_IDENTIFIERS = (
    "id",
    "isSupplierInvoice",
    "isClientInvoice",
    "clientCompanyId",
    "clientIsInternal",
    "supplierCompanyId",
    "supplierIsInternal",
    "projectId",
    "orderId",
    "jobId",
    "projectSequenceId",
)
SEED_002_ROOTS = {
    "identifiers": dict,
    "properties": dict,
    "lines": list,
    "totals": dict,
    "attachments": dict,
    "distribution": dict,
    "aggregation": dict,
    "related": list,
}


# ---- helpers ------------------------------------------------------------------------------


def kind(value: Any) -> str:
    """The JSON type of a decoded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    assert isinstance(value, dict), repr(value)
    return "object"


def assert_like(example: Any, actual: Any, loose: frozenset[str] = frozenset(), at: str = "$"):
    """Every key `example` shows is in `actual` with the same JSON type, recursively (each
    item of an array against the example's first item). At a `loose` path either side may
    be null instead."""
    if at in loose and (example is None or actual is None):
        return
    assert kind(actual) == kind(example), f"{at}: {kind(actual)} {actual!r}, seed: {example!r}"
    if isinstance(example, dict):
        for key, value in example.items():
            assert key in actual, f"{at}.{key} missing from {sorted(actual)}"
            assert_like(value, actual[key], loose, f"{at}.{key}")
    elif isinstance(example, list) and example:
        for item in actual:
            assert_like(example[0], item, loose, f"{at}[]")


def assert_jsonapi(response: httpx.Response) -> Json:
    """A JSON:API success document, valid against the official schema."""
    assert response.status_code < 300, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith("application/json"), response.headers
    document: Json = response.json()
    errors = sorted(JSONAPI.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "not JSON:API: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in errors[:5]
    )
    return document


def exact(response: httpx.Response) -> Any:
    """The body with every fraction number as a Decimal of its exact text."""
    return json.loads(response.text, parse_float=Decimal)


def assert_seed_003_error(response: httpx.Response, status: int, code: str) -> Json:
    """Seed 003's error body: code, status, title, message, meta.trace_id, meta.log_id."""
    assert response.status_code == status, response.text
    body: Json = response.json()
    assert_like(SEED_003_ERROR, body)
    assert body["code"] == code and body["status"] == status, body
    assert body["title"] and body["message"], body
    assert body["meta"]["trace_id"] and body["meta"]["log_id"], body
    assert response.headers["x-request-id"] == body["meta"]["trace_id"]
    return body


def violated_fields(body: Json) -> list[str]:
    return [v["field"] for d in body.get("details", []) for v in d.get("field_violations", [])]


def whsec() -> str:
    """A webhook secret as Standard Webhooks spells one (whsec_ + base64 of 32 bytes)."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


@dataclasses.dataclass
class Actor:
    """One tenant: its token as a bearer header, a session cookie and gRPC metadata."""

    tenant: uuid.UUID
    token: str
    md: Metadata

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def cookie(self) -> dict[str, str]:
        return {"Cookie": f"session={self.token}"}


@pytest.fixture
def actor(tokens: Tokens) -> Actor:
    tenant = uuid.uuid4()
    return Actor(tenant, tokens.token(tenant), tokens.md(tenant))


@pytest.fixture
async def http(server: app.Running) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{server.gateway_port}", timeout=30
    ) as client:
        yield client


async def issued(invoices: Invoices, md: Metadata, **overrides: Any) -> ipb.Invoice:
    created: ipb.Invoice = await invoices.CreateInvoice(
        ipb.CreateInvoiceRequest(invoice=sample_invoice(**overrides)), metadata=md
    )
    result: ipb.Invoice = await invoices.IssueInvoice(
        ipb.IssueInvoiceRequest(id=created.id), metadata=md
    )
    return result


def line(unit_price: str) -> ipb.LineItem:
    return ipb.LineItem(description="Work", quantity="10", unit_price=unit_price, tax_rate="0.20")


@dataclasses.dataclass
class Ledger:
    """Three issued invoices, each paid once (PayInvoice: one transaction, one allocation).

    name  invoice total  payment (= transaction amount)
    a     1200.00        1200.00 (full)
    b     3600.00         100.00 (partial)
    c     2400.00         300.00 (partial)
    """

    invoices: dict[str, ipb.Invoice]
    allocations: dict[str, apb.Allocation]

    def name(self, allocation_id: str) -> str:
        return next(n for n, a in self.allocations.items() if a.id == allocation_id)


@pytest.fixture
async def ledger(invoices: Invoices, allocations: Allocs, actor: Actor) -> Ledger:
    await allocations.UpdateWorkspaceSettings(
        apb.UpdateWorkspaceSettingsRequest(
            settings=apb.WorkspaceSettings(name=WORKSPACE_NAME),
            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
        ),
        metadata=actor.md,
    )
    plan = {"a": ("100.00", ""), "b": ("300.00", "100.00"), "c": ("200.00", "300.00")}
    found = Ledger({}, {})
    for name, (unit_price, amount) in plan.items():
        invoice = await issued(invoices, actor.md, line_items=[line(unit_price)])
        await invoices.PayInvoice(
            ipb.PayInvoiceRequest(id=invoice.id, amount=amount, reference=f"WIRE-{name}"),
            metadata=actor.md,
        )
        page: apb.ListAllocationsResponse = await allocations.ListAllocations(
            apb.ListAllocationsRequest(filter=f"invoice_id = {invoice.id}"), metadata=actor.md
        )
        (allocation,) = page.data
        found.invoices[name], found.allocations[name] = invoice, allocation
    assert [found.invoices[n].total for n in "abc"] == ["1200.00", "3600.00", "2400.00"]
    assert [found.allocations[n].amount for n in "abc"] == ["1200.00", "100.00", "300.00"]
    return found


async def seed_003_pages(http: httpx.AsyncClient, actor: Actor, **params: Any) -> list[str]:
    """Every page of GET /v1/invoice-transactions, following links.next; the ids in order."""
    ids: list[str] = []
    cursor = ""
    for _ in range(20):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = assert_jsonapi(
            await http.get("/v1/invoice-transactions", params=query, headers=actor.bearer)
        )
        assert page["meta"]["count"] == len(page["data"]), page["meta"]
        ids += [item["id"] for item in page["data"]]
        cursor = page["links"]["next"]
        if cursor is None:
            assert len(ids) == len(set(ids)), ids
            return ids
        assert isinstance(cursor, str) and cursor, page["links"]
        assert page["data"], "a page with a next cursor must not be empty"
    raise AssertionError(f"no last page after 20: {ids}")


def jsonapi_errors(document: Any) -> list[str]:
    return [e.message for e in JSONAPI.iter_errors(document)]


def test_the_jsonapi_validator_accepts_valid_and_refuses_invalid_documents() -> None:
    JsonApiValidator.check_schema(JSONAPI.schema)
    resource = {
        "type": "thing",
        "id": "1",
        "attributes": {"name": "x", "created_at": None},
        "relationships": {"owner": {"data": {"type": "person", "id": "9"}}},
    }
    valid = {"data": [resource], "meta": {"total": 1}, "links": {"next": None}}
    assert jsonapi_errors(valid) == []
    assert jsonapi_errors({"data": resource}) == []
    assert jsonapi_errors({"data": None}) == []
    assert jsonapi_errors({"errors": [{"status": "400", "code": "BAD_REQUEST"}]}) == []
    for invalid in (
        {},  # neither data, errors nor meta
        {"data": [resource], "errors": []},  # data and errors
        {"data": {"id": "1", "attributes": {}}},  # no type
        {"data": {**resource, "attributes": {"id": "2"}}},  # id among the attributes
        {"data": {**resource, "extra": 1}},  # not a resource member
        {"data": {**resource, "relationships": {"owner": {"data": {"id": "9"}}}}},
        {"data": [resource], "links": {"next": 5}},
        {"data": [resource], "meta": {"bad name!": 1}},
        {"data": [resource], "code": "BAD_REQUEST"},  # no other top-level member
    ):
        assert jsonapi_errors(invalid), invalid
    # The unpatched validator refuses even the valid document (the library bug above).
    assert [e.message for e in Draft202012Validator(JSONAPI.schema).iter_errors(valid)]


# ---- seed 004: /invoice-connections ---------------------------------------------------------


async def test_seed_004_curl_examples_replayed(
    http: httpx.AsyncClient, actor: Actor, admin: asyncpg.Connection
) -> None:
    api_key, new_key = (f"yz_live_sk_{uuid.uuid4().hex}" for _ in range(2))
    secret = whsec()
    seen: list[httpx.Response] = []

    # curl -G https://jarvis.bob-desk.com/invoice-connections -H "Cookie: session={cookie}"
    empty = await http.get("/invoice-connections", headers=actor.cookie)
    seen.append(empty)
    assert empty.status_code == 200, empty.text
    assert empty.json() == []

    # curl -X POST .../invoice-connections -H "Content-Type: application/json" -H "Cookie: ..."
    body = json.dumps(
        {"provider": "yooz", "apiKey": api_key, "webhookSecret": secret, "active": True}, indent=4
    )
    created = await http.post(
        "/invoice-connections",
        content=body,
        headers={"Content-Type": "application/json", **actor.cookie},
    )
    seen.append(created)
    assert created.status_code == 201, created.text
    view: Json = created.json()
    assert_like(SEED_004_CREATE_RESPONSE, view)
    assert view["provider"] == "yooz" and view["active"] is True
    assert view["client"] == str(actor.tenant)
    assert view["hasCredentials"] is True and view["hasWebhookSecret"] is True
    assert view["lastPolledAt"] is None  # never polled: explicit null
    assert MILLIS.match(view["createdAt"]) and MILLIS.match(view["updatedAt"]), view
    assert view["createdAt"] == view["updatedAt"]
    connection_id = view["id"]
    assert created.headers["location"] == f"/invoice-connections/{connection_id}"

    # curl -X PATCH .../invoice-connections/:id -d '{"apiKey": "yz_live_sk_new…"}'
    patched = await http.patch(
        f"/invoice-connections/{connection_id}",
        content=json.dumps({"apiKey": new_key}, indent=4),
        headers={"Content-Type": "application/json", **actor.cookie},
    )
    seen.append(patched)
    assert patched.status_code == 200, patched.text
    after: Json = patched.json()
    assert_like(SEED_004_PATCH_RESPONSE, after, LAST_POLLED_MAY_BE_NULL)
    assert after["id"] == connection_id and after["hasCredentials"] is True
    assert after["hasWebhookSecret"] is True and after["active"] is True
    assert after["lastPolledAt"] is None
    assert MILLIS.match(after["createdAt"]) and MILLIS.match(after["updatedAt"]), after
    assert after["createdAt"] == view["createdAt"] and after["updatedAt"] >= view["updatedAt"]

    listed = await http.get("/invoice-connections", headers=actor.cookie)
    seen.append(listed)
    assert listed.status_code == 200, listed.text
    items = listed.json()
    assert isinstance(items, list) and [c["id"] for c in items] == [connection_id]
    assert_like(SEED_004_LIST_RESPONSE, items, LAST_POLLED_MAY_BE_NULL)
    assert items[0]["lastPolledAt"] is None
    assert MILLIS.match(items[0]["createdAt"]) and MILLIS.match(items[0]["updatedAt"])

    # curl -X DELETE .../invoice-connections/:id -H "Cookie: session={cookie}"
    deleted = await http.delete(f"/invoice-connections/{connection_id}", headers=actor.cookie)
    seen.append(deleted)
    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    gone = await http.get("/invoice-connections", headers=actor.cookie)
    seen.append(gone)
    assert gone.status_code == 200 and gone.json() == []
    row = await admin.fetchrow(
        "SELECT deleted_at, active FROM connections WHERE tenant_id = $1", actor.tenant
    )
    assert row is not None and row["deleted_at"] is not None

    for response in seen:
        for value in (api_key, secret, new_key, secret.removeprefix("whsec_")):
            assert value not in response.text, f"a secret in {response.request.url}"
        assert "apiKey" not in response.text and "webhookSecret" not in response.text


async def test_seed_004_last_polled_at_in_milliseconds_once_polled(
    http: httpx.AsyncClient, actor: Actor, admin: asyncpg.Connection
) -> None:
    created = await http.post(
        "/invoice-connections",
        json={"provider": "yooz", "apiKey": f"yz_live_sk_{uuid.uuid4().hex}", "active": False},
        headers=actor.cookie,
    )
    assert created.status_code == 201, created.text
    assert created.json()["hasWebhookSecret"] is False and created.json()["lastPolledAt"] is None
    await admin.execute(
        "UPDATE connections SET last_polled_at = '2024-06-20T06:00:00.123456Z' "
        "WHERE tenant_id = $1",
        actor.tenant,
    )
    listed = await http.get("/invoice-connections", headers=actor.cookie)
    assert listed.status_code == 200, listed.text
    assert_like(SEED_004_LIST_RESPONSE, listed.json())
    assert listed.json()[0]["lastPolledAt"] == "2024-06-20T06:00:00.123Z"


async def test_seed_004_error_cases(http: httpx.AsyncClient, actor: Actor) -> None:
    json_cookie = {"Content-Type": "application/json", **actor.cookie}
    secrets = [f"yz_live_sk_{uuid.uuid4().hex}" for _ in range(4)]

    unknown = await http.post(
        "/invoice-connections",
        content=json.dumps({"provider": "nope", "apiKey": secrets[0], "active": True}),
        headers=json_cookie,
    )
    assert unknown.status_code == 400, unknown.text
    assert "provider" in violated_fields(unknown.json()), unknown.text

    first = await http.post(
        "/invoice-connections",
        content=json.dumps({"provider": "yooz", "apiKey": secrets[1], "active": True}),
        headers=json_cookie,
    )
    assert first.status_code == 201, first.text
    second = await http.post(
        "/invoice-connections",
        content=json.dumps({"provider": "yooz", "apiKey": secrets[2], "active": True}),
        headers=json_cookie,
    )
    assert second.status_code == 409, second.text

    # An inactive one is allowed; enabling it would make a second active one: 409.
    inactive = await http.post(
        "/invoice-connections",
        content=json.dumps({"provider": "yooz", "apiKey": secrets[3], "active": False}),
        headers=json_cookie,
    )
    assert inactive.status_code == 201, inactive.text
    enable = await http.patch(
        f"/invoice-connections/{inactive.json()['id']}",
        content=json.dumps({"active": True}),
        headers=json_cookie,
    )
    assert enable.status_code == 409, enable.text

    missing_patch = await http.patch(
        f"/invoice-connections/{UNKNOWN_CON}",
        content=json.dumps({"apiKey": "yz_live_sk_other"}),
        headers=json_cookie,
    )
    assert missing_patch.status_code == 404, missing_patch.text
    missing_delete = await http.delete(f"/invoice-connections/{UNKNOWN_CON}", headers=actor.cookie)
    assert missing_delete.status_code == 404, missing_delete.text

    for response in (unknown, first, second, inactive, enable, missing_patch, missing_delete):
        assert not any(s in response.text for s in secrets), response.text


# ---- seed 003: /v1/invoice-transactions, POST /v1/records/query -----------------------------


async def test_seed_003_list_example_replayed(
    http: httpx.AsyncClient, actor: Actor, ledger: Ledger
) -> None:
    # curl -X GET https://api.wellapp.ai/v1/invoice-transactions -H "Authorization: Bearer …"
    response = await http.get("/v1/invoice-transactions", headers=actor.bearer)
    assert response.status_code == 200, response.text
    document = assert_jsonapi(response)
    assert_like(SEED_003_LIST_RESPONSE, document, SEED_003_LOOSE)
    assert document["meta"] == {"total": 3, "count": 3}
    assert document["links"] == {"next": None}
    by_id = {item["id"]: item for item in document["data"]}
    assert set(by_id) == {a.id for a in ledger.allocations.values()}
    raw = response.text
    for name, allocation in ledger.allocations.items():
        item = by_id[allocation.id]
        attributes = item["attributes"]
        assert item["type"] == "invoice_transaction"
        assert attributes["invoice_transaction_id"] == allocation.id
        assert attributes["allocation_type"] == ("full" if name == "a" else "partial")
        assert attributes["is_partial"] is (name != "a")
        assert attributes["currency"] == attributes["accounting_currency"] == "EUR"
        assert attributes["deleted_at"] is None
        assert f'"amount":{allocation.amount},' in raw  # the exact digits: 100.00, not 100
        assert f'"accounting_amount":{allocation.accounting_amount},' in raw
        relationships = item["relationships"]
        assert relationships["invoice"]["data"] == {
            "type": "invoice",
            "id": ledger.invoices[name].id,
        }
        assert relationships["transaction"]["data"] == {
            "type": "transaction",
            "id": allocation.transaction_id,
        }
        assert relationships["subscription"] == {"data": None}
        assert relationships["exchange_rate"] == {"data": None}
    numbers = exact(response)["data"]
    assert {str(i["attributes"]["amount"]) for i in numbers} == {"1200.00", "100.00", "300.00"}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"orderBy": "invoice.grand_total", "direction": "asc"}, "acb"),
        ({"orderBy": "invoice.grand_total", "direction": "desc"}, "bca"),
        ({"orderBy": "transaction.instructed_amount", "direction": "asc"}, "bca"),
        ({"orderBy": "transaction.instructed_amount", "direction": "desc"}, "acb"),
        ({"orderBy": "amount"}, "acb"),  # direction defaults to desc
        ({"sort": "-transaction.instructed_amount"}, "acb"),
        ({"sort": "invoice.grand_total"}, "acb"),
    ],
    ids=lambda v: v if isinstance(v, str) else "&".join(f"{k}={x}" for k, x in v.items()),
)
async def test_seed_003_sorts(
    http: httpx.AsyncClient, actor: Actor, ledger: Ledger, params: Json, expected: str
) -> None:
    response = await http.get("/v1/invoice-transactions", params=params, headers=actor.bearer)
    document = assert_jsonapi(response)
    assert "".join(ledger.name(i["id"]) for i in document["data"]) == expected
    assert document["meta"] == {"total": 3, "count": 3}
    for limit in (1, 2):
        ids = await seed_003_pages(http, actor, limit=limit, **params)
        assert "".join(ledger.name(i) for i in ids) == expected, f"limit {limit}"


async def test_seed_003_pagination(http: httpx.AsyncClient, actor: Actor, ledger: Ledger) -> None:
    params = {"limit": 1, "orderBy": "invoice.grand_total", "direction": "asc"}
    first = assert_jsonapi(
        await http.get("/v1/invoice-transactions", params=params, headers=actor.bearer)
    )
    assert first["meta"] == {"total": 3, "count": 1}
    assert isinstance(first["links"]["next"], str) and first["links"]["next"]
    assert ledger.name(first["data"][0]["id"]) == "a"

    second = assert_jsonapi(
        await http.get(
            "/v1/invoice-transactions",
            params={**params, "cursor": first["links"]["next"]},
            headers=actor.bearer,
        )
    )
    assert second["meta"] == {"total": 3, "count": 1}
    assert ledger.name(second["data"][0]["id"]) == "c"
    assert isinstance(second["links"]["next"], str) and second["links"]["next"]

    last = assert_jsonapi(
        await http.get(
            "/v1/invoice-transactions",
            params={**params, "cursor": second["links"]["next"]},
            headers=actor.bearer,
        )
    )
    assert last["meta"] == {"total": 3, "count": 1}
    assert ledger.name(last["data"][0]["id"]) == "b"
    assert last["links"] == {"next": None}

    whole = assert_jsonapi(
        await http.get("/v1/invoice-transactions", params={"limit": 200}, headers=actor.bearer)
    )
    assert whole["meta"] == {"total": 3, "count": 3} and whole["links"]["next"] is None


async def test_seed_003_workspace_id(http: httpx.AsyncClient, actor: Actor, ledger: Ledger) -> None:
    own = assert_jsonapi(
        await http.get(
            "/v1/invoice-transactions",
            params={"workspaceId": str(actor.tenant)},
            headers=actor.bearer,
        )
    )
    assert {i["id"] for i in own["data"]} == {a.id for a in ledger.allocations.values()}
    other = await http.get(
        "/v1/invoice-transactions",
        params={"workspaceId": str(uuid.uuid4())},
        headers=actor.bearer,
    )
    assert_seed_003_error(other, 403, "FORBIDDEN")


async def test_seed_003_get_create_delete(
    http: httpx.AsyncClient, actor: Actor, invoices: Invoices, allocations: Allocs
) -> None:
    invoice = await issued(invoices, actor.md)
    txn = await create_txn(allocations, actor.md, amount="50.00")
    body = {
        "data": {
            "type": "invoice_transaction",
            "attributes": {"amount": 20.50},
            "relationships": {
                "invoice": {"data": {"type": "invoice", "id": invoice.id}},
                "transaction": {"data": {"type": "transaction", "id": txn.id}},
            },
        }
    }
    created = await http.post(
        "/v1/invoice-transactions",
        content=json.dumps(body).replace("20.5", "20.50"),
        headers={"Content-Type": "application/json", **actor.bearer},
    )
    assert created.status_code == 201, created.text
    document = assert_jsonapi(created)
    one_example = {"data": SEED_003_LIST_RESPONSE["data"][0]}
    loose = frozenset(p.replace("data[]", "data") for p in SEED_003_LOOSE)
    assert_like(one_example, document, loose)
    resource = document["data"]
    assert '"amount":20.50,' in created.text
    assert resource["attributes"]["allocation_type"] == "partial"
    assert resource["relationships"]["invoice"]["data"]["id"] == invoice.id
    assert resource["relationships"]["transaction"]["data"]["id"] == txn.id
    assert created.headers["location"] == f"/v1/invoice-transactions/{resource['id']}"

    got = await http.get(f"/v1/invoice-transactions/{resource['id']}", headers=actor.bearer)
    assert got.status_code == 200
    assert assert_jsonapi(got) == document

    removed = await http.delete(f"/v1/invoice-transactions/{resource['id']}", headers=actor.bearer)
    assert removed.status_code == 200, removed.text
    gone = assert_jsonapi(removed)["data"]
    assert gone["id"] == resource["id"] and isinstance(gone["attributes"]["deleted_at"], str)
    listed = assert_jsonapi(await http.get("/v1/invoice-transactions", headers=actor.bearer))
    assert listed["data"] == [] and listed["meta"] == {"total": 0, "count": 0}

    unknown = await http.get(f"/v1/invoice-transactions/{UNKNOWN_ALC}", headers=actor.bearer)
    assert_seed_003_error(unknown, 404, "NOT_FOUND")


async def test_seed_003_errors(
    http: httpx.AsyncClient, actor: Actor, tokens: Tokens, ledger: Ledger
) -> None:
    bad_limit = await http.get(
        "/v1/invoice-transactions", params={"limit": "abc"}, headers=actor.bearer
    )
    assert "limit" in assert_seed_003_error(bad_limit, 400, "BAD_REQUEST")["message"]
    bad_order = await http.get(
        "/v1/invoice-transactions", params={"orderBy": "nope"}, headers=actor.bearer
    )
    assert "nope" in assert_seed_003_error(bad_order, 400, "BAD_REQUEST")["message"]
    bad_direction = await http.get(
        "/v1/invoice-transactions",
        params={"orderBy": "amount", "direction": "sideways"},
        headers=actor.bearer,
    )
    assert_seed_003_error(bad_direction, 400, "BAD_REQUEST")
    bad_cursor = await http.get(
        "/v1/invoice-transactions", params={"cursor": "eyJwayI6MTI4N30"}, headers=actor.bearer
    )
    assert_seed_003_error(bad_cursor, 400, "BAD_REQUEST")

    anonymous = await http.get("/v1/invoice-transactions")
    assert_seed_003_error(anonymous, 401, "UNAUTHORIZED")
    forged = await http.get(
        "/v1/invoice-transactions", headers={"Authorization": "Bearer not.a.token"}
    )
    assert_seed_003_error(forged, 401, "UNAUTHORIZED")
    reader = tokens.token(actor.tenant, permissions=["invoices.read"])
    forbidden = await http.get(
        "/v1/invoice-transactions", headers={"Authorization": f"Bearer {reader}"}
    )
    assert_seed_003_error(forbidden, 403, "FORBIDDEN")
    query_anonymous = await http.post("/v1/records/query", json=SEED_003_QUERY)
    assert_seed_003_error(query_anonymous, 401, "UNAUTHORIZED")


async def test_seed_003_records_query_example(
    http: httpx.AsyncClient, actor: Actor, ledger: Ledger
) -> None:
    response = await http.post("/v1/records/query", json=SEED_003_QUERY, headers=actor.bearer)
    assert response.status_code == 200, response.text
    document = assert_jsonapi(response)
    assert_like(SEED_003_LIST_RESPONSE, document, SEED_003_LOOSE)
    # One workspace: the names tie, so the id (ascending) decides.
    assert [i["id"] for i in document["data"]] == sorted(a.id for a in ledger.allocations.values())
    assert document["meta"] == {"total": 3, "count": 3} and document["links"] == {"next": None}
    for item in document["data"]:
        name = ledger.name(item["id"])
        assert item["type"] == "invoice_transaction"
        assert item["relationships"]["invoice"]["data"]["id"] == ledger.invoices[name].id
        assert f'"amount":{ledger.allocations[name].amount},' in response.text

    no_match = {**SEED_003_QUERY, "whereClause": {"workspace": {"name": {"_ilike": "%globex%"}}}}
    empty = assert_jsonapi(
        await http.post("/v1/records/query", json=no_match, headers=actor.bearer)
    )
    assert empty["data"] == [] and empty["meta"] == {"total": 0, "count": 0}


@pytest.mark.parametrize(
    ("field", "direction", "expected"),
    [
        ("invoice.grand_total", "asc", "acb"),
        ("transaction.instructed_amount", "desc", "acb"),
        ("transaction.instructed_amount", "asc", "bca"),
    ],
)
async def test_seed_003_records_query_sorts_and_pages(
    http: httpx.AsyncClient,
    actor: Actor,
    ledger: Ledger,
    field: str,
    direction: str,
    expected: str,
) -> None:
    body: Json = {
        "root": "invoice_transactions",
        "whereClause": {"workspace": {"name": {"_ilike": "%acme%"}}},
        "orderBy": {"field": field, "direction": direction},
        "limit": 1,
    }
    names = ""
    for _ in range(10):
        page = assert_jsonapi(await http.post("/v1/records/query", json=body, headers=actor.bearer))
        assert page["meta"] == {"total": 3, "count": 1}, page["meta"]
        names += "".join(ledger.name(i["id"]) for i in page["data"])
        if page["links"]["next"] is None:
            break
        body["cursor"] = page["links"]["next"]
    assert names == expected


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"orderBy": {"field": "workspace.nope", "direction": "asc"}}, "workspace.nope"),
        ({"whereClause": {"workspace": {"nope": {"_ilike": "%acme%"}}}}, "workspace.nope"),
        ({"whereClause": {"planet": {"name": {"_eq": "x"}}}}, "planet"),
        ({"orderBy": {"field": "workspace.name", "direction": "up"}}, "direction"),
    ],
)
async def test_seed_003_records_query_unknown_relation_field_is_a_clear_400(
    http: httpx.AsyncClient, actor: Actor, body: Json, field: str
) -> None:
    response = await http.post(
        "/v1/records/query", json={"root": "invoice_transactions", **body}, headers=actor.bearer
    )
    error = assert_seed_003_error(response, 400, "BAD_REQUEST")
    assert field in error["message"], error["message"]


# ---- seed 000: /v1/invoice-workspace-connectors -------------------------------------------


async def test_seed_000_example_shape(
    http: httpx.AsyncClient, actor: Actor, tokens: Tokens, invoices: Invoices
) -> None:
    invoice = await issued(invoices, actor.md)
    connection = await http.post(
        "/v1/invoice-connections",
        json={"provider": "yooz", "api_key": f"yz_{uuid.uuid4().hex}", "active": False},
        headers=actor.bearer,
    )
    assert connection.status_code == 201, connection.text
    connection_id = connection.json()["id"]
    # The ingestion pipeline's token: `system` alone (seed 000 rows are system-written).
    pipeline = {"Authorization": f"Bearer {tokens.token(actor.tenant, permissions=['system'])}"}
    body = {
        "data": {
            "type": "invoice_workspace_connector",
            "attributes": {"direction": "input"},
            "relationships": {
                "invoice": {"data": {"type": "invoice", "id": invoice.id}},
                "workspace_connector": {
                    "data": {"type": "workspace_connector", "id": connection_id}
                },
            },
        }
    }
    created = await http.post(
        "/v1/invoice-workspace-connectors",
        content=json.dumps(body),
        headers={**pipeline, "Content-Type": "application/json"},
    )
    assert created.status_code == 201, created.text
    document = assert_jsonapi(created)
    assert_like(SEED_000_RESPONSE, document, SEED_000_LOOSE)
    resource = document["data"]
    assert resource["type"] == "invoice_workspace_connector"
    assert resource["attributes"]["direction"] == "input"
    assert resource["attributes"]["deleted_at"] is None
    assert resource["relationships"] == {
        "invoice": {"data": {"type": "invoice", "id": invoice.id}},
        "workspace_connector": {"data": {"type": "workspace_connector", "id": connection_id}},
    }
    location = f"/v1/invoice-workspace-connectors/{resource['id']}"
    assert created.headers["location"] == location

    got = await http.get(location, headers=actor.bearer)
    assert got.status_code == 200, got.text
    assert assert_jsonapi(got) == document

    listed = await http.get("/v1/invoice-workspace-connectors", headers=actor.bearer)
    collection = assert_jsonapi(listed)
    assert_like({"data": [SEED_000_RESPONSE["data"]]}, collection, SEED_000_LOOSE)
    assert collection["data"] == [resource]
    assert collection["meta"] == {"total": 1, "count": 1}
    assert collection["links"] == {"next": None}

    output = json.loads(json.dumps(body).replace('"input"', '"output"'))
    second = await http.post("/v1/invoice-workspace-connectors", json=output, headers=pipeline)
    assert second.status_code == 201, second.text
    assert assert_jsonapi(second)["data"]["attributes"]["direction"] == "output"
    by_direction = await http.get(
        "/v1/invoice-workspace-connectors",
        params={"filter": "direction = OUTPUT"},
        headers=actor.bearer,
    )
    assert [r["id"] for r in assert_jsonapi(by_direction)["data"]] == [second.json()["data"]["id"]]

    no_system = tokens.token(actor.tenant, permissions=["provenance.read", "provenance.write"])
    denied = await http.post(
        "/v1/invoice-workspace-connectors",
        json=body,
        headers={"Authorization": f"Bearer {no_system}"},
    )
    assert denied.status_code == 403, denied.text
    assert denied.json()["code"] == "FORBIDDEN"


MALFORMED_RESOURCES: list[Any] = [
    "x",
    [],
    {"data": "x"},
    {"data": []},
    {"data": {"type": 5}},
    {"data": {"type": "{type}", "attributes": "x"}},
    {"data": {"type": "{type}", "attributes": [1]}},
    {"data": {"type": "{type}", "relationships": "x"}},
    {"data": {"type": "{type}", "relationships": ["invoice"]}},
    {"data": {"type": "{type}", "relationships": {"invoice": "x"}}},
    {"data": {"type": "{type}", "relationships": {"invoice": {"data": "x"}}}},
    {"data": {"type": "{type}", "relationships": {"invoice": {"data": {"type": "invoice"}}}}},
    {"data": {"type": "{type}", "relationships": {"invoice": {"data": {"id": 5}}}}},
    {"data": {"type": "{type}", "relationships": {"invoice": {"data": {"id": ["x"]}}}}},
    {"data": {"type": "{type}", "relationships": {"nope": {"data": None}}}},
    {"data": {"type": "{type}", "links": {}}},
    {"data": {"type": "{type}", "id": None, "attributes": {"created_at": 5}}},
]


@pytest.mark.parametrize(
    ("path", "type_"),
    [
        ("/v1/invoice-workspace-connectors", "invoice_workspace_connector"),
        ("/v1/invoice-transactions", "invoice_transaction"),
    ],
)
@pytest.mark.parametrize("body", MALFORMED_RESOURCES, ids=lambda b: json.dumps(b)[:60])
async def test_malformed_jsonapi_bodies_are_a_400_never_a_500(
    http: httpx.AsyncClient, actor: Actor, path: str, type_: str, body: Any
) -> None:
    text = json.dumps(body).replace("{type}", type_)
    response = await http.post(
        path, content=text, headers={"Content-Type": "application/json", **actor.bearer}
    )
    assert_seed_003_error(response, 400, "BAD_REQUEST")


# ---- seed 001: /api/v1/finance/invoices -----------------------------------------------------

SEED_001_BODY = (
    '{"type": "customer", "currency": "EUR", "counterparty_id": "' + PARTY + '", '
    '"line_items": [{"description": "Consulting", "quantity": 10, "unit_price": 120.10, '
    '"tax_rate": 0.20}]}'
)


def assert_seed_001_invoice(response: httpx.Response, status: int = 201) -> Json:
    assert response.status_code == status, response.text
    body: Json = response.json()
    raw = response.text
    for key, text in (
        ("subtotal", "1201.00"),
        ("tax_amount", "240.20"),
        ("discount_amount", "0.00"),
        ("total", "1441.20"),
        ("amount", "1441.20"),
    ):
        assert f'"{key}":{text},' in raw, f"{key} is not the JSON number {text}: {raw}"
    numbers = exact(response)
    assert numbers["total"] == Decimal("1441.20") and str(numbers["total"]) == "1441.20"
    assert body["type"] == "customer" and body["direction"] == "receivable"
    assert body["source_type"] == "api" and body["currency"] == "EUR"
    (item,) = body["line_items"]
    assert kind(item["quantity"]) == kind(item["unit_price"]) == "number", item
    assert Decimal(str(item["unit_price"])) == Decimal("120.10")
    return body


async def test_seed_001_create_with_money_as_json_numbers(
    http: httpx.AsyncClient, actor: Actor
) -> None:
    response = await http.post(
        "/api/v1/finance/invoices",
        content=SEED_001_BODY,
        headers={"Content-Type": "application/json", **actor.bearer},
    )
    body = assert_seed_001_invoice(response)
    assert body["status"] == "draft" and body["payment_status"] == "unpaid"
    assert '"amount_paid":0.00,"amount_due":1441.20,' in response.text
    assert body["issue_date"] is None and body["due_date"] is None
    assert body["paid_at"] is None and body["paid_date"] is None
    assert body["deleted_at"] is None and body["is_deleted"] is False
    assert response.headers["location"] == f"/api/v1/finance/invoices/{body['id']}"

    got = await http.get(f"/api/v1/finance/invoices/{body['id']}", headers=actor.bearer)
    assert assert_seed_001_invoice(got, 200) == body


async def test_seed_001_create_with_money_as_strings_and_a_date_time(
    http: httpx.AsyncClient, actor: Actor
) -> None:
    body = json.loads(SEED_001_BODY)
    body["line_items"][0].update(quantity="10", unit_price="120.10", tax_rate="0.20")
    body |= {"issue_date": "2026-05-10T14:23:11Z", "due_date": "2026-06-10"}
    response = await http.post("/api/v1/finance/invoices", json=body, headers=actor.bearer)
    created = assert_seed_001_invoice(response)
    assert created["issue_date"] == "2026-05-10" and created["due_date"] == "2026-06-10"
    assert created["status"] == "draft"


async def test_seed_001_issue_pay_patch_void(http: httpx.AsyncClient, actor: Actor) -> None:
    json_headers = {"Content-Type": "application/json", **actor.bearer}
    created = assert_seed_001_invoice(
        await http.post("/api/v1/finance/invoices", content=SEED_001_BODY, headers=json_headers)
    )
    base = f"/api/v1/finance/invoices/{created['id']}"

    patched = await http.patch(
        base,
        content='{"notes": "Net 30", "due_date": "2026-12-31", "line_items": [{"description": '
        '"Consulting", "quantity": 10, "unit_price": 120.10, "tax_rate": 0.20}]}',
        headers=json_headers,
    )
    updated = assert_seed_001_invoice(patched, 200)
    assert updated["notes"] == "Net 30" and updated["due_date"] == "2026-12-31"

    issued_ = await http.post(f"{base}:issue", json={}, headers=actor.bearer)
    body = assert_seed_001_invoice(issued_, 200)
    assert body["status"] == "issued" and re.fullmatch(r"INV-\d{4}-\d{4}", body["number"])
    assert ISO_DATE.match(body["issue_date"]), body["issue_date"]

    paid = await http.post(
        f"{base}:pay",
        content='{"amount": 100.50, "currency": "EUR", "reference": "WIRE-1"}',
        headers=json_headers,
    )
    body = assert_seed_001_invoice(paid, 200)
    assert body["payment_status"] == "partially_paid"
    assert '"amount_paid":100.50,"amount_due":1340.70,' in paid.text
    assert body["paid_at"] is None and body["paid_date"] is None

    rest = await http.post(f"{base}:pay", json={"amount": "1340.70"}, headers=actor.bearer)
    body = assert_seed_001_invoice(rest, 200)
    assert body["payment_status"] == "paid"
    assert '"amount_paid":1441.20,"amount_due":0.00,' in rest.text
    assert ISO_DATE.match(body["paid_date"]) and isinstance(body["paid_at"], str), body

    notes = await http.patch(base, json={"notes": "Thanks"}, headers=actor.bearer)
    assert assert_seed_001_invoice(notes, 200)["notes"] == "Thanks"

    # The same invoice on the canonical path: canonical JSON, unchanged.
    canonical = await http.get(f"/v1/invoices/{created['id']}", headers=actor.bearer)
    assert canonical.status_code == 200, canonical.text
    same = canonical.json()
    assert same["type"] == "INVOICE_TYPE_CUSTOMER"
    assert same["direction"] == "INVOICE_DIRECTION_RECEIVABLE"
    assert same["status"] == "INVOICE_STATUS_ISSUED"
    assert same["payment_status"] == "PAYMENT_STATUS_PAID"
    assert same["source_type"] == "SOURCE_TYPE_API"
    assert (same["total"], same["amount_paid"], same["amount_due"]) == ("1441.20",) * 2 + ("0.00",)
    assert same["due_date"] == {"year": 2026, "month": 12, "day": 31}
    assert '"total":"1441.20"' in canonical.text

    # :void, on another issued invoice (a paid one has live allocations).
    other = assert_seed_001_invoice(
        await http.post("/api/v1/finance/invoices", content=SEED_001_BODY, headers=json_headers)
    )
    other_base = f"/api/v1/finance/invoices/{other['id']}"
    assert (await http.post(f"{other_base}:issue", json={}, headers=actor.bearer)).is_success
    voided = await http.post(f"{other_base}:void", json={"reason": "typo"}, headers=actor.bearer)
    body = assert_seed_001_invoice(voided, 200)
    assert body["status"] == "void" and body["void_reason"] == "typo"
    assert isinstance(body["voided_at"], str)


@pytest.mark.parametrize(
    ("key", "value"),
    [("type", "customer2"), ("direction", "sideways"), ("source_type", "carrier-pigeon")],
)
async def test_seed_001_bad_enum_is_a_400_naming_the_field(
    http: httpx.AsyncClient, actor: Actor, key: str, value: str
) -> None:
    body = {**json.loads(SEED_001_BODY), key: value}
    response = await http.post("/api/v1/finance/invoices", json=body, headers=actor.bearer)
    assert response.status_code == 400, response.text
    error = response.json()
    assert key in violated_fields(error), error
    assert value in error["message"] and key in error["message"], error["message"]


async def test_seed_001_unset_values_are_null(http: httpx.AsyncClient, actor: Actor) -> None:
    """Seed 001 types these fields uuid (or date-time) and documents them as "null
    otherwise"; `app_id` is "Absent for human-user sessions"."""
    response = await http.post(
        "/api/v1/finance/invoices",
        content=SEED_001_BODY,
        headers={"Content-Type": "application/json", **actor.bearer},
    )
    body = assert_seed_001_invoice(response)
    wrong = {
        key: body.get(key)
        for key in ("vendor_id", "project_id", "contract_id", "po_id", "deleted_by", "deleted_at")
        if body.get(key) is not None
    }
    assert wrong == {}, f"unset values not null: {wrong}"
    assert body.get("app_id") is None, f"app_id: {body.get('app_id')!r}"


# ---- seed 002: GET /v1/invoices/{id}/document -----------------------------------------------


def snake_keys(value: Any, at: str = "$") -> list[str]:
    """Every key with an underscore (not camelCase), with its path."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if "_" in key:
                found.append(f"{at}.{key}")
            found += snake_keys(item, f"{at}.{key}")
    elif isinstance(value, list):
        for item in value:
            found += snake_keys(item, f"{at}[]")
    return found


async def test_seed_002_document_keys(
    http: httpx.AsyncClient, actor: Actor, invoices: Invoices
) -> None:
    invoice = await issued(invoices, actor.md, project_id=str(uuid.uuid4()))
    response = await http.get(f"/v1/invoices/{invoice.id}/document", headers=actor.bearer)
    assert response.status_code == 200, response.text
    document: Json = response.json()
    for node, type_ in SEED_002_ROOTS.items():
        assert isinstance(document.get(node), type_), f"{node}: {document.get(node)!r}"
    assert snake_keys(document) == []
    identifiers = document["identifiers"]
    missing = [k for k in SEED_002_IDENTIFIERS if k not in identifiers]
    assert missing == [], f"missing {missing} in {identifiers}"
    assert identifiers["id"] == invoice.id
    assert identifiers["isSupplierInvoice"] is False and identifiers["isClientInvoice"] is True
    assert identifiers["clientCompanyId"] == PARTY
    assert isinstance(identifiers["clientIsInternal"], bool)
    assert isinstance(identifiers["supplierIsInternal"], bool)
    assert identifiers["projectId"] == invoice.project_id
    assert identifiers["orderId"] is None and identifiers["jobId"] is None
    assert identifiers["projectSequenceId"] == 1
    assert "flexTransactionId" not in identifiers  # only when set
    assert document["lines"][0]["unitPrice"] == "120"
    assert document["totals"]["total"] == "1440.00"
    assert ISO_DATE.match(document["properties"]["issueDate"])


async def test_seed_002_supplier_document(
    http: httpx.AsyncClient, actor: Actor, invoices: Invoices
) -> None:
    invoice = await issued(
        invoices,
        actor.md,
        type=ipb.INVOICE_TYPE_SUPPLIER,
        number="SUP-7",
        job_id="JOB-1",
        flex_transaction_id="FLX-9",
        project_id=str(uuid.uuid4()),
    )
    response = await http.get(f"/v1/invoices/{invoice.id}/document", headers=actor.bearer)
    assert response.status_code == 200, response.text
    identifiers = response.json()["identifiers"]
    assert identifiers["isSupplierInvoice"] is True and identifiers["isClientInvoice"] is False
    assert identifiers["supplierCompanyId"] == PARTY
    assert identifiers["jobId"] == "JOB-1" and identifiers["flexTransactionId"] == "FLX-9"
    assert identifiers["projectSequenceId"] == 1
    assert snake_keys(response.json()) == []


async def test_seed_002_order_id_is_a_json_integer(
    http: httpx.AsyncClient, actor: Actor, invoices: Invoices
) -> None:
    """Seed 002: `orderId` is `int?` and its example shows `"orderId": 3353`."""
    invoice = await issued(invoices, actor.md, order_id=3353)
    response = await http.get(f"/v1/invoices/{invoice.id}/document", headers=actor.bearer)
    assert response.status_code == 200, response.text
    order_id = response.json()["identifiers"]["orderId"]
    assert order_id == 3353 and kind(order_id) == "number", f"orderId: {order_id!r}"


# ---- canonical paths: canonical JSON, unchanged --------------------------------------------


async def test_canonical_paths_keep_the_canonical_json(
    http: httpx.AsyncClient, actor: Actor, ledger: Ledger
) -> None:
    allocations = await http.get("/v1/allocations", headers=actor.bearer)
    assert allocations.status_code == 200, allocations.text
    page = allocations.json()
    assert set(page) == {"data", "next_cursor"} and page["next_cursor"] == ""
    by_id = {a["id"]: a for a in page["data"]}
    assert set(by_id) == {a.id for a in ledger.allocations.values()}
    for name, allocation in ledger.allocations.items():
        item = by_id[allocation.id]
        assert item["amount"] == allocation.amount and isinstance(item["amount"], str)
        assert item["accounting_amount"] == allocation.accounting_amount
        assert item["allocation_type"] == (
            "ALLOCATION_TYPE_FULL" if name == "a" else "ALLOCATION_TYPE_PARTIAL"
        )
        assert item["invoice_id"] == ledger.invoices[name].id
        assert "attributes" not in item and "relationships" not in item
    with_total = await http.get(
        "/v1/allocations", params={"include_total": "true"}, headers=actor.bearer
    )
    assert with_total.json()["total"] == 3

    one = ledger.allocations["b"]
    got = await http.get(f"/v1/allocations/{one.id}", headers=actor.bearer)
    assert got.status_code == 200 and got.json()["id"] == one.id and "data" not in got.json()
    assert got.json()["amount"] == "100.00"

    invoice = ledger.invoices["b"]
    canonical = await http.get(f"/v1/invoices/{invoice.id}", headers=actor.bearer)
    assert canonical.status_code == 200, canonical.text
    body = canonical.json()
    assert body["type"] == "INVOICE_TYPE_CUSTOMER" and body["status"] == "INVOICE_STATUS_ISSUED"
    assert body["payment_status"] == "PAYMENT_STATUS_PARTIALLY_PAID"
    assert (body["total"], body["amount_paid"]) == ("3600.00", "100.00")
    assert isinstance(body["issue_date"], dict)
    listed = await http.get("/v1/invoices", headers=actor.bearer)
    assert set(listed.json()) == {"data", "next_cursor"}
    assert {i["total"] for i in listed.json()["data"]} == {"1200.00", "3600.00", "2400.00"}

    api_key = f"yz_live_sk_{uuid.uuid4().hex}"
    created = await http.post(
        "/v1/invoice-connections",
        json={"provider": "yooz", "api_key": api_key, "webhook_secret": whsec()},
        headers=actor.bearer,
    )
    assert created.status_code == 201, created.text
    connection = created.json()
    assert connection["has_credentials"] is True and connection["has_webhook_secret"] is True
    assert connection["tenant_id"] == str(actor.tenant) and "client" not in connection
    assert "hasCredentials" not in connection and "last_polled_at" not in connection
    assert connection["state"] == "CONNECTION_STATE_OK"
    assert created.headers["location"] == f"/v1/invoice-connections/{connection['id']}"
    connections = await http.get("/v1/invoice-connections", headers=actor.bearer)
    assert set(connections.json()) == {"data", "next_cursor"}
    assert [c["id"] for c in connections.json()["data"]] == [connection["id"]]
    assert api_key not in connections.text and api_key not in created.text

    error = await http.get("/v1/allocations", params={"limit": "abc"}, headers=actor.bearer)
    assert error.status_code == 400
    assert error.json()["code"] == "INVALID_ARGUMENT" and "log_id" not in error.json()["meta"]
    assert "errors" not in error.json()


async def test_seed_001_lists_filter_by_fields_as_query_parameters(
    http: httpx.AsyncClient, actor: Actor
) -> None:
    """`?type=customer&status=draft`: each a field of the invoice, ANDed with `filter`."""
    draft = assert_seed_001_invoice(
        await http.post(
            "/api/v1/finance/invoices",
            content=SEED_001_BODY,
            headers={"Content-Type": "application/json", **actor.bearer},
        )
    )
    path = "/api/v1/finance/invoices"

    async def ids(**params: str) -> list[str]:
        response = await http.get(path, params=params, headers=actor.bearer)
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["data"]]

    assert await ids(type="customer") == [draft["id"]]
    assert await ids(type="supplier") == []
    assert await ids(type="customer", status="draft", currency="EUR") == [draft["id"]]
    assert await ids(status="issued") == []
    assert await ids(type="customer", filter="total > 2000") == []
    assert await ids(type="customer", filter="total > 1000") == [draft["id"]]
    assert await ids(counterparty_id=PARTY) == [draft["id"]]
    for params, field in (({"line_items": "x"}, "filter"), ({"notes": "a'b\""}, "notes")):
        response = await http.get(path, params=params, headers=actor.bearer)
        assert response.status_code == 400, response.text
        assert field in violated_fields(response.json()), response.text


async def test_seed_001_patch_with_null_clears_the_field(
    http: httpx.AsyncClient, actor: Actor
) -> None:
    """`{"notes": null, "due_date": null}` clears both (null is unset, and a PATCH without
    an update mask names the body's keys), as on the canonical path."""
    body = json.loads(SEED_001_BODY) | {"notes": "Payment within 30 days", "due_date": "2030-01-31"}
    created = await http.post("/api/v1/finance/invoices", json=body, headers=actor.bearer)
    assert created.status_code == 201, created.text
    assert created.json()["due_date"] == "2030-01-31"
    path = f"/api/v1/finance/invoices/{created.json()['id']}"
    patched = await http.patch(path, json={"notes": None, "due_date": None}, headers=actor.bearer)
    assert patched.status_code == 200, patched.text
    assert (patched.json()["notes"], patched.json()["due_date"]) == ("", None)
    assert patched.json()["currency"] == "EUR"  # what the body did not name is kept
    stored = await http.get(f"/v1/invoices/{created.json()['id']}", headers=actor.bearer)
    assert stored.json()["notes"] == "" and "due_date" not in stored.json()


@pytest.mark.parametrize(
    ("method", "path", "status", "seed"),
    [
        ("GET", "/v1/invoice-transactions/a/b", 404, True),
        ("PUT", "/v1/invoice-transactions", 405, True),
        ("GET", "/v1/invoice-workspace-connectors/a/b", 404, True),
        ("GET", "/v1/invoice-transactionsX", 404, False),
        ("PUT", "/v1/invoices", 405, False),
        ("GET", "/v1/nope", 404, False),
    ],
)
async def test_unrouted_requests_on_seed_paths_answer_in_the_seeds_error_format(
    http: httpx.AsyncClient, actor: Actor, method: str, path: str, status: int, seed: bool
) -> None:
    """A 404 or 405 under a JSON:API seed prefix is that seed's error; elsewhere canonical."""
    response = await http.request(method, path, headers=actor.bearer)
    assert response.status_code == status, response.text
    body = response.json()
    if seed:
        expected = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}[status]
        assert body["code"] == expected and body["meta"]["log_id"] == body["meta"]["trace_id"]
        assert body["errors"][0]["status"] == str(status)
    else:
        assert "log_id" not in body["meta"] and "errors" not in body
    if status == 405:
        assert response.headers["allow"]


async def test_conditionals_and_idempotency_work_on_seed_paths(
    http: httpx.AsyncClient, actor: Actor
) -> None:
    """ETag/If-None-Match (304), a stale If-Match (412) and Idempotency-Key replays behave on
    the seed paths as on the canonical ones: the dialect changes the spelling only."""
    created = await http.post(
        "/invoice-connections",
        json={"provider": "yooz", "apiKey": "yz_live_sk_abcdef12345"},
        headers=actor.bearer,
    )
    assert created.status_code == 201, created.text
    etag, path = created.headers["etag"], created.headers["location"]
    assert path == f"/invoice-connections/{created.json()['id']}"
    cached = await http.get(path, headers={"If-None-Match": etag, **actor.bearer})
    assert cached.status_code == 304
    stale = await http.patch(
        path, json={"active": False}, headers={"If-Match": 'W/"999"', **actor.bearer}
    )
    assert stale.status_code == 412, stale.text
    fresh = await http.patch(
        path, json={"active": False}, headers={"If-Match": etag, **actor.bearer}
    )
    assert fresh.status_code == 200 and fresh.json()["active"] is False

    key = {"Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"}
    first = await http.post(
        "/api/v1/finance/invoices", content=SEED_001_BODY, headers={**key, **actor.bearer}
    )
    again = await http.post(
        "/api/v1/finance/invoices", content=SEED_001_BODY, headers={**key, **actor.bearer}
    )
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.text == first.text and again.headers["idempotent-replayed"] == "true"
