"""Allocation use cases. Each runs inside the caller's transaction and never commits.

Every allocation write locks the invoice row first (through the invoices service), then
the transaction row: one fixed order, so concurrent allocations queue instead of
deadlocking. The checks run on the locked rows; CHECK constraints back both sums.
Other resources are used only through their service modules.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import func

from service.allocations import repository, rules
from service.allocations.queries import ALLOCATIONS, FILTER_FIELDS
from service.allocations.rules import Allocation, AllocationRequest
from service.exchange_rates import service as exchange_rates
from service.invoices import service as invoices
from service.kit import db, errors, etags, ids, listing
from service.kit.auth import Principal
from service.kit.deps import Deps
from service.kit.money import format_money
from service.transactions import service as transactions
from service.workspaces import service as workspaces

__all__ = ["FILTER_FIELDS", "Allocation", "AllocationRequest"]


async def create_allocation(
    conn: db.Conn, principal: Principal, *, request: AllocationRequest
) -> Allocation:
    invoice = await invoices.lock_for_payment(conn, principal, invoice_id=request.invoice_id)
    transaction = await transactions.lock(conn, principal, transaction_id=request.transaction_id)
    payee = _payee(invoice)
    rules.check_payable(payee)
    if request.currency is not None and request.currency != transaction.currency:
        raise errors.invalid(
            "allocation.currency",
            f"must be the transaction's currency {transaction.currency}",
            reason="CURRENCY_MISMATCH",
        )
    amount = transactions.parse_positive(request.amount, transaction.currency, "allocation.amount")
    rate = await _given_or_found_rate(
        conn, principal, request.exchange_rate_id, transaction, payee.currency
    )
    allocation, _ = await _allocate(
        conn,
        principal,
        invoice=invoice,
        payer=_payer(transaction),
        amount=amount,
        rate=rate,
        subscription_id=request.subscription_id or transaction.subscription_id,
        amount_path="allocation.amount",
    )
    return allocation


async def pay_invoice(
    conn: db.Conn, principal: Principal, *, payment: invoices.Payment, deps: Deps
) -> invoices.Invoice:
    """Record a payment for the invoice and allocate all of it, in one transaction."""
    invoice = await invoices.lock_for_payment(conn, principal, invoice_id=payment.invoice_id)
    etags.check(invoice.etag, payment.etag, "invoice")
    payee = _payee(invoice)
    rules.check_payable(payee)
    currency = payment.currency or payee.currency
    value_date = payment.paid_at.astimezone(UTC).date() if payment.paid_at else deps.today()
    rate = None
    if currency != payee.currency:
        rate = await _found_rate(conn, principal, currency, payee.currency, value_date)
    if payment.amount:
        amount = transactions.parse_positive(payment.amount, currency, "amount")
    else:
        amount = _amount_due_in(payee, currency, rate)
    draft = transactions.TransactionDraft(
        direction=payee.direction,
        amount=amount,
        currency=currency,
        value_date=value_date,
        reference=payment.reference,
        counterparty_id=invoice.draft.counterparty_id,
        subscription_id=None,
    )
    transaction = await transactions.record(conn, principal, draft=draft, deps=deps)
    _, paid = await _allocate(
        conn,
        principal,
        invoice=invoice,
        payer=_payer(transaction),
        amount=amount,
        rate=rate,
        subscription_id=None,
        amount_path="amount",
        paid_at=payment.paid_at,
    )
    return paid


def _amount_due_in(payee: rules.Payee, currency: str, rate: rules.RateLike | None) -> Decimal:
    due = payee.amount_due
    if due <= rules.ZERO:
        raise errors.failed_precondition(
            "the invoice is already paid", "INVOICE_ALREADY_PAID", amountDue="0"
        )
    if rate is None:
        return due
    amount = rules.largest_amount_within(due, rate, currency, payee.currency)
    if amount >= rules.MAX_TRANSACTION:
        raise errors.invalid(
            "amount",
            f"the amount due is {format_money(amount, currency)} {currency}, more than one "
            f"payment can hold (below {rules.MAX_TRANSACTION:f}); pay it in parts",
            reason="AMOUNT_TOO_LARGE",
            currency=currency,
        )
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
    invoice: invoices.Invoice,
    payer: rules.Payer,
    amount: Decimal,
    rate: rules.RateLike | None,
    subscription_id: uuid.UUID | None,
    amount_path: str,
    paid_at: datetime | None = None,
) -> tuple[Allocation, invoices.Invoice]:
    """Apply `amount` of the locked transaction to the locked invoice."""
    payee = _payee(invoice)
    rules.check_direction(payee, payer)
    rules.check_unallocated(payer, amount)
    accounting = (await workspaces.get_settings(conn, principal)).accounting_currency
    accounting_rate = None
    if rules.accounting_pair_needs_rate(payer.currency, payee.currency, accounting):
        accounting_rate = await _found_rate(
            conn, principal, payee.currency, accounting, payer.value_date
        )
    converted = rules.amounts(
        amount,
        payer.currency,
        invoice_currency=payee.currency,
        accounting_currency=accounting,
        rate=rate,
        accounting_rate=accounting_rate,
    )
    rules.check_storable(converted, amount_path)
    rules.check_not_zero(converted.invoice_amount, amount_path)
    rules.check_within_due(payee, converted.invoice_amount)
    paid = await invoices.apply_payment(
        conn, principal, invoice=invoice, delta=converted.invoice_amount, paid_at=paid_at
    )
    await transactions.add_allocated(conn, principal, transaction_id=payer.id, delta=amount)
    new = rules.new_allocation(
        payee_after=_payee(paid),
        payer=payer,
        amounts=converted,
        rate=rate,
        accounting_rate=accounting_rate,
        subscription_id=subscription_id,
        labels=(
            invoice.draft.number or _label("invoice", invoice.id),
            _label("transaction", payer.id),
        ),
    )
    return await repository.insert(conn, principal, new), paid


async def get_allocation(
    conn: db.Conn, principal: Principal, *, allocation_id: uuid.UUID
) -> Allocation:
    allocation = await repository.get(conn, principal, allocation_id)
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
) -> listing.Page[Allocation]:
    page = await listing.list_page(
        conn, principal, ALLOCATIONS, query, deps.cursors, order_field_path=order_field_path
    )
    return page.map(repository.from_row)


async def delete_allocation(
    conn: db.Conn, principal: Principal, *, allocation_id: uuid.UUID, etag: str
) -> Allocation:
    """Reverse: free the amount on the transaction and reopen the invoice."""
    seen = await repository.get(conn, principal, allocation_id)
    if seen is None or seen.deleted_at is not None:
        raise _not_found("allocation", allocation_id)
    invoice = await invoices.lock_for_payment(conn, principal, invoice_id=seen.invoice_id)
    transaction = await transactions.lock_any(conn, principal, transaction_id=seen.transaction_id)
    allocation = await repository.get(conn, principal, allocation_id, for_update=True)
    if allocation is None or allocation.deleted_at is not None or transaction is None:
        raise _not_found("allocation", allocation_id)
    etags.check(allocation.etag, etag, "allocation")
    await invoices.apply_payment(conn, principal, invoice=invoice, delta=-allocation.invoice_amount)
    await transactions.add_allocated(
        conn, principal, transaction_id=transaction.id, delta=-allocation.amount
    )
    values = {"deleted_at": func.now(), "deleted_by": principal.subject}
    return await repository.update(conn, principal, allocation_id, values)


def _payee(invoice: invoices.Invoice) -> rules.Payee:
    direction = invoice.draft.direction
    assert direction is not None, "a stored invoice always has its direction"
    return rules.Payee(
        id=invoice.id,
        status=invoice.status,
        direction=direction,
        currency=invoice.draft.currency,
        total=invoice.total,
        amount_paid=invoice.amount_paid,
    )


def _payer(transaction: transactions.Transaction) -> rules.Payer:
    return rules.Payer(
        id=transaction.id,
        direction=transaction.direction,
        currency=transaction.currency,
        amount=transaction.amount,
        allocated_amount=transaction.allocated_amount,
        value_date=transaction.value_date,
    )


async def _given_or_found_rate(
    conn: db.Conn,
    principal: Principal,
    rate_id: uuid.UUID | None,
    transaction: transactions.Transaction,
    invoice_currency: str,
) -> exchange_rates.Rate | None:
    source = transaction.currency
    if rate_id is None:
        if source == invoice_currency:
            return None
        return await _found_rate(conn, principal, source, invoice_currency, transaction.value_date)
    rate = await exchange_rates.get_exchange_rate(conn, principal, rate_id=rate_id)
    rules.check_rate_given(rate, source, invoice_currency, "allocation.exchange_rate_id")
    return rate


async def _found_rate(
    conn: db.Conn, principal: Principal, source: str, target: str, on: date
) -> exchange_rates.Rate:
    rate = await exchange_rates.find(conn, principal, source=source, target=target, on=on)
    if rate is None:
        raise rules.no_rate(source, target, on)
    return rate


def _label(resource: str, value: uuid.UUID) -> str:
    return ids.encode_id(ids.PREFIXES[resource], value)


def _not_found(resource: str, value: uuid.UUID) -> errors.DomainError:
    return errors.not_found(resource, _label(resource, value))
