"""The generic records query (RecordsService); its roots are declared by other modules."""

from __future__ import annotations

from invoicing.v1 import records_pb2

from service.edge.modules import Module, Service, policies
from service.records.servicer import RecordsServicer

SERVICE = records_pb2.DESCRIPTOR.services_by_name["RecordsService"]

MODULE = Module(
    name="records",
    services=[
        Service(
            SERVICE,
            # Every root today is an allocation list.
            policies(SERVICE, read="allocations.read", write="allocations.write"),
            RecordsServicer,
        )
    ],
)
