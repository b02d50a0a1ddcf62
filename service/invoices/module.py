"""Invoices (seed 001 with seed 002's identifiers): InvoiceService."""

from __future__ import annotations

from datetime import timedelta

from invoicing.v1 import invoices_pb2

from service.edge import status
from service.edge.modules import Module, Service, Task, policies
from service.invoices import service, tasks
from service.invoices.models import (
    invoice_deliveries,
    invoice_number_counters,
    invoices,
    project_sequence_counters,
)
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
    tables=[invoices, invoice_number_counters, project_sequence_counters, invoice_deliveries],
    errors={"ck_invoices_amount_paid": status.money_invariant},
    tasks=[
        Task(
            service.DELIVER_TASK,
            tasks.deliver,
            every=timedelta(hours=1),
            lease=timedelta(minutes=2),
            retry=timedelta(seconds=30),
        )
    ],
)
