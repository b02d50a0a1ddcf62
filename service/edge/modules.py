"""What a resource package declares to the process: one `Module`, in its `module.py`.

`service.registry` finds every `service/<package>/module.py` and reads its `MODULE`;
`app.py`, the request pipeline, the gateway and the worker iterate the modules, so adding
a resource touches no central file. A module says how its servicer registers, each rpc's
permission and auth policy, its tables, how its constraint violations read as errors, its
background tasks and any extra HTTP routes.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from sqlalchemy import Table

from service.kit import db, listing
from service.kit.auth import Principal
from service.kit.errors import DomainError
from service.kit.filtering import FilterField

if TYPE_CHECKING:
    from service.edge.runtime import Runtime

READ_VERBS = ("Get", "List", "Query")
HEAVY_VERBS = ("List", "Query")


class Auth(enum.Enum):
    """How a caller proves who it is."""

    JWT = "jwt"  # bearer token (gRPC metadata, HTTP header, or the gateway's session cookie)
    SYSTEM = "system"  # bearer token that holds the `system` permission (the pipelines)
    WEBHOOK = "webhook"  # an extra HTTP route checked by its provider's signature; no JWT


@dataclass(frozen=True)
class Rpc:
    """The policy of one rpc: the permission its token must hold, how it authenticates,
    and whether it is heavy (a page of rows to encode: lists and queries), so that a
    flood of those queues among itself instead of in front of the cheap calls."""

    permission: str
    auth: Auth = Auth.JWT
    heavy: bool = False


def policies(
    descriptor: ServiceDescriptor,
    *,
    read: str,
    write: str,
    system: Iterable[str] = (),
    only: Iterable[str] | None = None,
) -> dict[str, Rpc]:
    """Per-rpc policies by verb: Get/List/Query need `read`, the rest `write`; the rpcs
    named in `system` need the `system` permission. `only` restricts the rpcs covered."""
    names = list(only) if only is not None else list(descriptor.methods_by_name)
    system_names = set(system)
    table = {}
    for name in names:
        if name not in descriptor.methods_by_name:
            raise ValueError(f"{descriptor.full_name} has no rpc {name}")
        if name in system_names:
            table[name] = Rpc("system", Auth.SYSTEM)
        else:
            heavy = name.startswith(HEAVY_VERBS)
            table[name] = Rpc(read if name.startswith(READ_VERBS) else write, heavy=heavy)
    return table


@dataclass(frozen=True)
class Service:
    """Rpcs of one gRPC service that a module serves. Several modules may serve disjoint
    rpcs of one service (AllocationService); `servicer` None answers UNIMPLEMENTED."""

    descriptor: ServiceDescriptor
    rpcs: Mapping[str, Rpc]
    servicer: Callable[[Runtime], object] | None = None


Endpoint = Callable[[Any], Awaitable[Any]]  # a Starlette request -> response


@dataclass(frozen=True)
class Route:
    """An extra HTTP route on the REST port, served in the server process only."""

    method: str
    path: str  # a Starlette path, e.g. "/v1/invoice-connections/{id}/webhooks"
    endpoint: Callable[[Runtime], Endpoint]
    auth: Auth
    name: str = ""


@dataclass(frozen=True)
class TaskResult:
    """What one run of a task did: `count` items handled, `more` if it stopped early
    (the item is due again at once), `next_in` to override the task's interval."""

    count: int = 0
    more: bool = False
    next_in: timedelta | None = None
    # The item's work is done for good: it is removed (for items keyed by something that
    # is never enqueued again, such as one invoice's deliveries).
    finished: bool = False


TaskRun = Callable[["Runtime", db.Conn, Principal, str], Awaitable[TaskResult]]


@dataclass(frozen=True)
class Task:
    """Background work, claimed item by item with leases by the worker. An item is a
    (tenant, key) pair enqueued by the writes that make work (`service.worker.enqueue`);
    each run happens inside that tenant's unit of work as a system principal."""

    name: str
    run: TaskRun
    every: timedelta
    lease: timedelta = timedelta(minutes=5)
    retry: timedelta = timedelta(minutes=1)


@dataclass(frozen=True)
class RecordRoot:
    """A root of the generic records query (seed 003 `POST /v1/records/query`): the
    resource's own list, its filter fields (which the where clause names), and how an
    item is rendered."""

    name: str  # "invoice_transactions"
    fields: Mapping[str, FilterField]
    list: Callable[..., Awaitable[listing.Page[Any]]]  # (conn, principal, *, query, deps,
    # order_field_path), as the resource's own list use case
    encode: Callable[[Any], Message]


@dataclass(frozen=True)
class Module:
    name: str
    services: Sequence[Service] = ()
    tables: Sequence[Table] = ()
    errors: Mapping[str, Callable[[BaseException], DomainError]] = field(default_factory=dict)
    tasks: Sequence[Task] = ()
    routes: Sequence[Route] = ()
    records: Sequence[RecordRoot] = ()
