"""Provenance (seed 000): ProvenanceService, declared and answering UNIMPLEMENTED until
its issue lands. The pipelines write these rows (the `system` permission); users read."""

from __future__ import annotations

from invoicing.v1 import provenance_pb2

from service.edge.modules import Module, Service, policies

SERVICE = provenance_pb2.DESCRIPTOR.services_by_name["ProvenanceService"]

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
        )
    ],
)
