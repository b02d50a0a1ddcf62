"""Workspace settings (AllocationService's settings rpcs)."""

from __future__ import annotations

from invoicing.v1 import allocations_pb2

from service.edge.modules import Module, Service, policies
from service.workspaces.models import workspace_settings
from service.workspaces.servicer import WorkspaceServicer

SERVICE = allocations_pb2.DESCRIPTOR.services_by_name["AllocationService"]
RPCS = ("GetWorkspaceSettings", "UpdateWorkspaceSettings")

MODULE = Module(
    name="workspaces",
    services=[
        Service(
            SERVICE,
            policies(SERVICE, read="allocations.read", write="allocations.write", only=RPCS),
            WorkspaceServicer,
        )
    ],
    tables=[workspace_settings],
)
