"""Provenance (seed 000): ProvenanceService. The pipelines write these rows (`record`, or
the rpcs with the `system` permission); users read them (`provenance.read`)."""

from __future__ import annotations

from invoicing.v1 import provenance_pb2

from service.edge.modules import Module, Service, policies
from service.kit import errors
from service.provenance.models import invoice_provenances
from service.provenance.servicer import ProvenanceServicer

SERVICE = provenance_pb2.DESCRIPTOR.services_by_name["ProvenanceService"]


def _already_recorded(_: BaseException) -> errors.DomainError:
    return errors.already_exists(
        "a live provenance row for this invoice, connection and direction exists",
        "PROVENANCE_ALREADY_EXISTS",
    )


def _unknown_invoice(_: BaseException) -> errors.DomainError:
    return errors.not_found("invoice", "of this provenance row")


MODULE = Module(
    name="provenance",
    services=[
        Service(
            SERVICE,
            policies(
                SERVICE,
                read="provenance.read",
                write="system",
                system=("CreateInvoiceProvenance", "DeleteInvoiceProvenance"),
            ),
            ProvenanceServicer,
        )
    ],
    tables=[invoice_provenances],
    errors={
        "uq_invoice_provenances_live": _already_recorded,
        # `record` trusts its caller's invoice; the key still refuses another tenant's.
        "fk_invoice_provenances_invoice_id_invoices": _unknown_invoice,
    },
)
