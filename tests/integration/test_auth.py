"""Authentication and authorization over the real gRPC port (DESIGN.md section 4,
reliability notes section 7): every bad token is UNAUTHENTICATED, never OK and never
PERMISSION_DENIED; a missing permission is PERMISSION_DENIED; health needs no token;
no error ever echoes the token."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import grpc
import jwt
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from invoicing.v1 import invoices_pb2

from service.kit import auth, config, ids
from tests.conftest import Tokens, error_info, rich_status, sample_invoice

OTHER_SECRET = "a-completely-different-secret-that-is-long-enough-for-hs256-0123456789"


def _claims(settings: config.Settings, tenant: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "auth-test-user",
        "tenant_id": str(tenant),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + 600,
        "permissions": list(auth.PERMISSIONS),
    }
    for name, value in overrides.items():
        if value is _DROP:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


_DROP = object()


def _sign(settings: config.Settings, claims: dict[str, Any], **kwargs: Any) -> str:
    return jwt.encode(claims, auth.dev_secret(settings.data_dir), algorithm="HS256", **kwargs)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(claims: dict[str, Any]) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    return f"{header}.{payload}."


def _get_request() -> invoices_pb2.GetInvoiceRequest:
    return invoices_pb2.GetInvoiceRequest(id=ids.new_id(ids.PREFIXES["invoice"])[1])


async def _call_with(invoices: Any, authorization: str | None) -> grpc.aio.AioRpcError:
    metadata = () if authorization is None else (("authorization", authorization),)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await invoices.GetInvoice(_get_request(), metadata=metadata)
    return caught.value


def _assert_no_leak(err: grpc.aio.AioRpcError, secret: str) -> None:
    if not secret:
        return
    assert secret not in (err.details() or "")
    assert secret.encode() not in rich_status(err).SerializeToString()
    for key, value in err.trailing_metadata() or ():
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
        assert secret not in text, key


async def _assert_unauthenticated(invoices: Any, token: str, reason: str | None = None) -> None:
    err = await _call_with(invoices, f"Bearer {token}")
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED, (err.code(), err.details())
    info = error_info(err)
    if reason is not None:
        assert info.reason == reason
    _assert_no_leak(err, token)


# ---- the happy path, so the negatives below mean something ---------------------------


async def test_get_reaches_handler_with_valid_token(invoices: Any, md: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await invoices.GetInvoice(_get_request(), metadata=md)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_hand_minted_token_is_accepted_when_all_claims_valid(
    invoices: Any, settings: config.Settings, tenant: uuid.UUID
) -> None:
    token = _sign(settings, _claims(settings, tenant))
    created = await invoices.CreateInvoice(
        invoices_pb2.CreateInvoiceRequest(invoice=sample_invoice()),
        metadata=(("authorization", f"Bearer {token}"),),
    )
    assert created.tenant_id == str(tenant)
    assert created.created_by == "auth-test-user"


async def test_expired_within_leeway_is_accepted(
    invoices: Any, settings: config.Settings, tenant: uuid.UUID
) -> None:
    exp = int(time.time()) - settings.jwt_leeway_seconds + 10
    token = _sign(settings, _claims(settings, tenant, exp=exp))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await invoices.GetInvoice(_get_request(), metadata=(("authorization", f"Bearer {token}"),))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


# ---- missing or malformed credentials ---------------------------------------------------


async def test_call_without_metadata_is_unauthenticated_missing_token(invoices: Any) -> None:
    err = await _call_with(invoices, None)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    info = error_info(err)
    assert info.reason == "MISSING_TOKEN"
    assert info.domain == "invoicing.v1"


async def test_basic_scheme_is_unauthenticated(invoices: Any) -> None:
    err = await _call_with(invoices, "Basic x")
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(err).reason == "INVALID_TOKEN"


async def test_bearer_without_token_is_unauthenticated(invoices: Any) -> None:
    err = await _call_with(invoices, "Bearer    ")
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_garbage_token_is_unauthenticated(invoices: Any) -> None:
    await _assert_unauthenticated(invoices, "not-a-jwt-garbage-token-1234", "INVALID_TOKEN")


async def test_alg_none_token_is_unauthenticated(
    invoices: Any, settings: config.Settings, tenant: uuid.UUID
) -> None:
    await _assert_unauthenticated(invoices, _unsigned(_claims(settings, tenant)), "INVALID_TOKEN")


async def test_token_signed_with_other_secret_is_unauthenticated(
    invoices: Any, settings: config.Settings, tenant: uuid.UUID
) -> None:
    token = jwt.encode(_claims(settings, tenant), OTHER_SECRET, algorithm="HS256")
    await _assert_unauthenticated(invoices, token, "INVALID_TOKEN")


async def test_token_with_unpinned_algorithm_is_unauthenticated(
    invoices: Any, settings: config.Settings, tenant: uuid.UUID
) -> None:
    token = jwt.encode(
        _claims(settings, tenant), auth.dev_secret(settings.data_dir), algorithm="HS512"
    )
    await _assert_unauthenticated(invoices, token, "INVALID_TOKEN")


async def test_tampered_payload_is_unauthenticated(
    invoices: Any, settings: config.Settings, tenant: uuid.UUID
) -> None:
    header, _, signature = _sign(settings, _claims(settings, tenant)).split(".")
    forged = _b64(json.dumps(_claims(settings, uuid.uuid4())).encode())
    await _assert_unauthenticated(invoices, f"{header}.{forged}.{signature}", "INVALID_TOKEN")


async def test_expired_token_is_unauthenticated(
    invoices: Any, settings: config.Settings, tenant: uuid.UUID
) -> None:
    exp = int(time.time()) - settings.jwt_leeway_seconds - 5
    token = _sign(settings, _claims(settings, tenant, exp=exp, iat=exp - 60))
    await _assert_unauthenticated(invoices, token, "TOKEN_EXPIRED")


async def test_not_yet_valid_token_is_unauthenticated(
    invoices: Any, settings: config.Settings, tenant: uuid.UUID
) -> None:
    nbf = int(time.time()) + settings.jwt_leeway_seconds + 600
    token = _sign(settings, _claims(settings, tenant, nbf=nbf))
    await _assert_unauthenticated(invoices, token)


@pytest.mark.parametrize("claim", ["exp", "iss", "aud", "sub"])
async def test_token_missing_required_claim_is_unauthenticated(
    invoices: Any, settings: config.Settings, tenant: uuid.UUID, claim: str
) -> None:
    token = _sign(settings, _claims(settings, tenant, **{claim: _DROP}))
    await _assert_unauthenticated(invoices, token, "INVALID_TOKEN")


@pytest.mark.parametrize("subject", ["", "   "], ids=["empty", "blank"])
async def test_token_with_blank_subject_is_unauthenticated(
    invoices: Any, settings: config.Settings, tenant: uuid.UUID, subject: str
) -> None:
    """RFC 8725 section 3.8: validate `sub`. A blank subject would stamp writes with an
    anonymous created_by/updated_by (DESIGN.md section 4: audit stamps are the token sub)."""
    token = _sign(settings, _claims(settings, tenant, sub=subject))
    await _assert_unauthenticated(invoices, token)


async def test_wrong_issuer_is_unauthenticated(
    invoices: Any, settings: config.Settings, tenant: uuid.UUID
) -> None:
    token = _sign(settings, _claims(settings, tenant, iss="https://evil.example"))
    await _assert_unauthenticated(invoices, token, "INVALID_TOKEN")


async def test_wrong_audience_is_unauthenticated(
    invoices: Any, settings: config.Settings, tenant: uuid.UUID
) -> None:
    token = _sign(settings, _claims(settings, tenant, aud="some-other-service"))
    await _assert_unauthenticated(invoices, token, "INVALID_TOKEN")


@pytest.mark.parametrize(
    "tenant_claim",
    [_DROP, "", "not-a-uuid", "12345", 12345, None, ["0b9c4a52-8d0e-4a8e-9a51-2f7d4d2c1e11"]],
    ids=["missing", "empty", "text", "digits", "int", "null", "list"],
)
async def test_token_with_invalid_tenant_claim_is_unauthenticated(
    invoices: Any, settings: config.Settings, tenant: uuid.UUID, tenant_claim: Any
) -> None:
    token = _sign(settings, _claims(settings, tenant, tenant_id=tenant_claim))
    await _assert_unauthenticated(invoices, token, "INVALID_TOKEN")


# ---- authorization ------------------------------------------------------------------------


async def test_write_without_write_permission_is_permission_denied(
    invoices: Any, tokens: Tokens, tenant: uuid.UUID
) -> None:
    md = tokens.md(tenant, permissions=["invoices.read"])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await invoices.CreateInvoice(
            invoices_pb2.CreateInvoiceRequest(invoice=sample_invoice()), metadata=md
        )
    err = caught.value
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    info = error_info(err)
    assert info.reason == "MISSING_PERMISSION"
    assert info.metadata["permission"] == "invoices.write"


async def test_read_without_read_permission_is_permission_denied(
    invoices: Any, tokens: Tokens, tenant: uuid.UUID
) -> None:
    md = tokens.md(tenant, permissions=["invoices.write"])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await invoices.GetInvoice(_get_request(), metadata=md)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(caught.value).reason == "MISSING_PERMISSION"


async def test_token_without_permissions_claim_is_permission_denied(
    invoices: Any, settings: config.Settings, tenant: uuid.UUID
) -> None:
    token = _sign(settings, _claims(settings, tenant, permissions=_DROP))
    err = await _call_with(invoices, f"Bearer {token}")
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(err).reason == "MISSING_PERMISSION"
    _assert_no_leak(err, token)


async def test_read_permission_allows_read(
    invoices: Any, tokens: Tokens, tenant: uuid.UUID
) -> None:
    created = await invoices.CreateInvoice(
        invoices_pb2.CreateInvoiceRequest(invoice=sample_invoice()), metadata=tokens.md(tenant)
    )
    got = await invoices.GetInvoice(
        invoices_pb2.GetInvoiceRequest(id=created.id),
        metadata=tokens.md(tenant, permissions=["invoices.read"]),
    )
    assert got.id == created.id


# ---- public services ------------------------------------------------------------------------


@pytest.mark.parametrize("service_name", ["", "invoicing.v1.InvoiceService"])
async def test_health_check_without_token_is_serving(
    channel: grpc.aio.Channel, service_name: str
) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=service_name))
    assert response.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("typ", ["JWE", "refresh", "id_token"])
async def test_token_with_a_non_jwt_typ_header_is_unauthenticated(
    invoices: Any, settings: config.Settings, tenant: uuid.UUID, typ: str
) -> None:
    token = _sign(settings, _claims(settings, tenant), headers={"typ": typ})
    await _assert_unauthenticated(invoices, token, "INVALID_TOKEN")


async def test_token_with_at_jwt_typ_header_is_accepted(
    invoices: Any, settings: config.Settings, tenant: uuid.UUID
) -> None:
    token = _sign(settings, _claims(settings, tenant), headers={"typ": "at+jwt"})
    page = await invoices.ListInvoices(
        invoices_pb2.ListInvoicesRequest(), metadata=(("authorization", f"Bearer {token}"),)
    )
    assert list(page.data) == []
