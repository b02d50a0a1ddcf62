"""Invoices (seed 001 with seed 002's identifiers): InvoiceService."""

from __future__ import annotations

from invoicing.v1 import invoices_pb2

from service.edge import status
from service.edge.modules import Module, Service, policies
from service.invoices.models import invoice_number_counters, invoices, project_sequence_counters
from service.invoices.servicer import InvoiceServicer

SERVICE = invoices_pb2.DESCRIPTOR.services_by_name["InvoiceService"]

MODULE = Module(
    name="invoices",
    services=[
        Service(
            SERVICE,
            policies(SERVICE, read="invoices.read", write="invoices.write"),
            InvoiceServicer,
        )
    ],
    tables=[invoices, invoice_number_counters, project_sequence_counters],
    errors={"ck_invoices_amount_paid": status.money_invariant},
)
