"""Transactions: payments received or made (AllocationService's transaction rpcs)."""

from __future__ import annotations

from invoicing.v1 import allocations_pb2

from service.edge import status
from service.edge.modules import Module, Service, policies
from service.transactions.models import transactions
from service.transactions.servicer import TransactionServicer

SERVICE = allocations_pb2.DESCRIPTOR.services_by_name["AllocationService"]
RPCS = ("CreateTransaction", "GetTransaction", "ListTransactions", "DeleteTransaction")

MODULE = Module(
    name="transactions",
    services=[
        Service(
            SERVICE,
            policies(SERVICE, read="allocations.read", write="allocations.write", only=RPCS),
            TransactionServicer,
        )
    ],
    tables=[transactions],
    errors={
        "ck_transactions_allocated_amount": status.money_invariant,
        "ck_transactions_deleted_unallocated": status.money_invariant,
    },
)
