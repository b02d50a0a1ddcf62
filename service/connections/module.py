"""Connections (seed 004): ConnectionService (PollConnection runs the ingestion module's
poll now)."""

from __future__ import annotations

from invoicing.v1 import connections_pb2

from service.connections.models import connection_routes, connections
from service.connections.servicer import ConnectionServicer
from service.edge.modules import Module, Service, policies
from service.kit import errors

SERVICE = connections_pb2.DESCRIPTOR.services_by_name["ConnectionService"]
RPCS = (
    "CreateConnection",
    "GetConnection",
    "ListConnections",
    "UpdateConnection",
    "DeleteConnection",
    "PollConnection",
)
PERMISSIONS = {"read": "connections.read", "write": "connections.write"}


def _already_active(_: BaseException) -> errors.DomainError:
    return errors.already_exists(
        "an active connection for this provider already exists; disable or delete it first",
        "CONNECTION_ALREADY_ACTIVE",
    )


MODULE = Module(
    name="connections",
    services=[
        Service(SERVICE, policies(SERVICE, **PERMISSIONS, only=RPCS), ConnectionServicer),
    ],
    tables=[connections, connection_routes],
    errors={"uq_connections_tenant_id_provider_active": _already_active},
)
