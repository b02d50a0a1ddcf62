"""HTTP conditionals over the resources' etags, Location on creates, and the replay
header, through both gateway modes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from invoicing.v1 import invoices_pb2 as ipb

from tests.conftest import Tokens, sample_invoice
from tests.factories import Invoices, Metadata

INVOICE = {
    "type": "INVOICE_TYPE_CUSTOMER",
    "currency": "EUR",
    "counterparty_id": "0b9c4a52-8d0e-4a8e-9a51-2f7d4d2c1e11",
    "line_items": [{"description": "x", "quantity": "2", "unit_price": "10.00"}],
}


@pytest.fixture
async def http(rest_base_url: str, tokens: Tokens, tenant: uuid.UUID) -> AsyncIterator[Any]:
    headers = {"Authorization": f"Bearer {tokens.token(tenant)}"}
    async with httpx.AsyncClient(base_url=rest_base_url, headers=headers) as client:
        yield client


async def _draft(http: httpx.AsyncClient) -> dict[str, Any]:
    created = await http.post("/v1/invoices", json=INVOICE)
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def test_reads_carry_the_etag_and_if_none_match_answers_304(http: httpx.AsyncClient) -> None:
    invoice = await _draft(http)
    got = await http.get(f"/v1/invoices/{invoice['id']}")
    assert got.headers["etag"] == invoice["etag"] == got.json()["etag"]
    same = await http.get(
        f"/v1/invoices/{invoice['id']}", headers={"If-None-Match": got.headers["etag"]}
    )
    assert same.status_code == 304 and same.content == b""
    assert same.headers["etag"] == invoice["etag"]
    listed = await http.get(
        f"/v1/invoices/{invoice['id']}", headers={"If-None-Match": 'W/"999", *'}
    )
    assert listed.status_code == 304
    other = await http.get(f"/v1/invoices/{invoice['id']}", headers={"If-None-Match": 'W/"999"'})
    assert other.status_code == 200 and other.json()["id"] == invoice["id"]


async def test_a_stale_if_match_is_412_and_changes_nothing(http: httpx.AsyncClient) -> None:
    invoice = await _draft(http)
    path = f"/v1/invoices/{invoice['id']}"
    first = await http.patch(path, json={"notes": "one"}, headers={"If-Match": invoice["etag"]})
    assert first.status_code == 200, first.text
    assert first.headers["etag"] == first.json()["etag"] != invoice["etag"]
    stale = await http.patch(path, json={"notes": "two"}, headers={"If-Match": invoice["etag"]})
    assert stale.status_code == 412, stale.text
    assert stale.json()["title"] == "Precondition Failed"
    assert stale.json()["details"][0]["reason"] == "ETAG_MISMATCH"
    assert (await http.get(path)).json()["notes"] == "one"
    # The strong form of the same tag matches too (the service's etags are weak).
    strong = first.headers["etag"].removeprefix("W/")
    ok = await http.patch(path, json={"notes": "three"}, headers={"If-Match": strong})
    assert ok.status_code == 200
    anything = await http.patch(path, json={"notes": "four"}, headers={"If-Match": "*"})
    assert anything.status_code == 200


@pytest.mark.parametrize("action", ["delete", "issue", "pay"])
async def test_if_match_guards_deletes_and_custom_verbs(
    http: httpx.AsyncClient, action: str
) -> None:
    invoice = await _draft(http)
    path = f"/v1/invoices/{invoice['id']}"
    if action == "pay":
        issued = await http.post(f"{path}:issue", json={})
        invoice = issued.json()
    await http.patch(path, json={"notes": "moved on"})  # the etag the caller holds is stale
    stale = {"If-Match": invoice["etag"]}
    if action == "delete":
        response = await http.delete(path, headers=stale)
    else:
        response = await http.post(f"{path}:{action}", json={}, headers=stale)
    assert response.status_code == 412, response.text
    after = (await http.get(path)).json()
    assert after["status"] == invoice["status"] and after["amount_paid"] == "0.00"


async def test_if_match_where_there_is_no_precondition_is_refused(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post("/v1/invoices", json=INVOICE, headers={"If-Match": 'W/"1"'})
    assert response.status_code == 400
    assert response.json()["details"][0]["reason"] == "PRECONDITION_NOT_SUPPORTED"


async def test_if_match_disagreeing_with_the_body_is_refused(http: httpx.AsyncClient) -> None:
    invoice = await _draft(http)
    response = await http.patch(
        f"/v1/invoices/{invoice['id']}",
        json={"notes": "x", "etag": invoice["etag"]},
        headers={"If-Match": 'W/"99"'},
    )
    assert response.status_code == 400
    assert response.json()["details"][0]["reason"] == "INVALID_PRECONDITION"


async def test_a_stale_body_etag_stays_409(http: httpx.AsyncClient) -> None:
    invoice = await _draft(http)
    path = f"/v1/invoices/{invoice['id']}"
    await http.patch(path, json={"notes": "moved on"})
    response = await http.patch(path, json={"notes": "x", "etag": invoice["etag"]})
    assert response.status_code == 409  # AIP-154: ABORTED


@pytest.mark.parametrize(
    ("collection", "expected"),
    [("/v1/invoices", "/v1/invoices/"), ("/api/v1/finance/invoices", "/api/v1/finance/invoices/")],
)
async def test_created_resources_have_a_location(
    http: httpx.AsyncClient, collection: str, expected: str
) -> None:
    created = await http.post(collection, json=INVOICE)
    assert created.status_code == 201
    location = created.headers["location"]
    assert location == expected + created.json()["id"]
    assert (await http.get(location)).json()["id"] == created.json()["id"]


async def test_a_replayed_request_says_so(http: httpx.AsyncClient) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = await http.post("/v1/invoices", json=INVOICE, headers=key)
    again = await http.post("/v1/invoices", json=INVOICE, headers=key)
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()


async def test_a_replayed_grpc_call_says_so_in_trailing_metadata(
    invoices: Invoices, md: Metadata
) -> None:
    request = ipb.CreateInvoiceRequest(invoice=sample_invoice(), request_id=uuid.uuid4().hex)
    first = invoices.CreateInvoice(request, metadata=md)
    await first
    assert ("idempotent-replayed", "true") not in tuple(await first.trailing_metadata())
    again = invoices.CreateInvoice(request, metadata=md)
    await again
    assert ("idempotent-replayed", "true") in tuple(await again.trailing_metadata())


async def test_the_documented_examples_work_on_the_first_try(http: httpx.AsyncClient) -> None:
    """What Swagger UI's "Try it out" sends: the document's example body, as is."""
    document = (await http.get("/openapi.json")).json()

    def example(path: str, verb: str) -> Any:
        return document["paths"][path][verb]["requestBody"]["content"]["application/json"][
            "example"
        ]

    created = await http.post("/v1/invoices", json=example("/v1/invoices", "post"))
    assert created.status_code == 201, created.text
    invoice_id = created.json()["id"]
    patched = await http.patch(
        f"/v1/invoices/{invoice_id}", json=example("/v1/invoices/{id}", "patch")
    )
    assert patched.status_code == 200, patched.text
    issued = await http.post(
        f"/v1/invoices/{invoice_id}:issue", json=example("/v1/invoices/{id}:issue", "post")
    )
    assert issued.status_code == 200, issued.text
    paid = await http.post(
        f"/v1/invoices/{invoice_id}:pay", json=example("/v1/invoices/{id}:pay", "post")
    )
    assert paid.status_code == 200, paid.text
    for path, verb, status in (
        ("/v1/transactions", "post", 201),
        ("/v1/exchange-rates", "post", 201),
        ("/v1/workspace-settings", "patch", 200),
        ("/v1/records/query", "post", 200),
    ):
        answer = await http.request(verb.upper(), path, json=example(path, verb))
        assert answer.status_code == status, (path, answer.text)
    # Connections: placeholder secrets (never a real one in the document), a working body.
    body = example("/v1/invoice-connections", "post")
    assert "REPLACE_ME" in body["api_key"]
    connected = await http.post("/v1/invoice-connections", json=body)
    assert connected.status_code == 201, connected.text
    rotated = await http.patch(
        f"/v1/invoice-connections/{connected.json()['id']}",
        json=example("/v1/invoice-connections/{id}", "patch"),
    )
    assert rotated.status_code == 200, rotated.text
