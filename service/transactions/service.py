"""Transaction use cases. Each runs inside the caller's transaction and never commits.

Other resources use transactions only through this module: `lock`, `record` and
`add_allocated` serve the allocations; `LISTING` is the list's fields, which related-object
filters (`transaction.amount`) reuse.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import func

from service.kit import db, errors, etags, ids, listing
from service.kit.auth import Principal
from service.kit.deps import Deps
from service.transactions import repository, rules
from service.transactions.queries import TRANSACTIONS
from service.transactions.rules import (
    PAYABLE,
    RECEIVABLE,
    Transaction,
    TransactionDraft,
    parse_positive,
)

LISTING = TRANSACTIONS
__all__ = ["LISTING", "PAYABLE", "RECEIVABLE", "Transaction", "TransactionDraft", "parse_positive"]


async def create_transaction(
    conn: db.Conn, principal: Principal, *, draft: TransactionDraft, deps: Deps
) -> Transaction:
    return await record(conn, principal, draft=draft, deps=deps)


async def record(
    conn: db.Conn, principal: Principal, *, draft: TransactionDraft, deps: Deps
) -> Transaction:
    """Insert a transaction (CreateTransaction, and PayInvoice's payment)."""
    return await repository.insert(
        conn,
        {
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
        },
    )


async def get_transaction(
    conn: db.Conn, principal: Principal, *, transaction_id: uuid.UUID
) -> Transaction:
    transaction = await repository.get(conn, principal, transaction_id)
    if transaction is None:
        raise _not_found(transaction_id)
    return transaction


async def list_transactions(
    conn: db.Conn, principal: Principal, *, query: listing.Query, deps: Deps
) -> listing.Page[Transaction]:
    page = await listing.list_page(conn, principal, TRANSACTIONS, query, deps.cursors)
    return page.map(repository.from_row)


async def delete_transaction(
    conn: db.Conn, principal: Principal, *, transaction_id: uuid.UUID, etag: str
) -> Transaction:
    transaction = await lock(conn, principal, transaction_id=transaction_id)
    etags.check(transaction.etag, etag, "transaction")
    rules.check_deletable(transaction)
    values = {"deleted_at": func.now(), "deleted_by": principal.subject}
    return await repository.update(conn, principal, transaction_id, values)


async def lock(conn: db.Conn, principal: Principal, *, transaction_id: uuid.UUID) -> Transaction:
    """The live transaction, row-locked until the transaction ends (NOT_FOUND if deleted)."""
    transaction = await repository.get(conn, principal, transaction_id, for_update=True)
    if transaction is None or transaction.deleted_at is not None:
        raise _not_found(transaction_id)
    return transaction


async def lock_any(
    conn: db.Conn, principal: Principal, *, transaction_id: uuid.UUID
) -> Transaction | None:
    """The transaction row-locked, deleted or not (None if unknown)."""
    return await repository.get(conn, principal, transaction_id, for_update=True)


async def add_allocated(
    conn: db.Conn, principal: Principal, *, transaction_id: uuid.UUID, delta: Decimal
) -> Transaction:
    """Allocate `delta` more (negative: less) of the locked transaction."""
    return await repository.add_allocated(conn, principal, transaction_id, delta)


def _not_found(transaction_id: uuid.UUID) -> errors.DomainError:
    return errors.not_found(
        "transaction", ids.encode_id(ids.PREFIXES["transaction"], transaction_id)
    )
