"""The Yooz adapter (PROVIDERS.md, "Inbound provider yooz"): its HTTP API and its documents.

Everything Yooz-specific is here: the listing endpoint and its errors, and the document's
shape. A real Yooz integration later changes this module and its tests, nothing else.
Errors are sanitised: a provider's body may echo the API key, so it is never kept.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from service.invoices import service as invoices
from service.kit.keyring import Secret
from service.kit.money import parse_money

PROVIDER = "yooz"
PAGE_LIMIT = 100
STATUSES = ("received", "approved", "rejected")


class ProviderError(Exception):
    """A failed call, described without anything the provider sent back."""

    def __init__(self, message: str, *, refused: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.refused = refused  # 401: the key is wrong or revoked
        self.retry_after = retry_after  # 429's Retry-After, in seconds


@dataclasses.dataclass(frozen=True)
class Page:
    documents: Sequence[Mapping[str, Any]]
    next_cursor: str | None


class Client:
    def __init__(self, base_url: str, *, timeout_s: float, transport: Any = None) -> None:
        self._base = base_url
        self._http = httpx.AsyncClient(
            timeout=timeout_s, transport=transport, follow_redirects=False
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def list_page(
        self, api_key: Secret, *, updated_after: datetime | None, cursor: str | None
    ) -> Page:
        if not self._base:
            raise ProviderError("YOOZ_BASE_URL is not set on the service")
        params: dict[str, str] = {"limit": str(PAGE_LIMIT)}
        if cursor:
            params["cursor"] = cursor
        elif updated_after is not None:
            params["updated_after"] = (
                updated_after.astimezone(UTC).isoformat().replace("+00:00", "Z")
            )
        headers = {"Authorization": f"Bearer {api_key.reveal()}", "Accept": "application/json"}
        try:
            response = await self._http.get(
                f"{self._base}/v1/invoices", params=params, headers=headers
            )
        except httpx.TimeoutException:
            raise ProviderError("the provider did not answer in time") from None
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"the provider could not be reached ({type(exc).__name__})"
            ) from None
        status = response.status_code
        if status == 401:
            raise ProviderError("the provider refused the API key (401)", refused=True)
        if status == 429:
            raise ProviderError(
                "the provider is rate limiting (429)",
                retry_after=_retry_after(response.headers.get("retry-after")),
            )
        if status >= 500:
            raise ProviderError(f"the provider failed ({status})")
        if status != 200:
            raise ProviderError(f"the provider answered {status}")
        try:
            body = response.json()
            documents = body["data"]
            next_cursor = body.get("next_cursor")
        except (ValueError, KeyError, TypeError):
            raise ProviderError("the provider's answer is not the documented JSON") from None
        if not isinstance(documents, list) or not (
            next_cursor is None or isinstance(next_cursor, str)
        ):
            raise ProviderError("the provider's answer is not the documented JSON")
        return Page([d for d in documents if isinstance(d, dict)], next_cursor or None)


def _retry_after(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    if seconds is None or seconds != seconds or seconds < 0:
        return None
    return min(seconds, 3600.0)


def backoff(failures: int, interval: timedelta) -> timedelta:
    """Exponential with full jitter, from 5 s, never beyond the polling interval."""
    ceiling = min(5.0 * 2 ** min(failures, 20), interval.total_seconds())
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))  # noqa: S311 (jitter)


# ---- documents ----------------------------------------------------------------------------


class Malformed(ValueError):
    """A document that cannot become an invoice (the reason names the field)."""


def parse(raw: Mapping[str, Any]) -> invoices.IncomingDocument:
    doc_id = _text(raw, "id", required=True, limit=200)
    status = _text(raw, "status", required=True, limit=20)
    if status not in STATUSES:
        raise Malformed(f"status {status[:20]!r} is not one of {', '.join(STATUSES)}")
    updated_at = _timestamp(raw.get("updated_at"), "updated_at")
    currency = _text(raw, "currency", required=True, limit=3).upper()
    if status == "rejected":
        return _rejected(doc_id, updated_at, currency)
    lines = raw.get("lines")
    if not isinstance(lines, list) or not lines or len(lines) > 500:
        raise Malformed("lines must be a list of 1..500 lines")
    parsed = tuple(_line(item, index, currency) for index, item in enumerate(lines))
    given = raw.get("supplier")
    supplier: Mapping[str, Any] = given if isinstance(given, dict) else {}
    totals_text = {
        name: str(raw.get(name, ""))[:64] for name in ("total_excluding_tax", "tax_amount", "total")
    }
    url = raw.get("document_url")
    return invoices.IncomingDocument(
        provider=PROVIDER,
        external_id=doc_id,
        updated_at=updated_at,
        rejected=False,
        number=_text(raw, "number", limit=100) or None,
        currency=currency,
        issue_date=_date(raw.get("issue_date"), "issue_date"),
        due_date=_date(raw.get("due_date"), "due_date"),
        lines=parsed,
        totals_text=totals_text,
        subtotal=_money(raw.get("total_excluding_tax"), currency, "total_excluding_tax"),
        tax_amount=_money(raw.get("tax_amount"), currency, "tax_amount"),
        total=_money(raw.get("total"), currency, "total"),
        document_url=url[:2048] if isinstance(url, str) else "",
        supplier_name=str(supplier.get("name") or "")[:200],
        supplier_siret=str(supplier.get("siret") or "")[:32],
        supplier_siren=str(supplier.get("siren") or "")[:32],
    )


def _rejected(doc_id: str, updated_at: datetime, currency: str) -> invoices.IncomingDocument:
    zero = Decimal(0)
    return invoices.IncomingDocument(
        provider=PROVIDER,
        external_id=doc_id,
        updated_at=updated_at,
        rejected=True,
        number=None,
        currency=currency,
        issue_date=None,
        due_date=None,
        lines=(),
        totals_text={},
        subtotal=zero,
        tax_amount=zero,
        total=zero,
        document_url="",
        supplier_name="",
        supplier_siret="",
        supplier_siren="",
    )


def _line(item: Any, index: int, currency: str) -> invoices.LineInput:
    if not isinstance(item, dict):
        raise Malformed(f"lines[{index}] is not an object")
    where = f"lines[{index}]"
    quantity = _decimal(item.get("quantity"), f"{where}.quantity")
    unit_price = _decimal(item.get("unit_price"), f"{where}.unit_price")
    rate = _decimal(item.get("tax_rate", "0"), f"{where}.tax_rate")
    if not Decimal(0) <= rate <= Decimal(1):
        raise Malformed(f"{where}.tax_rate must be between 0 and 1")
    if quantity <= 0:
        raise Malformed(f"{where}.quantity must be positive")
    return invoices.LineInput(
        quantity=quantity,
        unit_price=unit_price,
        description=str(item.get("description") or "")[:1000],
        tax_rate=rate,
    )


def _text(raw: Mapping[str, Any], name: str, *, required: bool = False, limit: int) -> str:
    value = raw.get(name)
    if value is None or value == "":
        if required:
            raise Malformed(f"{name} is missing")
        return ""
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise Malformed(f"{name} must be a string of at most {limit} characters")
    return value


def _decimal(value: Any, name: str) -> Decimal:
    if not isinstance(value, str):
        raise Malformed(f"{name} must be a decimal string")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise Malformed(f"{name} must be a decimal string") from None
    if not number.is_finite() or abs(number) >= Decimal("1e12") or len(value) > 40:
        raise Malformed(f"{name} is out of range")
    return number


def _money(value: Any, currency: str, name: str) -> Decimal:
    if not isinstance(value, str):
        raise Malformed(f"{name} must be a decimal string")
    try:
        return parse_money(value, currency, name)
    except Exception:
        raise Malformed(f"{name} is not an amount in {currency[:3]}") from None


def _date(value: Any, name: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        parsed = date.fromisoformat(str(value))
    except ValueError:
        raise Malformed(f"{name} must be a date (YYYY-MM-DD)") from None
    if not 1900 <= parsed.year <= 9999:
        raise Malformed(f"{name} is out of range")
    return parsed


def _timestamp(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise Malformed(f"{name} is missing")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Malformed(f"{name} must be an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise Malformed(f"{name} must carry a time zone")
    return parsed.astimezone(UTC)
