"""Connections (seed 004): ConnectionService, declared and answering UNIMPLEMENTED until
its issue lands."""

from __future__ import annotations

from invoicing.v1 import connections_pb2

from service.edge.modules import Module, Service, policies

SERVICE = connections_pb2.DESCRIPTOR.services_by_name["ConnectionService"]

MODULE = Module(
    name="connections",
    services=[
        Service(SERVICE, policies(SERVICE, read="connections.read", write="connections.write"))
    ],
)
