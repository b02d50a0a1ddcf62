"""The workspace settings rpcs of AllocationService: decode, call one use case, encode."""

from __future__ import annotations

from typing import Any

from invoicing.v1 import allocations_pb2 as pb

from service.edge.runtime import Runtime
from service.kit import db
from service.kit.auth import Principal
from service.workspaces import convert, service


class WorkspaceServicer:
    def __init__(self, runtime: Runtime) -> None:
        self._calls = runtime.calls

    async def GetWorkspaceSettings(
        self, request: pb.GetWorkspaceSettingsRequest, _: Any
    ) -> pb.WorkspaceSettings:
        async def work(conn: db.Conn, p: Principal) -> pb.WorkspaceSettings:
            return convert.settings_to_pb(await service.get_settings(conn, p))

        return await self._calls.run(work, workspace_id=request.workspace_id)

    async def UpdateWorkspaceSettings(
        self, request: pb.UpdateWorkspaceSettingsRequest, _: Any
    ) -> pb.WorkspaceSettings:
        changes = convert.settings_changes(
            request.settings, request.update_mask.paths, request.HasField("update_mask")
        )

        async def work(conn: db.Conn, p: Principal) -> pb.WorkspaceSettings:
            updated = await service.update_settings(
                conn, p, changes=changes, etag=request.settings.etag
            )
            return convert.settings_to_pb(updated)

        return await self._calls.run(work, workspace_id=request.workspace_id)
