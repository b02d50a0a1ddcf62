"""Allocation use cases. Each runs inside the caller's transaction and never commits.

Every allocation write locks the invoice row first (through the invoices service), then
the transaction row: one fixed order, so concurrent allocations queue instead of
deadlocking. The checks run on the locked rows; CHECK constraints back both sums.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func

from service.allocations import queries, repository, rules
from service.invoices import rules as invoice_rules
from service.invoices import service as invoices
from service.kit import db, errors, etags, ids, listing
from service.kit.auth import Principal
from service.kit.pagination import CursorCodec


@dataclass(frozen=True)
class Deps:
    cursors: CursorCodec
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def today(self) -> date:
        return self.clock().date()


@dataclass(frozen=True)
class AllocationRequest:
    """A CreateAllocation as decoded at the edge; `amount` is parsed here, in the
    transaction's currency."""

    invoice_id: uuid.UUID
    transaction_id: uuid.UUID
    amount: str
    currency: str | None = None
    exchange_rate_id: uuid.UUID | None = None
    subscription_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Payment:
    """A PayInvoice as decoded at the edge."""

    invoice_id: uuid.UUID
    amount: str = ""
    currency: str | None = None
    paid_at: datetime | None = None
    reference: str = ""


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str
    total: int | None


# ---- transactions ------------------------------------------------------------------


async def create_transaction(
    conn: db.Conn, principal: Principal, *, draft: rules.TransactionDraft, deps: Deps
) -> rules.Transaction:
    return await repository.insert_transaction(conn, _transaction_values(principal, draft, deps))


def _transaction_values(
    principal: Principal, draft: rules.TransactionDraft, deps: Deps
) -> dict[str, Any]:
    return {
        "tenant_id": principal.tenant_id,
        "id": ids.new_uuid7(),
        "app_id": principal.app_id,
        "direction": draft.direction,
        "amount": draft.amount,
        "currency": draft.currency,
        "value_date": draft.value_date or deps.today(),
        "reference": draft.reference,
        "counterparty_id": draft.counterparty_id,
        "subscription_id": draft.subscription_id,
        "created_by": principal.subject,
        "updated_by": principal.subject,
    }


async def get_transaction(
    conn: db.Conn, principal: Principal, *, transaction_id: uuid.UUID
) -> rules.Transaction:
    transaction = await repository.get_transaction(conn, principal, transaction_id)
    if transaction is None:
        raise _not_found("transaction", transaction_id)
    return transaction


async def list_transactions(
    conn: db.Conn, principal: Principal, *, query: listing.Query, deps: Deps
) -> Page:
    page = await listing.list_page(conn, principal, queries.TRANSACTIONS, query, deps.cursors)
    items = [repository.transaction_from_row(row) for row in page.rows]
    return Page(items, page.next_cursor, page.total)


async def delete_transaction(
    conn: db.Conn, principal: Principal, *, transaction_id: uuid.UUID, etag: str
) -> rules.Transaction:
    transaction = await _locked_transaction(conn, principal, transaction_id)
    etags.check(transaction.etag, etag, "transaction")
    rules.check_deletable(transaction)
    values = {"deleted_at": func.now(), "deleted_by": principal.subject}
    return await repository.update_transaction(conn, principal, transaction_id, values)


async def _locked_transaction(
    conn: db.Conn, principal: Principal, transaction_id: uuid.UUID
) -> rules.Transaction:
    transaction = await repository.get_transaction(conn, principal, transaction_id, for_update=True)
    if transaction is None or transaction.deleted_at is not None:
        raise _not_found("transaction", transaction_id)
    return transaction


# ---- exchange rates ----------------------------------------------------------------


async def create_exchange_rate(
    conn: db.Conn, principal: Principal, *, draft: rules.RateDraft
) -> rules.Rate:
    return await repository.insert_rate(
        conn,
        {
            "tenant_id": principal.tenant_id,
            "id": ids.new_uuid7(),
            "base_currency": draft.base_currency,
            "quote_currency": draft.quote_currency,
            "rate": draft.rate,
            "rate_date": draft.rate_date,
            "source": draft.source,
            "created_by": principal.subject,
        },
    )


async def get_exchange_rate(
    conn: db.Conn, principal: Principal, *, rate_id: uuid.UUID
) -> rules.Rate:
    rate = await repository.get_rate(conn, principal, rate_id)
    if rate is None:
        raise _not_found("exchange_rate", rate_id)
    return rate


async def list_exchange_rates(
    conn: db.Conn, principal: Principal, *, query: listing.Query, deps: Deps
) -> Page:
    page = await listing.list_page(conn, principal, queries.EXCHANGE_RATES, query, deps.cursors)
    return Page([repository.rate_from_row(row) for row in page.rows], page.next_cursor, page.total)


# ---- allocations -------------------------------------------------------------------


async def create_allocation(
    conn: db.Conn, principal: Principal, *, request: AllocationRequest
) -> rules.Allocation:
    invoice = await invoices.lock_for_payment(conn, principal, invoice_id=request.invoice_id)
    transaction = await _locked_transaction(conn, principal, request.transaction_id)
    _check_payable(invoice)
    if request.currency is not None and request.currency != transaction.currency:
        raise errors.invalid(
            "allocation.currency",
            f"must be the transaction's currency {transaction.currency}",
            reason="CURRENCY_MISMATCH",
        )
    amount = rules.parse_positive(request.amount, transaction.currency, "allocation.amount")
    rate = await _given_or_found_rate(
        conn, principal, request.exchange_rate_id, transaction, invoice.draft.currency
    )
    allocation, _ = await _allocate(
        conn,
        principal,
        invoice=invoice,
        transaction=transaction,
        amount=amount,
        rate=rate,
        subscription_id=request.subscription_id or transaction.subscription_id,
        amount_path="allocation.amount",
    )
    return allocation


async def pay_invoice(
    conn: db.Conn, principal: Principal, *, payment: Payment, deps: Deps
) -> invoice_rules.Invoice:
    """Record a payment for the invoice and allocate all of it, in one transaction."""
    invoice = await invoices.lock_for_payment(conn, principal, invoice_id=payment.invoice_id)
    _check_payable(invoice)
    invoice_currency = invoice.draft.currency
    currency = payment.currency or invoice_currency
    value_date = payment.paid_at.astimezone(UTC).date() if payment.paid_at else deps.today()
    rate = None
    if currency != invoice_currency:
        rate = await _found_rate(conn, principal, currency, invoice_currency, value_date)
    if payment.amount:
        amount = rules.parse_positive(payment.amount, currency, "amount")
    else:
        amount = _amount_due_in(invoice, currency, rate)
    draft = rules.TransactionDraft(
        direction=_direction(invoice),
        amount=amount,
        currency=currency,
        value_date=value_date,
        reference=payment.reference,
        counterparty_id=invoice.draft.counterparty_id,
        subscription_id=None,
    )
    transaction = await repository.insert_transaction(
        conn, _transaction_values(principal, draft, deps)
    )
    _, paid = await _allocate(
        conn,
        principal,
        invoice=invoice,
        transaction=transaction,
        amount=amount,
        rate=rate,
        subscription_id=None,
        amount_path="amount",
        paid_at=payment.paid_at,
    )
    return paid


def _amount_due_in(
    invoice: invoice_rules.Invoice, currency: str, rate: rules.Rate | None
) -> Decimal:
    due = invoice.amount_due
    if due <= rules.ZERO:
        raise errors.failed_precondition(
            "the invoice is already paid", "INVOICE_ALREADY_PAID", amountDue="0"
        )
    if rate is None:
        return due
    amount = rules.largest_amount_within(due, rate, currency, invoice.draft.currency)
    if amount <= rules.ZERO:
        raise errors.invalid(
            "amount",
            f"the amount due is smaller than one minor unit of {currency} converted",
            reason="AMOUNT_TOO_SMALL",
        )
    return amount


async def _allocate(
    conn: db.Conn,
    principal: Principal,
    *,
    invoice: invoice_rules.Invoice,
    transaction: rules.Transaction,
    amount: Decimal,
    rate: rules.Rate | None,
    subscription_id: uuid.UUID | None,
    amount_path: str,
    paid_at: datetime | None = None,
) -> tuple[rules.Allocation, invoice_rules.Invoice]:
    """Apply `amount` of the locked transaction to the locked invoice."""
    payee = _payee(invoice)
    rules.check_direction(payee, transaction)
    rules.check_unallocated(transaction, amount)
    settings = await repository.get_settings(conn, principal.tenant_id)
    accounting = settings.accounting_currency
    accounting_rate = None
    if rules.accounting_pair_needs_rate(transaction.currency, payee.currency, accounting):
        accounting_rate = await _found_rate(
            conn, principal, payee.currency, accounting, transaction.value_date
        )
    converted = rules.amounts(
        amount,
        transaction.currency,
        invoice_currency=payee.currency,
        accounting_currency=accounting,
        rate=rate,
        accounting_rate=accounting_rate,
    )
    rules.check_not_zero(converted.invoice_amount, amount_path)
    rules.check_within_due(payee, converted.invoice_amount)
    paid = await invoices.apply_payment(
        conn, principal, invoice=invoice, delta=converted.invoice_amount, paid_at=paid_at
    )
    await repository.add_allocated(conn, principal, transaction.id, amount)
    kind = rules.allocation_type(_payee(paid))
    allocation_id = ids.new_uuid7()
    values = {
        "tenant_id": principal.tenant_id,
        "id": allocation_id,
        "app_id": principal.app_id,
        "invoice_id": invoice.id,
        "transaction_id": transaction.id,
        "exchange_rate_id": None if rate is None else rate.id,
        "accounting_exchange_rate_id": None if accounting_rate is None else accounting_rate.id,
        "subscription_id": subscription_id,
        "amount": converted.amount,
        "currency": converted.currency,
        "invoice_amount": converted.invoice_amount,
        "invoice_currency": converted.invoice_currency,
        "accounting_amount": converted.accounting_amount,
        "accounting_currency": converted.accounting_currency,
        "allocation_type": kind,
        "composite_fx_rate": rules.composite_fx_rate(rate, accounting_rate),
        "composite_invoice_transaction_summary": rules.summary(
            invoice.draft.number or _label("invoice", invoice.id),
            _label("transaction", transaction.id),
            amount,
            transaction.currency,
            kind,
        ),
        "created_by": principal.subject,
        "updated_by": principal.subject,
    }
    return await repository.insert_allocation(conn, values), paid


async def get_allocation(
    conn: db.Conn, principal: Principal, *, allocation_id: uuid.UUID
) -> rules.Allocation:
    allocation = await repository.get_allocation(conn, principal, allocation_id)
    if allocation is None:
        raise _not_found("allocation", allocation_id)
    return allocation


async def list_allocations(
    conn: db.Conn,
    principal: Principal,
    *,
    query: listing.Query,
    deps: Deps,
    order_field_path: str = "order_by",
) -> Page:
    page = await listing.list_page(
        conn,
        principal,
        queries.ALLOCATIONS,
        query,
        deps.cursors,
        order_field_path=order_field_path,
    )
    items = [repository.allocation_from_row(row) for row in page.rows]
    return Page(items, page.next_cursor, page.total)


async def delete_allocation(
    conn: db.Conn, principal: Principal, *, allocation_id: uuid.UUID, etag: str
) -> rules.Allocation:
    """Reverse: free the amount on the transaction and reopen the invoice."""
    seen = await repository.get_allocation(conn, principal, allocation_id)
    if seen is None or seen.deleted_at is not None:
        raise _not_found("allocation", allocation_id)
    invoice = await invoices.lock_for_payment(conn, principal, invoice_id=seen.invoice_id)
    transaction = await repository.get_transaction(
        conn, principal, seen.transaction_id, for_update=True
    )
    allocation = await repository.get_allocation(conn, principal, allocation_id, for_update=True)
    if allocation is None or allocation.deleted_at is not None or transaction is None:
        raise _not_found("allocation", allocation_id)
    etags.check(allocation.etag, etag, "allocation")
    await invoices.apply_payment(conn, principal, invoice=invoice, delta=-allocation.invoice_amount)
    await repository.add_allocated(conn, principal, transaction.id, -allocation.amount)
    values = {"deleted_at": func.now(), "deleted_by": principal.subject}
    return await repository.update_allocation(conn, principal, allocation_id, values)


# ---- workspace settings ------------------------------------------------------------


async def get_settings(conn: db.Conn, principal: Principal) -> rules.Settings:
    return await repository.get_settings(conn, principal.tenant_id)


async def update_settings(
    conn: db.Conn, principal: Principal, *, changes: Mapping[str, Any], etag: str
) -> rules.Settings:
    current = await repository.get_settings(conn, principal.tenant_id, for_update=True)
    etags.check(current.etag, etag, "workspace settings")
    if not changes:
        return current
    return await repository.upsert_settings(conn, principal, changes)


# ---- helpers -----------------------------------------------------------------------


def _check_payable(invoice: invoice_rules.Invoice) -> None:
    rules.check_payable(_payee(invoice))


def _direction(invoice: invoice_rules.Invoice) -> str:
    direction = invoice.draft.direction
    assert direction is not None, "a stored invoice always has its direction"
    return direction


def _payee(invoice: invoice_rules.Invoice) -> rules.Payee:
    return rules.Payee(
        id=invoice.id,
        status=invoice.status,
        direction=_direction(invoice),
        currency=invoice.draft.currency,
        total=invoice.total,
        amount_paid=invoice.amount_paid,
    )


async def _given_or_found_rate(
    conn: db.Conn,
    principal: Principal,
    rate_id: uuid.UUID | None,
    transaction: rules.Transaction,
    invoice_currency: str,
) -> rules.Rate | None:
    source = transaction.currency
    if rate_id is None:
        if source == invoice_currency:
            return None
        return await _found_rate(conn, principal, source, invoice_currency, transaction.value_date)
    rate = await repository.get_rate(conn, principal, rate_id)
    if rate is None:
        raise _not_found("exchange_rate", rate_id)
    rules.check_rate_given(rate, source, invoice_currency, "allocation.exchange_rate_id")
    return rate


async def _found_rate(
    conn: db.Conn, principal: Principal, source: str, target: str, on: date
) -> rules.Rate:
    rate = await repository.find_rate(conn, principal, source, target, on)
    if rate is None:
        raise rules.no_rate(source, target, on)
    return rate


def _label(resource: str, value: uuid.UUID) -> str:
    return ids.encode_id(ids.PREFIXES[resource], value)


def _not_found(resource: str, value: uuid.UUID) -> errors.DomainError:
    return errors.not_found(resource, _label(resource, value))
