"""ProvenanceService (seed 000 "invoice workspace connectors") over the real gRPC port, the
real REST gateway (in-process and standalone: every REST test runs in both modes) and a real
PostgreSQL, nothing mocked. Asserts protos/invoicing/v1/provenance.proto and ListInvoices'
provenance filters (`input_connection_id`, `output_connection_id`).

Every test runs in its own random tenant. Sections:

  helpers · permissions · create (validation, references, duplicates, the 20-way race,
  idempotency) · get · delete · list · ListInvoices filters · REST
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
import grpc
import httpx
import pytest
from invoicing.v1 import connections_pb2 as cpb
from invoicing.v1 import connections_pb2_grpc, invoices_pb2_grpc, provenance_pb2_grpc
from invoicing.v1 import invoices_pb2 as ipb
from invoicing.v1 import provenance_pb2 as pb

from service.kit import ids
from tests.conftest import Tokens, error_info, rich_status, sample_invoice
from tests.factories import Code, Metadata, as_dt, fails, invalid

if TYPE_CHECKING:
    Stub = provenance_pb2_grpc.ProvenanceServiceAsyncStub
    Connections = connections_pb2_grpc.ConnectionServiceAsyncStub
    Invoices = invoices_pb2_grpc.InvoiceServiceAsyncStub
else:
    Stub = provenance_pb2_grpc.ProvenanceServiceStub
    Connections = connections_pb2_grpc.ConnectionServiceStub
    Invoices = invoices_pb2_grpc.InvoiceServiceStub
Direction: TypeAlias = pb.ProvenanceDirection.ValueType
Json = dict[str, Any]

INPUT = pb.PROVENANCE_DIRECTION_INPUT
OUTPUT = pb.PROVENANCE_DIRECTION_OUTPUT
UNSPECIFIED = pb.PROVENANCE_DIRECTION_UNSPECIFIED

VALID_BODY = "01JD6N8Q6Z7T3M3Y5C4V8R2K1P"  # 26 Crockford base32 characters
UNKNOWN_INV = f"inv_{VALID_BODY}"
UNKNOWN_CON = f"con_{VALID_BODY}"
UNKNOWN_PRV = f"prv_{VALID_BODY}"
PRV_ID = re.compile(r"^prv_[0-9A-HJKMNP-TV-Z]{26}$")
BASE = "/v1/invoice-workspace-connectors"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
# Every permission but `system`: may read provenance, may not write it.
NOT_SYSTEM = [
    "invoices.read",
    "invoices.write",
    "allocations.read",
    "allocations.write",
    "provenance.read",
    "provenance.write",
    "connections.read",
    "connections.write",
]
# Every permission but `provenance.read`.
NOT_READ = [p for p in NOT_SYSTEM if p != "provenance.read"] + ["system"]


# ---- helpers ----------------------------------------------------------------------


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> Stub:
    return provenance_pb2_grpc.ProvenanceServiceStub(channel)


@pytest.fixture
def cons(channel: grpc.aio.Channel) -> Connections:
    return connections_pb2_grpc.ConnectionServiceStub(channel)


@pytest.fixture
def auth(tokens: Tokens, tenant: uuid.UUID) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.token(tenant)}"}


@pytest.fixture
async def http(rest_base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the REST gateway (in-process and standalone), no credentials."""
    async with httpx.AsyncClient(base_url=rest_base_url, timeout=30) as client:
        yield client


async def connection(cons: Connections, md: Metadata) -> str:
    """A fresh connection's id (inactive, so a tenant may hold any number of them)."""
    created: cpb.Connection = await cons.CreateConnection(
        cpb.CreateConnectionRequest(
            provider="yooz", api_key=f"sk_test_{uuid.uuid4().hex}", active=False
        ),
        metadata=md,
    )
    return created.id


async def invoice(invoices: Invoices, md: Metadata) -> str:
    created: ipb.Invoice = await invoices.CreateInvoice(
        ipb.CreateInvoiceRequest(invoice=sample_invoice()), metadata=md
    )
    return created.id


async def record(
    stub: Stub,
    md: Metadata,
    invoice_id: str,
    connection_id: str,
    direction: Direction = INPUT,
    request_id: str = "",
) -> pb.InvoiceProvenance:
    result: pb.InvoiceProvenance = await stub.CreateInvoiceProvenance(
        create_request(invoice_id, connection_id, direction, request_id), metadata=md
    )
    return result


def create_request(
    invoice_id: str, connection_id: str, direction: Direction = INPUT, request_id: str = ""
) -> pb.CreateInvoiceProvenanceRequest:
    return pb.CreateInvoiceProvenanceRequest(
        invoice_provenance=pb.InvoiceProvenance(
            invoice_id=invoice_id, connection_id=connection_id, direction=direction
        ),
        request_id=request_id,
    )


async def get(stub: Stub, md: Metadata, provenance_id: str) -> pb.InvoiceProvenance:
    result: pb.InvoiceProvenance = await stub.GetInvoiceProvenance(
        pb.GetInvoiceProvenanceRequest(id=provenance_id), metadata=md
    )
    return result


async def delete(stub: Stub, md: Metadata, provenance_id: str) -> pb.InvoiceProvenance:
    result: pb.InvoiceProvenance = await stub.DeleteInvoiceProvenance(
        pb.DeleteInvoiceProvenanceRequest(id=provenance_id), metadata=md
    )
    return result


async def listing(stub: Stub, md: Metadata, **fields: Any) -> pb.ListInvoiceProvenancesResponse:
    result: pb.ListInvoiceProvenancesResponse = await stub.ListInvoiceProvenances(
        pb.ListInvoiceProvenancesRequest(**fields), metadata=md
    )
    return result


async def list_ids(stub: Stub, md: Metadata, **fields: Any) -> list[str]:
    page = await listing(stub, md, limit=200, **fields)
    assert page.next_cursor == ""
    return [p.id for p in page.data]


async def invoice_ids(invoices: Invoices, md: Metadata, filter_: str) -> set[str]:
    page: ipb.ListInvoicesResponse = await invoices.ListInvoices(
        ipb.ListInvoicesRequest(limit=200, filter=filter_), metadata=md
    )
    assert page.next_cursor == ""
    return {i.id for i in page.data}


async def provenance_rows(admin: asyncpg.Connection, tenant: uuid.UUID) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await admin.fetch(
        "SELECT * FROM invoice_provenances WHERE tenant_id = $1 ORDER BY created_at", tenant
    )
    return rows


async def count_rows(admin: asyncpg.Connection, tenant: uuid.UUID) -> int:
    return len(await provenance_rows(admin, tenant))


async def delete_connection(cons: Connections, md: Metadata, connection_id: str) -> None:
    await cons.DeleteConnection(cpb.DeleteConnectionRequest(id=connection_id), metadata=md)


def uid(public_id: str) -> uuid.UUID:
    prefix = public_id.split("_", 1)[0]
    return ids.decode_id(public_id, prefix, "id")


def same_shape(one: grpc.aio.AioRpcError, other: grpc.aio.AioRpcError, *pairs: str) -> None:
    """`one` and `other` carry the same code, message and details, once the ids in `pairs`
    (one's id, other's id, ...) are replaced by a placeholder."""

    def scrub(text: str, values: tuple[str, ...]) -> str:
        for value in values:
            text = text.replace(value, "<id>")
        return text

    mine, theirs = pairs[0::2], pairs[1::2]
    assert one.code() == other.code()
    assert scrub(str(one.details()), mine) == scrub(str(other.details()), theirs)
    assert scrub(str(rich_status(one)), mine) == scrub(str(rich_status(other)), theirs)
    a, b = error_info(one), error_info(other)
    assert a.reason == b.reason and a.domain == b.domain
    assert {k: scrub(v, mine) for k, v in a.metadata.items()} == {
        k: scrub(v, theirs) for k, v in b.metadata.items()
    }


def assert_rest_error(
    response: httpx.Response, status: int, code: str, reason: str | None = None
) -> Json:
    """The gateway's error body (one ErrorInfo of our domain); returns it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: Json = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    infos = [d for d in body["details"] if d.get("@type") == ERROR_INFO]
    assert len(infos) == 1, body
    assert infos[0]["domain"] == "invoicing.v1"
    if reason is not None:
        assert infos[0]["reason"] == reason, body
    return body


# Seed 000's error codes by HTTP status (the gRPC code moved to `meta.grpc_code`).
SEED_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    409: "CONFLICT",
}


def assert_seed_error(
    response: httpx.Response, status: int, grpc_code: str, reason: str | None = None
) -> Json:
    """The error body of a seed 000 path: the seed's `code` for the status, the gRPC code
    in `meta.grpc_code`, one JSON:API error object, and the canonical `details` (one
    ErrorInfo of our domain) unchanged; returns it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: Json = response.json()
    assert body["code"] == SEED_CODES[status], body
    assert body["status"] == status
    assert body["title"] and body["message"]
    meta = body["meta"]
    assert meta["grpc_code"] == grpc_code, body
    assert meta["trace_id"] and meta["log_id"] == meta["trace_id"], body
    [item] = body["errors"]
    assert item["status"] == str(status) and item["detail"] == body["message"], body
    infos = [d for d in body["details"] if d.get("@type") == ERROR_INFO]
    assert len(infos) == 1, body
    assert infos[0]["domain"] == "invoicing.v1"
    assert item["code"] == infos[0]["reason"], body
    if reason is not None:
        assert infos[0]["reason"] == reason, body
    fields = rest_fields(body)
    if fields:
        assert item["source"]["pointer"] == "/" + fields[0].replace(".", "/"), body
    return body


def resource(body: Json) -> Json:
    """The `invoice_workspace_connector` resource object of a seed 000 document."""
    assert set(body) == {"data"}, body
    data: Json = body["data"]
    assert data["type"] == "invoice_workspace_connector", body
    assert PRV_ID.match(data["id"]), body
    assert set(data["attributes"]) == {"direction", "created_at", "updated_at", "deleted_at"}
    assert set(data["relationships"]) == {"invoice", "workspace_connector"}, body
    return data


def related(data: Json, name: str) -> str:
    """The id a to-one relationship names, checking its resource type."""
    kind = {"invoice": "invoice", "workspace_connector": "workspace_connector"}[name]
    linkage: Json = data["relationships"][name]["data"]
    assert linkage["type"] == kind, data
    return str(linkage["id"])


def page(response: httpx.Response) -> Json:
    """A seed 000 list document: `data[]`, `meta.total`/`meta.count`, `links.next`."""
    assert response.status_code == 200, response.text
    body: Json = response.json()
    assert set(body) == {"data", "meta", "links"}, body
    assert body["meta"]["count"] == len(body["data"]), body
    for item in body["data"]:
        assert item["type"] == "invoice_workspace_connector", body
    return body


def rest_fields(body: Json) -> list[str]:
    return [
        v["field"]
        for d in body["details"]
        if d["@type"] == BAD_REQUEST
        for v in d.get("field_violations", [])
    ]


class World:
    """An invoice and a connection of one tenant, ready to be joined."""

    def __init__(self, md: Metadata, invoice_id: str, connection_id: str) -> None:
        self.md = md
        self.invoice_id = invoice_id
        self.connection_id = connection_id


async def world(invoices: Invoices, cons: Connections, md: Metadata) -> World:
    return World(md, await invoice(invoices, md), await connection(cons, md))


# ---- permissions ------------------------------------------------------------------


async def test_create_needs_the_system_permission(
    stub: Stub,
    cons: Connections,
    invoices: Invoices,
    md: Metadata,
    tokens: Tokens,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
) -> None:
    w = await world(invoices, cons, md)
    reader = tokens.md(tenant, permissions=NOT_SYSTEM)
    err = await fails(record(stub, reader, w.invoice_id, w.connection_id), Code.PERMISSION_DENIED)
    assert error_info(err).reason == "MISSING_PERMISSION"
    await fails(
        record(stub, reader, w.invoice_id, w.connection_id, OUTPUT, request_id=uuid.uuid4().hex),
        Code.PERMISSION_DENIED,
    )
    assert await count_rows(admin, tenant) == 0

    # `system` alone is enough to write.
    pipeline = tokens.md(tenant, permissions=["system"])
    created = await record(stub, pipeline, w.invoice_id, w.connection_id)
    assert PRV_ID.match(created.id), created.id
    assert await count_rows(admin, tenant) == 1
    # The reader reads it.
    assert await get(stub, reader, created.id) == created
    assert await list_ids(stub, reader) == [created.id]


async def test_delete_needs_the_system_permission(
    stub: Stub,
    cons: Connections,
    invoices: Invoices,
    md: Metadata,
    tokens: Tokens,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
) -> None:
    w = await world(invoices, cons, md)
    created = await record(stub, md, w.invoice_id, w.connection_id)
    reader = tokens.md(tenant, permissions=NOT_SYSTEM)
    await fails(delete(stub, reader, created.id), Code.PERMISSION_DENIED)
    (row,) = await provenance_rows(admin, tenant)
    assert row["deleted_at"] is None
    assert not (await get(stub, md, created.id)).HasField("deleted_at")

    pipeline = tokens.md(tenant, permissions=["system"])
    deleted = await delete(stub, pipeline, created.id)
    assert deleted.HasField("deleted_at")


async def test_reads_need_provenance_read(
    stub: Stub,
    cons: Connections,
    invoices: Invoices,
    md: Metadata,
    tokens: Tokens,
    tenant: uuid.UUID,
) -> None:
    w = await world(invoices, cons, md)
    created = await record(stub, md, w.invoice_id, w.connection_id)
    for permissions in (NOT_READ, ["system"], []):
        other = tokens.md(tenant, permissions=permissions)
        err = await fails(get(stub, other, created.id), Code.PERMISSION_DENIED)
        assert error_info(err).reason == "MISSING_PERMISSION"
        await fails(listing(stub, other), Code.PERMISSION_DENIED)
    reader = tokens.md(tenant, permissions=["provenance.read"])
    assert await get(stub, reader, created.id) == created
    assert await list_ids(stub, reader) == [created.id]


async def test_no_or_bad_token_is_unauthenticated(
    stub: Stub,
    cons: Connections,
    invoices: Invoices,
    md: Metadata,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
) -> None:
    w = await world(invoices, cons, md)
    created = await record(stub, md, w.invoice_id, w.connection_id)
    for metadata in [(), (("authorization", "Bearer not-a-jwt"),), (("authorization", "x"),)]:
        await fails(
            record(stub, metadata, w.invoice_id, w.connection_id, OUTPUT), Code.UNAUTHENTICATED
        )
        await fails(get(stub, metadata, created.id), Code.UNAUTHENTICATED)
        await fails(listing(stub, metadata), Code.UNAUTHENTICATED)
        await fails(delete(stub, metadata, created.id), Code.UNAUTHENTICATED)
    (row,) = await provenance_rows(admin, tenant)
    assert row["deleted_at"] is None


# ---- CreateInvoiceProvenance ------------------------------------------------------


async def test_create_returns_the_row(
    stub: Stub,
    cons: Connections,
    invoices: Invoices,
    md: Metadata,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
) -> None:
    w = await world(invoices, cons, md)
    created = await record(stub, md, w.invoice_id, w.connection_id, OUTPUT)
    assert PRV_ID.match(created.id), created.id
    assert created.invoice_id == w.invoice_id
    assert created.connection_id == w.connection_id
    assert created.direction == OUTPUT
    assert created.HasField("created_at")
    # Seed 000: updated_at is null until the first update.
    assert not created.HasField("updated_at")
    assert not created.HasField("deleted_at")

    (row,) = await provenance_rows(admin, tenant)
    assert row["id"] == uid(created.id)
    assert row["invoice_id"] == uid(w.invoice_id)
    assert row["connection_id"] == uid(w.connection_id)
    assert row["direction"] == "output"
    assert row["updated_at"] is None and row["deleted_at"] is None
    assert row["created_at"] == as_dt(created.created_at)
    assert row["created_by"]


@pytest.mark.parametrize(
    "direction", [UNSPECIFIED, Direction(7)], ids=["unspecified", "out-of-range"]
)
async def test_create_without_a_valid_direction_is_invalid(
    stub: Stub,
    cons: Connections,
    invoices: Invoices,
    md: Metadata,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
    direction: Direction,
) -> None:
    w = await world(invoices, cons, md)
    await invalid(
        record(stub, md, w.invoice_id, w.connection_id, direction),
        "invoice_provenance.direction",
    )
    assert await count_rows(admin, tenant) == 0


MALFORMED = [
    ("", "empty"),
    ("nonsense", "garbage"),
    (f"txn_{VALID_BODY}", "txn-id"),
    (f"prv_{VALID_BODY}", "prv-id"),
    (f"{{prefix}}_{VALID_BODY[:-1]}", "short"),
    (f"{{prefix}}_{VALID_BODY}X", "long"),
    (f"{{prefix}}_{VALID_BODY[:-1]}U", "not-crockford"),
    (str(uuid.UUID(int=7)), "bare-uuid"),
]


@pytest.mark.parametrize(("shape", "name"), MALFORMED, ids=[n for _, n in MALFORMED])
async def test_malformed_references_are_invalid(
    stub: Stub,
    cons: Connections,
    invoices: Invoices,
    md: Metadata,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
    shape: str,
    name: str,
) -> None:
    w = await world(invoices, cons, md)
    bad_invoice = shape.replace("{prefix}", "inv")
    bad_connection = shape.replace("{prefix}", "con")
    await invalid(record(stub, md, bad_invoice, w.connection_id), "invoice_provenance.invoice_id")
    await invalid(
        record(stub, md, w.invoice_id, bad_connection), "invoice_provenance.connection_id"
    )
    # Each other's prefix.
    await invalid(
        record(stub, md, w.connection_id, w.connection_id), "invoice_provenance.invoice_id"
    )
    await invalid(record(stub, md, w.invoice_id, w.invoice_id), "invoice_provenance.connection_id")
    assert await count_rows(admin, tenant) == 0


async def test_unknown_references_are_not_found(
    stub: Stub,
    cons: Connections,
    invoices: Invoices,
    md: Metadata,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
) -> None:
    w = await world(invoices, cons, md)
    err = await fails(record(stub, md, UNKNOWN_INV, w.connection_id), Code.NOT_FOUND)
    assert error_info(err).reason == "INVOICE_NOT_FOUND"
    assert UNKNOWN_INV in str(err.details())
    err = await fails(record(stub, md, w.invoice_id, UNKNOWN_CON), Code.NOT_FOUND)
    assert error_info(err).reason == "CONNECTION_NOT_FOUND"
    assert UNKNOWN_CON in str(err.details())
    await fails(record(stub, md, UNKNOWN_INV, UNKNOWN_CON, OUTPUT), Code.NOT_FOUND)
    assert await count_rows(admin, tenant) == 0


async def test_deleted_invoice_is_not_found(
    stub: Stub,
    cons: Connections,
    invoices: Invoices,
    md: Metadata,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
) -> None:
    w = await world(invoices, cons, md)
    await invoices.DeleteInvoice(ipb.DeleteInvoiceRequest(id=w.invoice_id), metadata=md)
    deleted = await fails(record(stub, md, w.invoice_id, w.connection_id), Code.NOT_FOUND)
    assert error_info(deleted).reason == "INVOICE_NOT_FOUND"
    unknown = await fails(record(stub, md, UNKNOWN_INV, w.connection_id), Code.NOT_FOUND)
    same_shape(deleted, unknown, w.invoice_id, UNKNOWN_INV)
    assert await count_rows(admin, tenant) == 0


async def test_deleted_connection_is_not_found(
    stub: Stub,
    cons: Connections,
    invoices: Invoices,
    md: Metadata,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
) -> None:
    w = await world(invoices, cons, md)
    await delete_connection(cons, md, w.connection_id)
    deleted = await fails(record(stub, md, w.invoice_id, w.connection_id), Code.NOT_FOUND)
    assert error_info(deleted).reason == "CONNECTION_NOT_FOUND"
    unknown = await fails(record(stub, md, w.invoice_id, UNKNOWN_CON), Code.NOT_FOUND)
    same_shape(deleted, unknown, w.connection_id, UNKNOWN_CON)
    assert await count_rows(admin, tenant) == 0


async def test_another_tenants_references_are_indistinguishable_from_unknown(
    stub: Stub,
    cons: Connections,
    invoices: Invoices,
    md: Metadata,
    tokens: Tokens,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
) -> None:
    theirs = await world(invoices, cons, md)
    other_tenant = uuid.uuid4()
    mine = await world(invoices, cons, tokens.md(other_tenant))
    unknown_inv = "inv_" + ("0" * 26 if theirs.invoice_id[4:] != "0" * 26 else "1" * 26)
    unknown_con = "con_" + ("0" * 26 if theirs.connection_id[4:] != "0" * 26 else "1" * 26)

    for direction in (INPUT, OUTPUT):
        foreign = await fails(
            record(stub, mine.md, theirs.invoice_id, mine.connection_id, direction),
            Code.NOT_FOUND,
        )
        unknown = await fails(
            record(stub, mine.md, unknown_inv, mine.connection_id, direction), Code.NOT_FOUND
        )
        same_shape(foreign, unknown, theirs.invoice_id, unknown_inv)

        foreign = await fails(
            record(stub, mine.md, mine.invoice_id, theirs.connection_id, direction),
            Code.NOT_FOUND,
        )
        unknown = await fails(
            record(stub, mine.md, mine.invoice_id, unknown_con, direction), Code.NOT_FOUND
        )
        same_shape(foreign, unknown, theirs.connection_id, unknown_con)

        # Both of the other tenant's.
        await fails(
            record(stub, mine.md, theirs.invoice_id, theirs.connection_id, direction),
            Code.NOT_FOUND,
        )
    assert await count_rows(admin, tenant) == 0
    assert await count_rows(admin, other_tenant) == 0


async def test_live_duplicate_is_already_exists(
    stub: Stub,
    cons: Connections,
    invoices: Invoices,
    md: Metadata,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
) -> None:
    w = await world(invoices, cons, md)
    first = await record(stub, md, w.invoice_id, w.connection_id, INPUT)
    err = await fails(record(stub, md, w.invoice_id, w.connection_id, INPUT), Code.ALREADY_EXISTS)
    assert error_info(err).reason == "PROVENANCE_ALREADY_EXISTS"
    assert await count_rows(admin, tenant) == 1

    # The other direction for the same pair is another row.
    out = await record(stub, md, w.invoice_id, w.connection_id, OUTPUT)
    assert out.id != first.id and out.direction == OUTPUT
    await fails(record(stub, md, w.invoice_id, w.connection_id, OUTPUT), Code.ALREADY_EXISTS)
    # Another connection or another invoice too.
    second_con = await connection(cons, md)
    await record(stub, md, w.invoice_id, second_con, INPUT)
    second_inv = await invoice(invoices, md)
    await record(stub, md, second_inv, w.connection_id, INPUT)
    assert await count_rows(admin, tenant) == 4

    # After a soft delete the same triple can be recorded again, as a new row.
    await delete(stub, md, first.id)
    again = await record(stub, md, w.invoice_id, w.connection_id, INPUT)
    assert again.id != first.id
    assert not again.HasField("deleted_at")
    assert (await get(stub, md, first.id)).HasField("deleted_at")
    triple = await admin.fetch(
        "SELECT id, deleted_at FROM invoice_provenances WHERE tenant_id = $1"
        " AND invoice_id = $2 AND connection_id = $3 AND direction = 'input'",
        tenant,
        uid(w.invoice_id),
        uid(w.connection_id),
    )
    assert len(triple) == 2
    assert sorted(r["deleted_at"] is None for r in triple) == [False, True]
    await fails(record(stub, md, w.invoice_id, w.connection_id, INPUT), Code.ALREADY_EXISTS)


async def test_another_tenant_has_its_own_rows(
    stub: Stub, cons: Connections, invoices: Invoices, md: Metadata, tokens: Tokens
) -> None:
    """Uniqueness is per tenant: rows of one tenant never conflict with another's."""
    w1 = await world(invoices, cons, md)
    other = tokens.md(uuid.uuid4())
    w2 = await world(invoices, cons, other)
    a = await record(stub, md, w1.invoice_id, w1.connection_id)
    b = await record(stub, other, w2.invoice_id, w2.connection_id)
    assert a.id != b.id


async def test_twenty_concurrent_creates_make_exactly_one_row(
    stub: Stub,
    cons: Connections,
    invoices: Invoices,
    md: Metadata,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
) -> None:
    w = await world(invoices, cons, md)

    async def attempt() -> pb.InvoiceProvenance | grpc.aio.AioRpcError:
        try:
            return await record(stub, md, w.invoice_id, w.connection_id, INPUT)
        except grpc.aio.AioRpcError as err:
            return err

    outcomes = await asyncio.gather(*(attempt() for _ in range(20)))
    created = [o for o in outcomes if isinstance(o, pb.InvoiceProvenance)]
    errors = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    codes = sorted(f"{e.code()}: {e.details()}" for e in errors)
    assert len(created) == 1, codes
    assert len(errors) == 19, codes
    assert all(e.code() == Code.ALREADY_EXISTS for e in errors), codes
    assert all(error_info(e).reason == "PROVENANCE_ALREADY_EXISTS" for e in errors)
    live = await admin.fetch(
        "SELECT id FROM invoice_provenances WHERE tenant_id = $1 AND deleted_at IS NULL", tenant
    )
    assert [r["id"] for r in live] == [uid(created[0].id)]
    assert await count_rows(admin, tenant) == 1
    assert await list_ids(stub, md) == [created[0].id]


async def test_request_id_replays_the_first_response(
    stub: Stub,
    cons: Connections,
    invoices: Invoices,
    md: Metadata,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
) -> None:
    w = await world(invoices, cons, md)
    request = create_request(w.invoice_id, w.connection_id, INPUT, str(uuid.uuid4()))
    first_call = stub.CreateInvoiceProvenance(request, metadata=md)
    first = await first_call
    assert dict(await first_call.trailing_metadata()).get("idempotent-replayed") != "true"
    second_call = stub.CreateInvoiceProvenance(request, metadata=md)
    second = await second_call
    assert second == first
    assert dict(await second_call.trailing_metadata())["idempotent-replayed"] == "true"
    assert await count_rows(admin, tenant) == 1

    # The same key with a different request: refused, nothing written.
    other = create_request(w.invoice_id, w.connection_id, OUTPUT, request.request_id)
    await invalid(
        stub.CreateInvoiceProvenance(other, metadata=md), "request_id", "REQUEST_ID_REUSED"
    )
    assert await count_rows(admin, tenant) == 1
    # Without the key, the same row is a live duplicate.
    await fails(record(stub, md, w.invoice_id, w.connection_id, INPUT), Code.ALREADY_EXISTS)


async def test_request_id_is_per_tenant(
    stub: Stub, cons: Connections, invoices: Invoices, md: Metadata, tokens: Tokens
) -> None:
    rid = uuid.uuid4().hex
    w1 = await world(invoices, cons, md)
    other = tokens.md(uuid.uuid4())
    w2 = await world(invoices, cons, other)
    mine = await record(stub, md, w1.invoice_id, w1.connection_id, request_id=rid)
    theirs = await record(stub, other, w2.invoice_id, w2.connection_id, request_id=rid)
    assert mine.id != theirs.id
    assert theirs.invoice_id == w2.invoice_id


async def test_invalid_request_id_is_refused(
    stub: Stub,
    cons: Connections,
    invoices: Invoices,
    md: Metadata,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
) -> None:
    w = await world(invoices, cons, md)
    for rid in ("has space", "x" * 129, "é"):
        await invalid(record(stub, md, w.invoice_id, w.connection_id, request_id=rid), "request_id")
    assert await count_rows(admin, tenant) == 0


async def test_concurrent_retries_of_one_request_create_one_row(
    stub: Stub,
    cons: Connections,
    invoices: Invoices,
    md: Metadata,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
) -> None:
    w = await world(invoices, cons, md)
    request = create_request(w.invoice_id, w.connection_id, OUTPUT, uuid.uuid4().hex)
    results = await asyncio.gather(
        *(stub.CreateInvoiceProvenance(request, metadata=md) for _ in range(6))
    )
    assert len({r.id for r in results}) == 1
    assert await count_rows(admin, tenant) == 1


# ---- GetInvoiceProvenance ---------------------------------------------------------


async def test_get_returns_a_fresh_row(
    stub: Stub, cons: Connections, invoices: Invoices, md: Metadata
) -> None:
    w = await world(invoices, cons, md)
    created = await record(stub, md, w.invoice_id, w.connection_id)
    got = await get(stub, md, created.id)
    assert got == created
    assert got.HasField("created_at")
    assert not got.HasField("updated_at") and not got.HasField("deleted_at")
    # Public ids are case-insensitive.
    lower = f"prv_{created.id[4:].lower()}"
    assert await get(stub, md, lower) == created


async def test_get_returns_a_soft_deleted_row(
    stub: Stub, cons: Connections, invoices: Invoices, md: Metadata
) -> None:
    w = await world(invoices, cons, md)
    created = await record(stub, md, w.invoice_id, w.connection_id)
    deleted = await delete(stub, md, created.id)
    got = await get(stub, md, created.id)
    assert got == deleted
    assert got.HasField("deleted_at") and got.HasField("updated_at")
    assert got.created_at == created.created_at
    assert got.deleted_at.ToDatetime() >= got.created_at.ToDatetime()
    assert (got.id, got.invoice_id, got.connection_id, got.direction) == (
        created.id,
        created.invoice_id,
        created.connection_id,
        created.direction,
    )


@pytest.mark.parametrize(
    ("provenance_id", "reason"),
    [
        ("", "REQUIRED"),
        ("nonsense", None),
        (f"inv_{VALID_BODY}", None),
        (f"con_{VALID_BODY}", None),
        (f"prv_{VALID_BODY[:-1]}", None),
        (f"prv_{VALID_BODY}X", None),
        (str(uuid.uuid4()), None),
    ],
    ids=["empty", "garbage", "invoice-id", "connection-id", "short", "long", "bare-uuid"],
)
async def test_malformed_ids_are_invalid_argument(
    stub: Stub, md: Metadata, provenance_id: str, reason: str | None
) -> None:
    await invalid(get(stub, md, provenance_id), "id", reason)
    await invalid(delete(stub, md, provenance_id), "id", reason)


async def test_unknown_id_is_not_found(stub: Stub, md: Metadata) -> None:
    err = await fails(get(stub, md, UNKNOWN_PRV), Code.NOT_FOUND)
    assert error_info(err).reason == "PROVENANCE_NOT_FOUND"
    assert UNKNOWN_PRV in str(err.details())
    err = await fails(delete(stub, md, UNKNOWN_PRV), Code.NOT_FOUND)
    assert error_info(err).reason == "PROVENANCE_NOT_FOUND"


async def test_another_tenants_row_is_indistinguishable_from_unknown(
    stub: Stub,
    cons: Connections,
    invoices: Invoices,
    md: Metadata,
    tokens: Tokens,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
) -> None:
    w = await world(invoices, cons, md)
    theirs = await record(stub, md, w.invoice_id, w.connection_id)
    intruder = tokens.md(uuid.uuid4())
    unknown = "prv_" + ("0" * 26 if theirs.id[4:] != "0" * 26 else "1" * 26)
    for call in (get, delete):
        foreign = await fails(call(stub, intruder, theirs.id), Code.NOT_FOUND)
        missing = await fails(call(stub, intruder, unknown), Code.NOT_FOUND)
        same_shape(foreign, missing, theirs.id, unknown)
    (row,) = await provenance_rows(admin, tenant)
    assert row["deleted_at"] is None


# ---- DeleteInvoiceProvenance ------------------------------------------------------


async def test_delete_soft_deletes_once(
    stub: Stub,
    cons: Connections,
    invoices: Invoices,
    md: Metadata,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
) -> None:
    w = await world(invoices, cons, md)
    created = await record(stub, md, w.invoice_id, w.connection_id, OUTPUT)
    deleted = await delete(stub, md, created.id)
    assert deleted.id == created.id
    assert deleted.invoice_id == created.invoice_id
    assert deleted.connection_id == created.connection_id
    assert deleted.direction == OUTPUT
    assert deleted.created_at == created.created_at
    assert deleted.HasField("deleted_at") and deleted.HasField("updated_at")
    (row,) = await provenance_rows(admin, tenant)
    assert row["deleted_at"] is not None and row["deleted_by"]

    err = await fails(delete(stub, md, created.id), Code.NOT_FOUND)
    assert error_info(err).reason == "PROVENANCE_NOT_FOUND"
    (after,) = await provenance_rows(admin, tenant)
    assert after["deleted_at"] == row["deleted_at"]
    assert await get(stub, md, created.id) == deleted


async def test_rows_outlive_their_invoice_and_connection(
    stub: Stub, cons: Connections, invoices: Invoices, md: Metadata
) -> None:
    """Deleting the invoice or the connection later leaves the row readable and deletable
    (DeleteInvoiceProvenance is NOT_FOUND only for an unknown or already deleted row)."""
    w = await world(invoices, cons, md)
    first = await record(stub, md, w.invoice_id, w.connection_id, INPUT)
    second = await record(stub, md, w.invoice_id, w.connection_id, OUTPUT)
    await invoices.DeleteInvoice(ipb.DeleteInvoiceRequest(id=w.invoice_id), metadata=md)
    await delete_connection(cons, md, w.connection_id)
    assert await get(stub, md, first.id) == first
    assert set(await list_ids(stub, md)) == {first.id, second.id}
    deleted = await delete(stub, md, first.id)
    assert deleted.HasField("deleted_at")
    assert await list_ids(stub, md) == [second.id]


async def test_concurrent_deletes_delete_once(
    stub: Stub,
    cons: Connections,
    invoices: Invoices,
    md: Metadata,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
) -> None:
    w = await world(invoices, cons, md)
    created = await record(stub, md, w.invoice_id, w.connection_id)

    async def attempt() -> pb.InvoiceProvenance | grpc.aio.AioRpcError:
        try:
            return await delete(stub, md, created.id)
        except grpc.aio.AioRpcError as err:
            return err

    outcomes = await asyncio.gather(*(attempt() for _ in range(10)))
    deleted = [o for o in outcomes if isinstance(o, pb.InvoiceProvenance)]
    errors = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    codes = sorted(f"{e.code()}: {e.details()}" for e in errors)
    assert len(deleted) == 1, codes
    assert all(e.code() == Code.NOT_FOUND for e in errors), codes
    (row,) = await provenance_rows(admin, tenant)
    assert row["deleted_at"] == as_dt(deleted[0].deleted_at)


# ---- ListInvoiceProvenances -------------------------------------------------------


class Four:
    """Two invoices x two connections: a1 (inv1, con1, in), a2 (inv1, con2, out),
    a3 (inv2, con1, out), a4 (inv2, con2, in), created in that order."""

    def __init__(
        self, inv: tuple[str, str], con: tuple[str, str], rows: list[pb.InvoiceProvenance]
    ) -> None:
        self.inv = inv
        self.con = con
        self.rows = rows

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.rows]


async def four(stub: Stub, cons: Connections, invoices: Invoices, md: Metadata) -> Four:
    inv = (await invoice(invoices, md), await invoice(invoices, md))
    con = (await connection(cons, md), await connection(cons, md))
    rows = [
        await record(stub, md, inv[0], con[0], INPUT),
        await record(stub, md, inv[0], con[1], OUTPUT),
        await record(stub, md, inv[1], con[0], OUTPUT),
        await record(stub, md, inv[1], con[1], INPUT),
    ]
    return Four(inv, con, rows)


async def test_list_filters(
    stub: Stub, cons: Connections, invoices: Invoices, md: Metadata
) -> None:
    f = await four(stub, cons, invoices, md)
    a1, a2, a3, a4 = f.ids
    assert set(await list_ids(stub, md)) == {a1, a2, a3, a4}
    assert set(await list_ids(stub, md, filter=f'invoice_id = "{f.inv[0]}"')) == {a1, a2}
    assert set(await list_ids(stub, md, filter=f'invoice_id = "{f.inv[1]}"')) == {a3, a4}
    assert set(await list_ids(stub, md, filter=f'connection_id = "{f.con[0]}"')) == {a1, a3}
    assert set(await list_ids(stub, md, filter=f'connection_id = "{f.con[1]}"')) == {a2, a4}
    for spelled in ("INPUT", "input", "PROVENANCE_DIRECTION_INPUT"):
        assert set(await list_ids(stub, md, filter=f"direction = {spelled}")) == {a1, a4}
    for spelled in ("OUTPUT", "output", "PROVENANCE_DIRECTION_OUTPUT"):
        assert set(await list_ids(stub, md, filter=f"direction = {spelled}")) == {a2, a3}
    both = f'invoice_id = "{f.inv[0]}" AND direction = INPUT'
    assert await list_ids(stub, md, filter=both) == [a1]
    either = f'connection_id = "{f.con[1]}" OR direction = INPUT'
    assert set(await list_ids(stub, md, filter=either)) == {a1, a2, a4}
    assert set(await list_ids(stub, md, filter="NOT direction = INPUT")) == {a2, a3}
    assert await list_ids(stub, md, filter=f'id = "{a3}"') == [a3]
    listed = f'connection_id IN ("{f.con[0]}", "{UNKNOWN_CON}")'
    assert set(await list_ids(stub, md, filter=listed)) == {a1, a3}
    assert set(await list_ids(stub, md, filter='created_at > "2000-01-01T00:00:00Z"')) == set(f.ids)
    assert await list_ids(stub, md, filter='created_at < "2000-01-01T00:00:00Z"') == []
    assert await list_ids(stub, md, filter=f'invoice_id = "{UNKNOWN_INV}"') == []
    assert set(await list_ids(stub, md, filter="updated_at IS NULL")) == set(f.ids)
    assert await list_ids(stub, md, filter="deleted_at IS NOT NULL") == []
    await delete(stub, md, a2)
    assert await list_ids(stub, md, filter="deleted_at IS NOT NULL") == []
    gone = "deleted_at IS NOT NULL"
    assert await list_ids(stub, md, filter=gone, show_deleted=True) == [a2]
    assert await list_ids(stub, md, filter="updated_at IS NOT NULL", show_deleted=True) == [a2]
    assert set(await list_ids(stub, md, filter=f'invoice_id = "{f.inv[0]}"')) == {a1}


async def test_list_returns_full_rows(
    stub: Stub, cons: Connections, invoices: Invoices, md: Metadata
) -> None:
    w = await world(invoices, cons, md)
    created = await record(stub, md, w.invoice_id, w.connection_id)
    page = await listing(stub, md)
    assert list(page.data) == [created]
    assert page.next_cursor == ""
    assert not page.HasField("total")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"filter": 'workspace = "x"'}, "filter"),
        ({"filter": 'tenant_id = "x"'}, "filter"),
        ({"filter": 'created_by = "x"'}, "filter"),
        ({"filter": "direction = SIDEWAYS"}, "filter"),
        ({"filter": 'invoice_id = "con_01JD6N8Q6Z7T3M3Y5C4V8R2K1P"'}, "filter"),
        ({"filter": 'connection_id = "garbage"'}, "filter"),
        ({"filter": 'created_at > "yesterday"'}, "filter"),
        ({"filter": "direction = "}, "filter"),
        ({"order_by": "tenant_id"}, "order_by"),
        ({"order_by": "nope desc"}, "order_by"),
        ({"limit": -1}, "limit"),
        ({"direction": "sideways"}, "direction"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
    ids=[
        "filter-unknown",
        "filter-tenant",
        "filter-created-by",
        "filter-bad-enum",
        "filter-wrong-prefix",
        "filter-garbage-id",
        "filter-bad-timestamp",
        "filter-syntax",
        "order-tenant",
        "order-unknown",
        "negative-limit",
        "direction",
        "cursor",
    ],
)
async def test_list_validation(
    stub: Stub, md: Metadata, fields: dict[str, Any], field: str
) -> None:
    await invalid(
        stub.ListInvoiceProvenances(pb.ListInvoiceProvenancesRequest(**fields), metadata=md),
        field,
    )


async def test_list_ordering(
    stub: Stub, cons: Connections, invoices: Invoices, md: Metadata
) -> None:
    f = await four(stub, cons, invoices, md)
    a1, a2, a3, a4 = f.ids
    assert await list_ids(stub, md) == [a4, a3, a2, a1]  # created_at desc by default
    assert await list_ids(stub, md, order_by="created_at", direction="asc") == [a1, a2, a3, a4]
    assert await list_ids(stub, md, order_by="created_at asc") == [a1, a2, a3, a4]

    by_direction = await listing(stub, md, order_by="direction", direction="asc")
    assert [r.direction for r in by_direction.data] == [INPUT, INPUT, OUTPUT, OUTPUT]
    desc = await listing(stub, md, order_by="direction desc")
    assert [r.direction for r in desc.data] == [OUTPUT, OUTPUT, INPUT, INPUT]

    by_invoice = await listing(stub, md, order_by="invoice_id", direction="asc")
    keys = [uid(r.invoice_id) for r in by_invoice.data]
    assert keys == sorted(keys) and set(keys) == {uid(f.inv[0]), uid(f.inv[1])}
    by_invoice_desc = await listing(stub, md, order_by="invoice_id", direction="desc")
    keys = [uid(r.invoice_id) for r in by_invoice_desc.data]
    assert keys == sorted(keys, reverse=True)


@pytest.mark.parametrize(
    ("order_by", "direction"),
    [
        ("", ""),
        ("created_at", "asc"),
        ("direction", "asc"),
        ("direction", "desc"),
        ("invoice_id", "asc"),
        ("invoice_id", "desc"),
        ("updated_at", ""),
        ("connection_id", "desc"),
    ],
)
async def test_list_pagination(
    stub: Stub,
    cons: Connections,
    invoices: Invoices,
    md: Metadata,
    order_by: str,
    direction: str,
) -> None:
    f = await four(stub, cons, invoices, md)
    # A fifth, deleted row, listed only with show_deleted (so updated_at has a value too).
    extra = await record(stub, md, f.inv[0], f.con[0], OUTPUT)
    await delete(stub, md, extra.id)
    for show_deleted, expected in ((False, set(f.ids)), (True, {*f.ids, extra.id})):
        seen: list[str] = []
        cursor = ""
        for _ in range(10):
            page = await listing(
                stub,
                md,
                limit=1,
                cursor=cursor,
                order_by=order_by,
                direction=direction,
                show_deleted=show_deleted,
                include_total=True,
            )
            assert len(page.data) <= 1
            assert page.HasField("total") and page.total == len(expected)
            seen += [r.id for r in page.data]
            cursor = page.next_cursor
            if not cursor:
                break
        assert cursor == ""
        assert len(seen) == len(set(seen)) == len(expected), seen
        assert set(seen) == expected
        # Pages of one are the whole list, in order.
        whole = await list_ids(
            stub, md, order_by=order_by, direction=direction, show_deleted=show_deleted
        )
        assert seen == whole


async def test_cursors_are_bound_to_their_query(
    stub: Stub, cons: Connections, invoices: Invoices, md: Metadata, tokens: Tokens
) -> None:
    await four(stub, cons, invoices, md)
    first = await listing(stub, md, limit=1, filter="direction = INPUT")
    assert first.next_cursor
    for changed in (
        {"filter": "direction = OUTPUT"},
        {"filter": ""},
        {"filter": "direction = INPUT", "order_by": "invoice_id"},
        {"filter": "direction = INPUT", "direction": "asc"},
        {"filter": "direction = INPUT", "show_deleted": True},
    ):
        await invalid(
            stub.ListInvoiceProvenances(
                pb.ListInvoiceProvenancesRequest(limit=1, cursor=first.next_cursor, **changed),
                metadata=md,
            ),
            "cursor",
        )
    # Another tenant cannot use it.
    await invalid(
        stub.ListInvoiceProvenances(
            pb.ListInvoiceProvenancesRequest(
                limit=1, cursor=first.next_cursor, filter="direction = INPUT"
            ),
            metadata=tokens.md(uuid.uuid4()),
        ),
        "cursor",
    )


async def test_list_total_and_show_deleted(
    stub: Stub, cons: Connections, invoices: Invoices, md: Metadata
) -> None:
    f = await four(stub, cons, invoices, md)
    a1, a2, a3, a4 = f.ids
    assert not (await listing(stub, md)).HasField("total")
    await delete(stub, md, a2)
    page = await listing(stub, md, include_total=True)
    assert {r.id for r in page.data} == {a1, a3, a4} and page.total == 3
    everything = await listing(stub, md, include_total=True, show_deleted=True)
    assert {r.id for r in everything.data} == {a1, a2, a3, a4} and everything.total == 4
    deleted = next(r for r in everything.data if r.id == a2)
    assert deleted.HasField("deleted_at")
    assert all(not r.HasField("deleted_at") for r in everything.data if r.id != a2)
    filtered = await listing(
        stub, md, show_deleted=True, include_total=True, filter=f'invoice_id = "{f.inv[0]}"'
    )
    assert {r.id for r in filtered.data} == {a1, a2} and filtered.total == 2
    live_only = await listing(stub, md, include_total=True, filter=f'invoice_id = "{f.inv[0]}"')
    assert [r.id for r in live_only.data] == [a1] and live_only.total == 1
    small = await listing(stub, md, limit=1, include_total=True)
    assert len(small.data) == 1 and small.total == 3 and small.next_cursor


async def test_large_limit_is_capped(
    stub: Stub, cons: Connections, invoices: Invoices, md: Metadata
) -> None:
    w = await world(invoices, cons, md)
    await record(stub, md, w.invoice_id, w.connection_id)
    page = await listing(stub, md, limit=100_000)
    assert len(page.data) == 1 and page.next_cursor == ""


async def test_tenant_isolation_in_lists(
    stub: Stub, cons: Connections, invoices: Invoices, md: Metadata, tokens: Tokens
) -> None:
    f = await four(stub, cons, invoices, md)
    await delete(stub, md, f.ids[0])
    other = tokens.md(uuid.uuid4())
    assert await list_ids(stub, other) == []
    assert await list_ids(stub, other, show_deleted=True) == []
    assert (await listing(stub, other, include_total=True, show_deleted=True)).total == 0
    w = await world(invoices, cons, other)
    theirs = await record(stub, other, w.invoice_id, w.connection_id)
    assert await list_ids(stub, other, show_deleted=True) == [theirs.id]
    for value in (*f.inv, *f.con):
        field = "invoice_id" if value.startswith("inv_") else "connection_id"
        assert await list_ids(stub, other, filter=f'{field} = "{value}"', show_deleted=True) == []
    for pid in f.ids:
        assert await list_ids(stub, other, filter=f'id = "{pid}"', show_deleted=True) == []
    assert set(await list_ids(stub, md, show_deleted=True)) == set(f.ids)


# ---- ListInvoices' provenance filters ---------------------------------------------


class Routed:
    """Connections x, y; invoices: i1 (input x), i2 (input x, output y), i3 (output x,
    input y), i4 (none)."""

    def __init__(self, x: str, y: str, i: list[str], i2_input: pb.InvoiceProvenance) -> None:
        self.x = x
        self.y = y
        self.i = i
        self.i2_input = i2_input


async def routed(stub: Stub, cons: Connections, invoices: Invoices, md: Metadata) -> Routed:
    x, y = await connection(cons, md), await connection(cons, md)
    i = [await invoice(invoices, md) for _ in range(4)]
    await record(stub, md, i[0], x, INPUT)
    i2_input = await record(stub, md, i[1], x, INPUT)
    await record(stub, md, i[1], y, OUTPUT)
    await record(stub, md, i[2], x, OUTPUT)
    await record(stub, md, i[2], y, INPUT)
    return Routed(x, y, i, i2_input)


async def test_list_invoices_by_provenance(
    stub: Stub, cons: Connections, invoices: Invoices, md: Metadata
) -> None:
    r = await routed(stub, cons, invoices, md)
    i1, i2, i3, i4 = r.i
    assert await invoice_ids(invoices, md, "") == {i1, i2, i3, i4}
    assert await invoice_ids(invoices, md, f'input_connection_id = "{r.x}"') == {i1, i2}
    assert await invoice_ids(invoices, md, f'output_connection_id = "{r.x}"') == {i3}
    assert await invoice_ids(invoices, md, f'input_connection_id = "{r.y}"') == {i3}
    assert await invoice_ids(invoices, md, f'output_connection_id = "{r.y}"') == {i2}
    either = f'input_connection_id IN ("{r.x}", "{r.y}")'
    assert await invoice_ids(invoices, md, either) == {i1, i2, i3}
    assert await invoice_ids(invoices, md, f'NOT input_connection_id = "{r.x}"') == {i3, i4}
    neither = f'NOT output_connection_id IN ("{r.x}", "{r.y}")'
    assert await invoice_ids(invoices, md, neither) == {i1, i4}
    both = f'input_connection_id = "{r.x}" AND output_connection_id = "{r.y}"'
    assert await invoice_ids(invoices, md, both) == {i2}
    mixed = f'input_connection_id = "{r.y}" OR output_connection_id = "{r.y}"'
    assert await invoice_ids(invoices, md, mixed) == {i2, i3}
    assert await invoice_ids(invoices, md, f'input_connection_id = "{UNKNOWN_CON}"') == set()
    # Combined with an invoice field.
    with_status = f'input_connection_id = "{r.x}" AND status = DRAFT'
    assert await invoice_ids(invoices, md, with_status) == {i1, i2}


async def test_list_invoices_by_provenance_paginates(
    stub: Stub, cons: Connections, invoices: Invoices, md: Metadata
) -> None:
    x = await connection(cons, md)
    fed = [await invoice(invoices, md) for _ in range(3)]
    for invoice_id in fed:
        await record(stub, md, invoice_id, x, INPUT)
    await invoice(invoices, md)  # not fed by x
    filter_ = f'input_connection_id = "{x}"'
    seen: list[str] = []
    cursor = ""
    for _ in range(10):
        page: ipb.ListInvoicesResponse = await invoices.ListInvoices(
            ipb.ListInvoicesRequest(limit=1, cursor=cursor, filter=filter_, include_total=True),
            metadata=md,
        )
        assert page.HasField("total") and page.total == 3
        seen += [i.id for i in page.data]
        cursor = page.next_cursor
        if not cursor:
            break
    assert cursor == ""
    assert len(seen) == len(set(seen)) == 3 and set(seen) == set(fed)


async def test_list_invoices_ignores_deleted_provenance(
    stub: Stub, cons: Connections, invoices: Invoices, md: Metadata
) -> None:
    r = await routed(stub, cons, invoices, md)
    i1, i2, i3, i4 = r.i
    await delete(stub, md, r.i2_input.id)
    assert await invoice_ids(invoices, md, f'input_connection_id = "{r.x}"') == {i1}
    assert await invoice_ids(invoices, md, f'NOT input_connection_id = "{r.x}"') == {i2, i3, i4}
    # i2's output row is still live.
    assert await invoice_ids(invoices, md, f'output_connection_id = "{r.y}"') == {i2}
    # Recording it again brings it back.
    await record(stub, md, i2, r.x, INPUT)
    assert await invoice_ids(invoices, md, f'input_connection_id = "{r.x}"') == {i1, i2}


async def test_list_invoices_provenance_filters_are_tenant_scoped(
    stub: Stub, cons: Connections, invoices: Invoices, md: Metadata, tokens: Tokens
) -> None:
    r = await routed(stub, cons, invoices, md)
    other = tokens.md(uuid.uuid4())
    mine = await invoice(invoices, other)
    for field in ("input_connection_id", "output_connection_id"):
        for value in (r.x, r.y):
            assert await invoice_ids(invoices, other, f'{field} = "{value}"') == set()
        assert await invoice_ids(invoices, other, f'NOT {field} = "{r.x}"') == {mine}


@pytest.mark.parametrize(
    "value",
    ["garbage", f"inv_{VALID_BODY}", f"prv_{VALID_BODY}", f"con_{VALID_BODY[:-1]}", ""],
    ids=["garbage", "invoice-id", "provenance-id", "short", "empty"],
)
async def test_list_invoices_malformed_connection_id_is_invalid(
    invoices: Invoices, md: Metadata, value: str
) -> None:
    for field in ("input_connection_id", "output_connection_id"):
        await invalid(
            invoices.ListInvoices(
                ipb.ListInvoicesRequest(filter=f'{field} = "{value}"'), metadata=md
            ),
            "filter",
        )
        await invalid(
            invoices.ListInvoices(
                ipb.ListInvoicesRequest(filter=f'{field} IN ("{UNKNOWN_CON}", "{value}")'),
                metadata=md,
            ),
            "filter",
        )


async def test_rest_list_invoices_by_provenance(
    stub: Stub,
    cons: Connections,
    invoices: Invoices,
    md: Metadata,
    http: httpx.AsyncClient,
    auth: dict[str, str],
) -> None:
    r = await routed(stub, cons, invoices, md)
    i1, i2, i3, _ = r.i
    cases = [
        (f'input_connection_id = "{r.x}"', {i1, i2}),
        (f'output_connection_id = "{r.x}"', {i3}),
        (f'input_connection_id IN ("{r.x}", "{r.y}")', {i1, i2, i3}),
    ]
    for filter_, expected in cases:
        response = await http.get(
            "/v1/invoices", params={"filter": filter_, "limit": "200"}, headers=auth
        )
        assert response.status_code == 200, response.text
        assert {i["id"] for i in response.json()["data"]} == expected
    bad = await http.get(
        "/v1/invoices", params={"filter": 'input_connection_id = "nope"'}, headers=auth
    )
    body = assert_rest_error(bad, 400, "INVALID_ARGUMENT")
    assert "filter" in rest_fields(body)


# ---- REST -------------------------------------------------------------------------


async def test_rest_create_get_list_delete(
    stub: Stub,
    cons: Connections,
    invoices: Invoices,
    md: Metadata,
    http: httpx.AsyncClient,
    auth: dict[str, str],
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
) -> None:
    w = await world(invoices, cons, md)
    body = {
        "invoice_id": w.invoice_id,
        "connection_id": w.connection_id,
        "direction": "PROVENANCE_DIRECTION_INPUT",
    }
    # The flat canonical body is still read; the answer is a seed 000 JSON:API document.
    created = await http.post(BASE, json=body, headers=auth)
    assert created.status_code == 201, created.text
    data = resource(created.json())
    attributes: Json = data["attributes"]
    assert related(data, "invoice") == w.invoice_id
    assert related(data, "workspace_connector") == w.connection_id
    assert attributes["direction"] == "input"
    assert attributes["created_at"]
    assert attributes["updated_at"] is None and attributes["deleted_at"] is None
    assert created.headers["location"] == f"{BASE}/{data['id']}"
    over_grpc = await get(stub, md, data["id"])
    assert over_grpc.invoice_id == w.invoice_id and over_grpc.direction == INPUT

    got = await http.get(f"{BASE}/{data['id']}", headers=auth)
    assert got.status_code == 200 and got.json() == created.json()

    # The OUTPUT row through the camelCase body.
    out = await http.post(
        BASE,
        json={
            "invoiceId": w.invoice_id,
            "connectionId": w.connection_id,
            "direction": "PROVENANCE_DIRECTION_OUTPUT",
        },
        headers=auth,
    )
    assert out.status_code == 201, out.text
    output = resource(out.json())
    out_id = output["id"]
    assert output["attributes"]["direction"] == "output"
    assert related(output, "invoice") == w.invoice_id
    assert related(output, "workspace_connector") == w.connection_id

    listed = page(await http.get(BASE, params={"filter": "direction = INPUT"}, headers=auth))
    assert [r["id"] for r in listed["data"]] == [data["id"]]
    assert listed["data"][0] == data
    everything = page(await http.get(BASE, params={"include_total": "true"}, headers=auth))
    assert {r["id"] for r in everything["data"]} == {data["id"], out_id}
    assert everything["meta"]["total"] == 2 and everything["links"]["next"] is None

    removed = await http.delete(f"{BASE}/{data['id']}", headers=auth)
    assert removed.status_code == 200, removed.text
    gone = resource(removed.json())
    assert gone["id"] == data["id"]
    assert gone["attributes"]["deleted_at"] and gone["attributes"]["updated_at"]
    assert gone["attributes"]["created_at"] == attributes["created_at"]
    assert gone["relationships"] == data["relationships"]
    again = await http.delete(f"{BASE}/{data['id']}", headers=auth)
    assert_seed_error(again, 404, "NOT_FOUND", "PROVENANCE_NOT_FOUND")
    still = await http.get(f"{BASE}/{data['id']}", headers=auth)
    assert still.status_code == 200 and still.json() == removed.json()
    # include_total defaults to true on seed 000 lists: meta.total without asking.
    live = page(await http.get(BASE, headers=auth))
    assert [r["id"] for r in live["data"]] == [out_id]
    assert live["meta"]["total"] == 1
    shown = page(await http.get(BASE, params={"show_deleted": "true"}, headers=auth))
    assert {r["id"] for r in shown["data"]} == {data["id"], out_id}
    # One row a page: links.next is the cursor of the next page, null on the last.
    paged: list[str] = []
    params = {"show_deleted": "true", "limit": "1"}
    for _ in range(5):
        one = page(await http.get(BASE, params=params, headers=auth))
        assert one["meta"]["total"] == 2 and one["meta"]["count"] == 1
        paged += [r["id"] for r in one["data"]]
        if one["links"]["next"] is None:
            break
        params["cursor"] = one["links"]["next"]
    assert sorted(paged) == sorted({data["id"], out_id})
    assert await count_rows(admin, tenant) == 2


async def test_rest_errors(
    cons: Connections,
    invoices: Invoices,
    md: Metadata,
    tokens: Tokens,
    tenant: uuid.UUID,
    http: httpx.AsyncClient,
    auth: dict[str, str],
    admin: asyncpg.Connection,
) -> None:
    w = await world(invoices, cons, md)
    body = {
        "invoice_id": w.invoice_id,
        "connection_id": w.connection_id,
        "direction": "PROVENANCE_DIRECTION_INPUT",
    }
    reader = {"Authorization": f"Bearer {tokens.token(tenant, permissions=NOT_SYSTEM)}"}
    denied = await http.post(BASE, json=body, headers=reader)
    assert_seed_error(denied, 403, "PERMISSION_DENIED")
    anonymous = await http.post(BASE, json=body)
    assert_seed_error(anonymous, 401, "UNAUTHENTICATED")
    assert await count_rows(admin, tenant) == 0

    unspecified = await http.post(BASE, json={**body, "direction": 0}, headers=auth)
    error = assert_seed_error(unspecified, 400, "INVALID_ARGUMENT")
    assert "invoice_provenance.direction" in rest_fields(error)
    no_direction = {k: v for k, v in body.items() if k != "direction"}
    missing = await http.post(BASE, json=no_direction, headers=auth)
    error = assert_seed_error(missing, 400, "INVALID_ARGUMENT")
    assert "invoice_provenance.direction" in rest_fields(error)
    malformed = await http.post(BASE, json={**body, "invoice_id": "garbage"}, headers=auth)
    error = assert_seed_error(malformed, 400, "INVALID_ARGUMENT")
    assert "invoice_provenance.invoice_id" in rest_fields(error)
    wrong = await http.post(BASE, json={**body, "connection_id": w.invoice_id}, headers=auth)
    error = assert_seed_error(wrong, 400, "INVALID_ARGUMENT")
    assert "invoice_provenance.connection_id" in rest_fields(error)
    unknown = await http.post(BASE, json={**body, "invoice_id": UNKNOWN_INV}, headers=auth)
    assert_seed_error(unknown, 404, "NOT_FOUND", "INVOICE_NOT_FOUND")
    unknown = await http.post(BASE, json={**body, "connection_id": UNKNOWN_CON}, headers=auth)
    assert_seed_error(unknown, 404, "NOT_FOUND", "CONNECTION_NOT_FOUND")
    assert await count_rows(admin, tenant) == 0

    first = await http.post(BASE, json=body, headers=auth)
    assert first.status_code == 201, first.text
    duplicate = await http.post(BASE, json=body, headers=auth)
    assert_seed_error(duplicate, 409, "ALREADY_EXISTS", "PROVENANCE_ALREADY_EXISTS")
    assert await count_rows(admin, tenant) == 1

    row_id = resource(first.json())["id"]
    assert_seed_error(
        await http.delete(f"{BASE}/{row_id}", headers=reader), 403, "PERMISSION_DENIED"
    )
    assert_seed_error(await http.delete(f"{BASE}/{row_id}"), 401, "UNAUTHENTICATED")
    assert_seed_error(await http.get(f"{BASE}/{row_id}"), 401, "UNAUTHENTICATED")
    assert_seed_error(await http.get(BASE), 401, "UNAUTHENTICATED")
    no_read = {"Authorization": f"Bearer {tokens.token(tenant, permissions=['system'])}"}
    assert_seed_error(await http.get(f"{BASE}/{row_id}", headers=no_read), 403, "PERMISSION_DENIED")
    assert_seed_error(await http.get(BASE, headers=no_read), 403, "PERMISSION_DENIED")
    assert_seed_error(await http.get(f"{BASE}/{UNKNOWN_PRV}", headers=auth), 404, "NOT_FOUND")
    bad_id = await http.get(f"{BASE}/nonsense", headers=auth)
    assert "id" in rest_fields(assert_seed_error(bad_id, 400, "INVALID_ARGUMENT"))
    negative = await http.get(BASE, params={"limit": "-1"}, headers=auth)
    assert "limit" in rest_fields(assert_seed_error(negative, 400, "INVALID_ARGUMENT"))
    unknown_field = await http.get(BASE, params={"filter": 'nope = "x"'}, headers=auth)
    assert "filter" in rest_fields(assert_seed_error(unknown_field, 400, "INVALID_ARGUMENT"))
    (row,) = await provenance_rows(admin, tenant)
    assert row["deleted_at"] is None


async def test_rest_request_id_replays(
    cons: Connections,
    invoices: Invoices,
    md: Metadata,
    tenant: uuid.UUID,
    http: httpx.AsyncClient,
    auth: dict[str, str],
    admin: asyncpg.Connection,
) -> None:
    w = await world(invoices, cons, md)
    body = {
        "invoice_id": w.invoice_id,
        "connection_id": w.connection_id,
        "direction": "PROVENANCE_DIRECTION_OUTPUT",
    }
    headers = {**auth, "Idempotency-Key": uuid.uuid4().hex}
    first = await http.post(BASE, json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert first.headers.get("idempotent-replayed") != "true"
    second = await http.post(BASE, json=body, headers=headers)
    assert second.status_code == 201, second.text
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert await count_rows(admin, tenant) == 1
