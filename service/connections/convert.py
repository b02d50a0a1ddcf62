"""Translate between protobuf messages and connections (the edge only). Secrets leave
the request as `Secret` at once; nothing here ever formats one."""

from __future__ import annotations

from invoicing.v1 import connections_pb2 as pb

from service.connections import service
from service.edge import pbconv
from service.kit import errors
from service.kit.keyring import Secret

PATHS = ("api_key", "webhook_secret", "active", "endpoint_url")
READ_ONLY = (
    "id",
    "tenant_id",
    "provider",
    "has_credentials",
    "has_webhook_secret",
    "last_polled_at",
    "created_at",
    "updated_at",
    "deleted_at",
    "etag",
    "state",
    "last_error",
    "last_error_at",
    "consecutive_failures",
    "next_poll_at",
)
STATES = {
    service.State.OK: pb.CONNECTION_STATE_OK,
    service.State.FAILING: pb.CONNECTION_STATE_FAILING,
    service.State.NEEDS_CREDENTIALS: pb.CONNECTION_STATE_NEEDS_CREDENTIALS,
    service.State.DISABLED: pb.CONNECTION_STATE_DISABLED,
    service.State.SECRETS_UNAVAILABLE: pb.CONNECTION_STATE_SECRETS_UNAVAILABLE,
    service.State.DELETED: pb.CONNECTION_STATE_DELETED,
}


def connection_draft(request: pb.CreateConnectionRequest) -> service.ConnectionDraft:
    return service.ConnectionDraft(
        provider=pbconv.text(request.provider, "provider", max_length=64),
        api_key=Secret(request.api_key) if request.api_key else None,
        webhook_secret=Secret(request.webhook_secret) if request.webhook_secret else None,
        active=request.active if request.HasField("active") else True,
        endpoint_url=request.endpoint_url,
    )


def changes(request: pb.UpdateConnectionRequest) -> service.Changes:
    """The fields the mask names (a named field left unset takes its empty value: an
    empty api_key is refused, an empty webhook_secret removes it, active false), or,
    without a mask, every field present in the request."""
    chosen = _paths(request)
    api_key = None
    if "api_key" in chosen:
        if not request.api_key:
            raise errors.invalid(
                "api_key", "cannot be emptied: a connection keeps one", reason="REQUIRED"
            )
        api_key = Secret(request.api_key)
    return service.Changes(
        api_key=api_key,
        webhook_secret=Secret(request.webhook_secret) if "webhook_secret" in chosen else None,
        active=request.active if "active" in chosen else None,
        endpoint_url=request.endpoint_url if "endpoint_url" in chosen else None,
    )


def _paths(request: pb.UpdateConnectionRequest) -> set[str]:
    return pbconv.mask_paths(
        list(request.update_mask.paths),
        PATHS,
        READ_ONLY,
        lambda: {p for p in PATHS if request.HasField(p)},  # type: ignore[arg-type]
    )


def connection_to_pb(v: service.View) -> pb.Connection:
    c = v.connection
    return pb.Connection(
        id=pbconv.public_id("connection", c.id),
        tenant_id=str(c.tenant_id),
        provider=c.provider,
        active=c.active,
        has_credentials=c.has_credentials,
        has_webhook_secret=c.has_webhook_secret,
        last_polled_at=pbconv.ts(c.last_polled_at),
        created_at=pbconv.ts(c.created_at),
        updated_at=pbconv.ts(c.updated_at),
        deleted_at=pbconv.ts(c.deleted_at),
        etag=c.etag,
        endpoint_url=c.endpoint_url,
        state=STATES[v.state],
        last_error=c.last_error or "",
        last_error_at=pbconv.ts(c.last_error_at),
        consecutive_failures=c.consecutive_failures,
        next_poll_at=pbconv.ts(c.next_poll_at),
        last_poll=_summary(service.last_poll(c)),
        webhook_path=(
            f"/v1/invoice-connections/{pbconv.public_id('connection', c.id)}/webhooks"
            if service.polls(c)
            else ""
        ),
    )


def _summary(summary: dict[str, object]) -> pb.PollSummary | None:
    if not summary:
        return None
    out = pb.PollSummary(
        pages=int(str(summary.get("pages", 0))),
        created=int(str(summary.get("created", 0))),
        updated=int(str(summary.get("updated", 0))),
        unchanged=int(str(summary.get("unchanged", 0))),
        skipped=int(str(summary.get("skipped", 0))),
    )
    for name in ("started_at", "finished_at"):
        value = summary.get(name)
        if isinstance(value, str):
            getattr(out, name).FromJsonString(value.replace("+00:00", "Z"))
    return out
