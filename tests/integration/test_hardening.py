"""Regression tests for what broke when the service was tried as an attacker and as a new
user would (issue "Hardening and operations"): each one failed before its fix.

  overflowing conversions · filter values out of a column's range · idempotency keyed by
  app · undecodable requests · filter cache collisions · totals on issued invoices ·
  token claims · dates out of range
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import grpc
import httpx
import jwt
import pytest
from google.protobuf import struct_pb2
from invoicing.v1 import allocations_pb2 as apb
from invoicing.v1 import invoices_pb2 as ipb
from invoicing.v1 import records_pb2 as rpb
from invoicing.v1 import records_pb2_grpc

from service.kit import config
from tests.conftest import Tokens, error_info, sample_invoice
from tests.factories import (
    Allocs,
    Code,
    Invoices,
    Metadata,
    create_rate,
    fails,
    invalid,
    issued_invoice,
    mask,
    precondition,
    today_utc,
)

# ---- 2. conversions that would overflow what can be stored ------------------------------


async def _accounting(allocations: Allocs, md: Metadata, currency: str) -> None:
    await allocations.UpdateWorkspaceSettings(
        apb.UpdateWorkspaceSettingsRequest(
            settings=apb.WorkspaceSettings(accounting_currency=currency)
        ),
        metadata=md,
    )


async def test_pay_whose_accounting_amount_would_overflow_is_refused_naming_the_field(
    invoices: Invoices, allocations: Allocs, md: Metadata, admin: Any, tenant: uuid.UUID
) -> None:
    await _accounting(allocations, md, "JPY")
    await create_rate(allocations, md, "EUR", "JPY", "1000000000000", on=today_utc())
    big = ipb.LineItem(description="x", quantity="1000", unit_price="999999999.99")
    invoice = await issued_invoice(invoices, md, line_items=[big])
    err = await invalid(
        invoices.PayInvoice(ipb.PayInvoiceRequest(id=invoice.id), metadata=md),
        "amount",
        "AMOUNT_TOO_LARGE",
    )
    assert "JPY" in err.details()
    # Nothing written: no transaction, no allocation, the invoice unpaid.
    assert await admin.fetchval("SELECT count(*) FROM transactions WHERE tenant_id=$1", tenant) == 0
    again = await invoices.GetInvoice(ipb.GetInvoiceRequest(id=invoice.id), metadata=md)
    assert again.amount_paid == "0.00"
    # A payment whose conversions fit is still accepted.
    paid = await invoices.PayInvoice(
        ipb.PayInvoiceRequest(id=invoice.id, amount="1000.00"), metadata=md
    )
    assert paid.amount_paid == "1000.00"


async def test_pay_the_due_in_a_currency_it_cannot_be_stored_in_is_refused(
    invoices: Invoices, allocations: Allocs, md: Metadata
) -> None:
    # 1 XXX... the amount due in a currency worth 1e-10 EUR has 27 integer digits.
    await create_rate(allocations, md, "EUR", "IDR", "1000000000000", on=today_utc())
    big = ipb.LineItem(description="x", quantity="1000", unit_price="999999999.99")
    invoice = await issued_invoice(invoices, md, line_items=[big])
    await invalid(
        invoices.PayInvoice(ipb.PayInvoiceRequest(id=invoice.id, currency="IDR"), metadata=md),
        "amount",
        "AMOUNT_TOO_LARGE",
    )


# ---- 3. filter values beyond a column's range -------------------------------------------

OUT_OF_RANGE_FILTERS = [
    ("total > 1234567890123456789012345", True),  # 25 digits: false for every row, not a 500
    ("total < 1234567890123456789012345", True),
    ("amount_paid = 0.000001", True),  # more places than stored: compared exactly
    ("project_sequence_id = 2147483648", True),  # past int4
    ("order_id = 9223372036854775807", True),
    ('created_at > "0001-01-01T00:00:00+14:00"', False),  # year 0 in UTC
    ('created_at < "9999-12-31T23:59:59-14:00"', False),  # year 10000 in UTC
    ("project_sequence_id = 9223372036854775808", False),  # past int64
]


@pytest.mark.parametrize(("text", "accepted"), OUT_OF_RANGE_FILTERS)
async def test_filter_values_out_of_a_columns_range_never_fail_internally(
    invoices: Invoices, md: Metadata, text: str, accepted: bool
) -> None:
    await invoices.CreateInvoice(ipb.CreateInvoiceRequest(invoice=sample_invoice()), metadata=md)
    call = invoices.ListInvoices(ipb.ListInvoicesRequest(filter=text), metadata=md)
    if accepted:
        page = await call
        expected = 1 if text.startswith("total <") else 0
        assert len(page.data) == expected
    else:
        err = await invalid(call, "filter", "INVALID_FILTER_VALUE")
        assert "range" in err.details()


@pytest.mark.parametrize(
    "text", ["total > 99999999999999999999999", "total > 1000000000000000000000000000000.5"]
)
async def test_allocation_lists_take_huge_numbers_too(
    allocations: Allocs, md: Metadata, text: str
) -> None:
    for field in ("amount", "invoice.total"):
        page = await allocations.ListAllocations(
            apb.ListAllocationsRequest(filter=text.replace("total", field)), metadata=md
        )
        assert list(page.data) == []


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
async def test_non_finite_numbers_in_a_where_clause_are_invalid_over_rest(
    rest_base_url: str, tokens: Tokens, tenant: uuid.UUID, number: str
) -> None:
    clause = '{"amount": {"_gt": NUMBER}}'.replace("NUMBER", number)
    body = f'{{"root": "invoice_transactions", "whereClause": {clause}}}'
    headers = {
        "Authorization": f"Bearer {tokens.token(tenant)}",
        "Content-Type": "application/json",
    }
    async with httpx.AsyncClient(base_url=rest_base_url) as http:
        response = await http.post("/v1/records/query", content=body, headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()  # seed 003's error shape on its path
    assert (error["code"], error["meta"]["grpc_code"]) == ("BAD_REQUEST", "INVALID_ARGUMENT")
    assert number.lstrip("-") in error["message"] or "out of range" in error["message"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
async def test_non_finite_numbers_in_a_where_clause_are_invalid_over_grpc(
    channel: grpc.aio.Channel, md: Metadata, value: float
) -> None:
    where = struct_pb2.Struct()
    where.update({"amount": {"_gt": 0}})
    where["amount"]["_gt"] = value
    stub = records_pb2_grpc.RecordsServiceStub(channel)
    request = rpb.QueryRecordsRequest(root="invoice_transactions", where_clause=where)
    await invalid(stub.QueryRecords(request, metadata=md), "where_clause")


# ---- 4. idempotency keys are per app ----------------------------------------------------


async def test_another_apps_request_id_is_its_own_request(
    invoices: Invoices, tokens: Tokens, tenant: uuid.UUID
) -> None:
    app_x, app_y = tokens.md(tenant, app_id="app-x"), tokens.md(tenant, app_id="app-y")
    request = ipb.CreateInvoiceRequest(invoice=sample_invoice(), request_id="shared-id")
    first = await invoices.CreateInvoice(request, metadata=app_x)
    other = await invoices.CreateInvoice(request, metadata=app_y)
    assert other.id != first.id and other.app_id == "app-y"
    human = await invoices.CreateInvoice(request, metadata=tokens.md(tenant))
    assert human.id not in (first.id, other.id) and human.app_id == ""
    # Each app still gets its own replay.
    assert (await invoices.CreateInvoice(request, metadata=app_x)).id == first.id
    assert (await invoices.CreateInvoice(request, metadata=app_y)).id == other.id


# ---- 8. undecodable requests ------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b"\x0a\x05\xff\xfe\xfd\xfc\xfb",  # field 1 (string id) with invalid UTF-8
        b"\x0a\x20abc",  # length 32, 3 bytes follow: truncated
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",  # a broken varint tag
    ],
)
async def test_undecodable_protobuf_is_invalid_argument_in_the_usual_shape(
    channel: grpc.aio.Channel, md: Metadata, payload: bytes
) -> None:
    call = channel.unary_unary(
        "/invoicing.v1.InvoiceService/GetInvoice",
        request_serializer=lambda raw: raw,
        response_deserializer=lambda raw: raw,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(payload, metadata=(*md, ("x-request-id", "undecodable-1")))
    err = caught.value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(err)
    assert info.reason == "MALFORMED_REQUEST" and info.domain == "invoicing.v1"
    assert ("x-request-id", "undecodable-1") in tuple(err.trailing_metadata() or ())


async def test_undecodable_protobuf_without_a_token_is_unauthenticated_first(
    channel: grpc.aio.Channel,
) -> None:
    call = channel.unary_unary(
        "/invoicing.v1.InvoiceService/GetInvoice",
        request_serializer=lambda raw: raw,
        response_deserializer=lambda raw: raw,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(b"\x0a\x20abc")
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


# ---- 10. a filter's validity does not depend on the statement cache -------------------


async def test_aip160_filter_never_reuses_a_where_clause_statement(
    allocations: Allocs, channel: grpc.aio.Channel, md: Metadata
) -> None:
    where = {"amount": {"_gt": "1"}}
    canonical = json.dumps(where, sort_keys=True, separators=(",", ":"))
    text = f"json:{canonical}"
    before = await fails(
        allocations.ListAllocations(apb.ListAllocationsRequest(filter=text), metadata=md),
        Code.INVALID_ARGUMENT,
    )
    clause = struct_pb2.Struct()
    clause.update(where)
    records = records_pb2_grpc.RecordsServiceStub(channel)
    await records.QueryRecords(
        rpb.QueryRecordsRequest(root="invoice_transactions", where_clause=clause), metadata=md
    )
    after = await fails(
        allocations.ListAllocations(apb.ListAllocationsRequest(filter=text), metadata=md),
        Code.INVALID_ARGUMENT,
    )
    assert error_info(before).reason == error_info(after).reason


# ---- 11. totals in the mask of an issued invoice ----------------------------------------


@pytest.mark.parametrize("name", ["total", "subtotal", "tax_amount", "amount", "discount_amount"])
async def test_issued_invoice_refuses_totals_in_the_mask(
    invoices: Invoices, md: Metadata, name: str
) -> None:
    invoice = await issued_invoice(invoices, md)
    changed = ipb.Invoice(id=invoice.id, **{name: "1.00"})
    metadata = await precondition(
        invoices.UpdateInvoice(
            ipb.UpdateInvoiceRequest(invoice=changed, update_mask=mask(name)), metadata=md
        ),
        "FIELD_NOT_EDITABLE",
    )
    assert metadata["field"] == name and metadata["status"] == "issued"
    # Even with the invoice's own value: money fields of an issued invoice are frozen.
    same = ipb.Invoice(id=invoice.id, **{name: getattr(invoice, name)})
    await precondition(
        invoices.UpdateInvoice(
            ipb.UpdateInvoiceRequest(invoice=same, update_mask=mask(name)), metadata=md
        ),
        "FIELD_NOT_EDITABLE",
    )


# ---- 12. token claims and dates ---------------------------------------------------------


def _token(settings: config.Settings, tenant: uuid.UUID, **claims: Any) -> str:
    body: dict[str, Any] = {
        "sub": "u",
        "tenant_id": str(tenant),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "exp": 4102444800,
        "permissions": ["invoices.read", "invoices.write"],
    }
    body.update(claims)
    secret = (settings.data_dir / "dev-jwt-secret").read_text().strip()
    return jwt.encode(body, secret, algorithm="HS256")


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": "4102444800"},  # a numeric string
        {"exp": True},
        {"app_id": ""},
        {"app_id": 0},
        {"app_id": False},
        {"app_id": ["a"]},
    ],
)
async def test_malformed_claims_are_unauthenticated(
    invoices: Invoices, settings: config.Settings, tenant: uuid.UUID, claims: dict[str, Any]
) -> None:
    token = _token(settings, tenant, **claims)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await invoices.ListInvoices(
            ipb.ListInvoicesRequest(), metadata=(("authorization", f"Bearer {token}"),)
        )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # `exp: true` reads as 1 to PyJWT, which finds it expired first.
    assert error_info(caught.value).reason in {"INVALID_TOKEN", "TOKEN_EXPIRED"}


@pytest.mark.parametrize(
    ("field", "year"),
    [("issue_date", 1), ("issue_date", 999), ("due_date", 1), ("due_date", 10000)],
)
async def test_dates_outside_1900_to_9999_are_out_of_range(
    invoices: Invoices, md: Metadata, field: str, year: int
) -> None:
    from google.type import date_pb2

    value = date_pb2.Date(year=year, month=1, day=1)
    await invalid(
        invoices.CreateInvoice(
            ipb.CreateInvoiceRequest(invoice=sample_invoice(**{field: value})), metadata=md
        ),
        f"invoice.{field}",
    )


# ---- 5. cross-site requests with the session cookie ---------------------------------------


async def _issued_rest(http: httpx.AsyncClient, token: str) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    body = {
        "type": "INVOICE_TYPE_CUSTOMER",
        "currency": "EUR",
        "counterparty_id": "0b9c4a52-8d0e-4a8e-9a51-2f7d4d2c1e11",
        "line_items": [{"description": "x", "quantity": "1", "unit_price": "10.00"}],
    }
    created = await http.post("/v1/invoices", json=body, headers=headers)
    invoice_id = str(created.json()["id"])
    issued = await http.post(f"/v1/invoices/{invoice_id}:issue", json={}, headers=headers)
    assert issued.status_code == 200, issued.text
    return invoice_id


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/x-www-form-urlencoded", "Origin": "https://evil.example"},
        {"Content-Type": "text/plain"},  # a simple request: no preflight
        {},  # no content type at all
        {"Content-Type": "application/json", "Origin": "https://evil.example"},
        {"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"},
    ],
)
async def test_a_cross_site_request_with_the_session_cookie_pays_nothing(
    rest_base_url: str, tokens: Tokens, tenant: uuid.UUID, headers: dict[str, str]
) -> None:
    token = tokens.token(tenant)
    async with httpx.AsyncClient(base_url=rest_base_url) as http:
        invoice_id = await _issued_rest(http, token)
        response = await http.post(
            f"/v1/invoices/{invoice_id}:pay",
            content=b"",
            headers={**headers, "Cookie": f"session={token}"},
        )
        assert response.status_code == 403, response.text
        body = response.json()
        assert body["code"] == "PERMISSION_DENIED"
        assert body["details"][0]["reason"] == "CROSS_SITE_REQUEST"
        got = await http.get(
            f"/v1/invoices/{invoice_id}", headers={"Authorization": f"Bearer {token}"}
        )
        assert got.json()["amount_paid"] == "0.00"


async def test_a_same_site_json_request_with_the_session_cookie_works(
    rest_base_url: str, tokens: Tokens, tenant: uuid.UUID
) -> None:
    token = tokens.token(tenant)
    async with httpx.AsyncClient(base_url=rest_base_url) as http:
        invoice_id = await _issued_rest(http, token)
        own = rest_base_url  # the gateway's own origin
        response = await http.post(
            f"/v1/invoices/{invoice_id}:pay",
            json={"amount": "1.00"},
            headers={"Cookie": f"session={token}", "Origin": own, "Sec-Fetch-Site": "same-origin"},
        )
        assert response.status_code == 200, response.text
        assert response.json()["amount_paid"] == "1.00"
        # Reads need no proof: they change nothing.
        listed = await http.get("/v1/invoices", headers={"Cookie": f"session={token}"})
        assert listed.status_code == 200


async def test_cookie_delete_and_patch_need_no_content_type_but_a_foreign_origin_fails(
    rest_base_url: str, tokens: Tokens, tenant: uuid.UUID
) -> None:
    """A cross-site DELETE or PATCH needs a CORS preflight, so (unlike a POST) it needs no
    JSON content type to prove itself; a foreign Origin still fails it."""
    token = tokens.token(tenant)
    bearer = {"Authorization": f"Bearer {token}"}
    cookie = {"Cookie": f"session={token}"}
    async with httpx.AsyncClient(base_url=rest_base_url) as http:
        body = {"direction": "TRANSACTION_DIRECTION_RECEIVABLE", "amount": "5", "currency": "EUR"}
        created = await http.post("/v1/transactions", json=body, headers=bearer)
        assert created.status_code in (200, 201), created.text
        txn_id = created.json()["id"]
        foreign = await http.delete(
            f"/v1/transactions/{txn_id}",
            headers={**cookie, "Origin": "https://evil.example"},
        )
        assert foreign.status_code == 403, foreign.text
        assert foreign.json()["details"][0]["reason"] == "CROSS_SITE_REQUEST"
        still = await http.get(f"/v1/transactions/{txn_id}", headers=bearer)
        assert still.json().get("deleted_at") is None
        deleted = await http.delete(f"/v1/transactions/{txn_id}", headers=cookie)
        assert deleted.status_code in (200, 204), deleted.text


# ---- 6. odd bytes in Authorization ---------------------------------------------------------


@pytest.mark.parametrize(
    "value", [b"Bearer \tabc", b"Bearer abc\tdef", b"Bearer \xe9t\xe9", b"\xff\xfe", b"Bearer  x"]
)
async def test_authorization_with_odd_bytes_is_401_json(rest_base_url: str, value: bytes) -> None:
    async with httpx.AsyncClient(base_url=rest_base_url) as http:
        response = await http.get("/v1/invoices", headers=[(b"authorization", value)])
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == "UNAUTHENTICATED"


async def test_control_bytes_in_a_header_are_refused_by_the_http_parser(
    rest_base_url: str,
) -> None:
    async with httpx.AsyncClient(base_url=rest_base_url) as http:
        response = await http.get("/v1/invoices", headers=[(b"authorization", b"Bearer a\x01b")])
    assert response.status_code == 400  # not HTTP at all (RFC 9110 field values)


async def test_gateway_errors_carry_an_error_info(rest_base_url: str) -> None:
    async with httpx.AsyncClient(base_url=rest_base_url) as http:
        missing = await http.get("/v1/nowhere")
        wrong = await http.put("/v1/invoices")
    for response, reason in ((missing, "NO_ROUTE"), (wrong, "METHOD_NOT_ALLOWED")):
        infos = [d for d in response.json()["details"] if d["@type"].endswith("ErrorInfo")]
        assert [i["reason"] for i in infos] == [reason]
