"""Allocations (seed 003 invoice transactions): AllocationService's allocation rpcs."""

from __future__ import annotations

from invoicing.v1 import allocations_pb2

from service.allocations import convert, service
from service.allocations.models import allocations
from service.allocations.servicer import AllocationServicer
from service.edge import status
from service.edge.modules import Module, RecordRoot, Service, policies

SERVICE = allocations_pb2.DESCRIPTOR.services_by_name["AllocationService"]
RPCS = ("CreateAllocation", "GetAllocation", "ListAllocations", "DeleteAllocation")

MODULE = Module(
    name="allocations",
    services=[
        Service(
            SERVICE,
            policies(SERVICE, read="allocations.read", write="allocations.write", only=RPCS),
            AllocationServicer,
        )
    ],
    tables=[allocations],
    records=[
        RecordRoot(
            name="invoice_transactions",
            fields=service.FILTER_FIELDS,
            list=service.list_allocations,
            encode=convert.allocation_to_pb,
        )
    ],
    errors={
        "ck_allocations_amounts_positive": status.money_invariant,
        "ck_allocations_same_currency_exact": status.money_invariant,
    },
)
