"""CounterpartyService over the real gRPC port, the real REST gateway (in-process and
standalone: every REST test runs in both modes) and a real PostgreSQL, nothing mocked.
Asserts protos/invoicing/v1/counterparties.proto and PROVIDERS.md "SIREN and SIRET".

Every test runs in its own random tenant, so SIRETs repeat freely across tests. Sections:

  helpers · create (normalization, output-only fields, validation, one live SIRET, the
  10-way race, idempotency, invoices take the id) · get · update · delete · list
  · tenant isolation · permissions · REST
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import asyncpg
import grpc
import httpx
import pytest
from google.protobuf.message import Message
from invoicing.v1 import counterparties_pb2 as pb
from invoicing.v1 import counterparties_pb2_grpc
from invoicing.v1 import invoices_pb2 as ipb

from tests.conftest import Tokens, error_info, rich_status, sample_invoice, violations
from tests.factories import Code, Invoices, Metadata, as_dt, fails, get_invoice, invalid, mask

if TYPE_CHECKING:
    Stub = counterparties_pb2_grpc.CounterpartyServiceAsyncStub
else:
    Stub = counterparties_pb2_grpc.CounterpartyServiceStub
Json = dict[str, Any]


def luhn_complete(prefix: str) -> str:
    """prefix + its Luhn check digit."""
    total = 0
    for index, char in enumerate(reversed(prefix)):
        value = int(char) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return prefix + str((10 - total % 10) % 10)


def vat_of(siren: str) -> str:
    return f"FR{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}"


DANONE = "732829320"
DANONE_HQ = "73282932000074"
DANONE_2 = "73282932000017"
DANONE_3 = "73282932000025"
DANONE_VAT = "FR44732829320"
OTHER = "552100554"
OTHER_HQ = luhn_complete(f"{OTHER}0001")
OTHER_VAT = vat_of(OTHER)
LA_POSTE_SIRET = "35600000000001"  # digit sum 15; fails Luhn, valid by La Poste's rule
BAD_SIRET = "73282932000075"  # one digit off DANONE_HQ

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ETAG = re.compile(r'^W/"\d+"$')
UNKNOWN_ID = "0190f3a1-0000-7000-8000-000000000000"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"

assert OTHER_HQ != DANONE_HQ and vat_of(DANONE) == DANONE_VAT


# ---- helpers ----------------------------------------------------------------------


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> Stub:
    return counterparties_pb2_grpc.CounterpartyServiceStub(channel)


@pytest.fixture
def auth(tokens: Tokens, tenant: uuid.UUID) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.token(tenant)}"}


@pytest.fixture
async def http(rest_base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the REST gateway (in-process and standalone), no credentials."""
    async with httpx.AsyncClient(base_url=rest_base_url, timeout=30) as client:
        yield client


async def create(
    stub: Stub, md: Metadata, name: str = "Danone SA", request_id: str = "", **fields: Any
) -> pb.Counterparty:
    result: pb.Counterparty = await stub.CreateCounterparty(
        pb.CreateCounterpartyRequest(
            counterparty=pb.Counterparty(name=name, **fields), request_id=request_id
        ),
        metadata=md,
    )
    return result


async def get(stub: Stub, md: Metadata, counterparty_id: str) -> pb.Counterparty:
    result: pb.Counterparty = await stub.GetCounterparty(
        pb.GetCounterpartyRequest(id=counterparty_id), metadata=md
    )
    return result


async def update(
    stub: Stub, md: Metadata, counterparty_id: str, paths: tuple[str, ...] = (), **fields: Any
) -> pb.Counterparty:
    request = pb.UpdateCounterpartyRequest(
        counterparty=pb.Counterparty(id=counterparty_id, **fields)
    )
    if paths:
        request.update_mask.CopyFrom(mask(*paths))
    result: pb.Counterparty = await stub.UpdateCounterparty(request, metadata=md)
    return result


async def delete(stub: Stub, md: Metadata, counterparty_id: str, etag: str = "") -> pb.Counterparty:
    result: pb.Counterparty = await stub.DeleteCounterparty(
        pb.DeleteCounterpartyRequest(id=counterparty_id, etag=etag), metadata=md
    )
    return result


async def listing(stub: Stub, md: Metadata, **fields: Any) -> pb.ListCounterpartiesResponse:
    result: pb.ListCounterpartiesResponse = await stub.ListCounterparties(
        pb.ListCounterpartiesRequest(**fields), metadata=md
    )
    return result


async def list_ids(stub: Stub, md: Metadata, **fields: Any) -> set[str]:
    page = await listing(stub, md, limit=200, **fields)
    assert page.next_cursor == ""
    return {c.id for c in page.data}


async def walk(stub: Stub, md: Metadata, **fields: Any) -> list[pb.Counterparty]:
    """Every item, one per page (limit 1), following next_cursor to the end."""
    items: list[pb.Counterparty] = []
    cursor = ""
    for _ in range(50):
        page = await listing(stub, md, limit=1, cursor=cursor, **fields)
        assert len(page.data) <= 1
        items += page.data
        cursor = page.next_cursor
        if not cursor:
            return items
    raise AssertionError("pagination did not end")


async def rows(admin: asyncpg.Connection, tenant: uuid.UUID) -> list[asyncpg.Record]:
    found: list[asyncpg.Record] = await admin.fetch(
        "SELECT * FROM counterparties WHERE tenant_id = $1 ORDER BY created_at, id", tenant
    )
    return found


def without(text: str, *ids: str) -> str:
    for value in ids:
        text = text.replace(value, "<id>")
    return text


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


def rest_fields(body: Json) -> list[str]:
    return [
        v["field"]
        for d in body["details"]
        if d["@type"] == BAD_REQUEST
        for v in d.get("field_violations", [])
    ]


# ---- CreateCounterparty ------------------------------------------------------------


async def test_create_normalizes_siret_and_vat_and_derives_siren(
    stub: Stub, md: Metadata, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    created = await create(
        stub,
        md,
        name="  Danone SA  ",
        siret="732 829 320 00074",
        vat_number="fr 44 732 829 320",
        head_office=True,
    )
    assert UUID.match(created.id), created.id
    assert str(uuid.UUID(created.id)) == created.id
    assert created.tenant_id == str(tenant)
    assert created.name == "Danone SA"
    assert created.siret == DANONE_HQ
    assert created.siren == DANONE
    assert created.vat_number == DANONE_VAT
    assert created.head_office is True
    assert ETAG.match(created.etag), created.etag
    assert created.HasField("created_at") and created.HasField("updated_at")
    assert not created.HasField("deleted_at")
    assert await get(stub, md, created.id) == created

    (row,) = await rows(admin, tenant)
    assert str(row["id"]) == created.id
    assert (row["siret"], row["siren"], row["vat_number"]) == (DANONE_HQ, DANONE, DANONE_VAT)
    assert row["head_office"] is True and row["deleted_at"] is None


async def test_create_with_a_name_only(stub: Stub, md: Metadata) -> None:
    created = await create(stub, md, name="Acme")
    assert (created.name, created.siret, created.siren, created.vat_number) == ("Acme", "", "", "")
    assert created.head_office is False
    assert await get(stub, md, created.id) == created


async def test_create_accepts_a_la_poste_siret(stub: Stub, md: Metadata) -> None:
    created = await create(stub, md, name="La Poste", siret="356 000 000 00001")
    assert (created.siret, created.siren) == (LA_POSTE_SIRET, "356000000")


async def test_create_accepts_a_foreign_vat_number_as_is(stub: Stub, md: Metadata) -> None:
    created = await create(stub, md, siret=DANONE_HQ, vat_number="de 123 456 789")
    assert created.vat_number == "DE123456789"


async def test_create_ignores_output_only_fields(
    stub: Stub, md: Metadata, tenant: uuid.UUID
) -> None:
    sent_id, sent_tenant = str(uuid.uuid4()), str(uuid.uuid4())
    created = await create(
        stub, md, siret=DANONE_HQ, siren=OTHER, id=sent_id, tenant_id=sent_tenant
    )
    assert created.siren == DANONE
    assert created.id != sent_id and created.tenant_id == str(tenant)
    # Without a SIRET there is no SIREN, whatever the client sends.
    alone = await create(stub, md, name="No SIRET", siren=OTHER)
    assert (alone.siret, alone.siren) == ("", "")


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"name": ""}, "counterparty.name", "REQUIRED"),
        ({"name": "   "}, "counterparty.name", "REQUIRED"),
        ({"name": "x" * 201}, "counterparty.name", "TOO_LONG"),
        ({"siret": BAD_SIRET}, "counterparty.siret", "INVALID_SIRET"),
        ({"siret": DANONE_HQ[:13]}, "counterparty.siret", "INVALID_SIRET"),
        ({"siret": "7328293200007A"}, "counterparty.siret", "INVALID_SIRET"),
        ({"siret": "73282932000\u0660\u0667\u0664"}, "counterparty.siret", "INVALID_SIRET"),
        ({"siret": "35600000000048"}, "counterparty.siret", "INVALID_SIRET"),
        ({"vat_number": "FR45732829320"}, "counterparty.vat_number", "INVALID_VAT"),
        ({"vat_number": "DE-123456789"}, "counterparty.vat_number", "INVALID_VAT"),
        ({"vat_number": "A" * 21}, "counterparty.vat_number", "INVALID_VAT"),
        (
            {"siret": DANONE_HQ, "vat_number": OTHER_VAT},
            "counterparty.vat_number",
            "VAT_SIREN_MISMATCH",
        ),
    ],
    ids=[
        "no-name",
        "blank-name",
        "long-name",
        "siret-luhn",
        "siret-short",
        "siret-letter",
        "siret-arabic-indic",
        "la-poste-sum",
        "vat-key",
        "vat-dash",
        "vat-long",
        "vat-other-siren",
    ],
)
async def test_create_validation(
    stub: Stub,
    md: Metadata,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
    fields: Json,
    field: str,
    reason: str,
) -> None:
    request = pb.CreateCounterpartyRequest(
        counterparty=pb.Counterparty(**{"name": "Danone", **fields})
    )
    err = await invalid(stub.CreateCounterparty(request, metadata=md), field, reason)
    assert violations(err) == [field]
    assert await rows(admin, tenant) == []


async def test_duplicate_live_siret_is_already_exists(
    stub: Stub, md: Metadata, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    first = await create(stub, md, siret=DANONE_HQ)
    for spelled in (DANONE_HQ, "732 829 320 00074"):
        err = await fails(create(stub, md, name="Again", siret=spelled), Code.ALREADY_EXISTS)
        assert error_info(err).reason == "COUNTERPARTY_SIRET_TAKEN"
    # Another establishment of the same company, and counterparties without a SIRET, are fine.
    second = await create(stub, md, name="Danone Lyon", siret=DANONE_2)
    assert second.siren == first.siren == DANONE
    await create(stub, md, name="No SIRET 1")
    await create(stub, md, name="No SIRET 2")
    assert len(await rows(admin, tenant)) == 4


async def test_same_siret_in_another_tenant_is_fine(
    stub: Stub, md: Metadata, tokens: Tokens
) -> None:
    mine = await create(stub, md, siret=DANONE_HQ)
    theirs = await create(stub, tokens.md(uuid.uuid4()), siret=DANONE_HQ)
    assert theirs.id != mine.id and theirs.tenant_id != mine.tenant_id
    assert theirs.siret == mine.siret == DANONE_HQ


async def test_siret_is_free_again_after_soft_delete(stub: Stub, md: Metadata) -> None:
    old = await create(stub, md, siret=DANONE_HQ)
    deleted = await delete(stub, md, old.id)
    new = await create(stub, md, name="Danone again", siret=DANONE_HQ)
    assert new.id != old.id and new.siret == DANONE_HQ
    assert await get(stub, md, old.id) == deleted
    assert await list_ids(stub, md) == {new.id}
    assert await list_ids(stub, md, show_deleted=True) == {new.id, old.id}
    # Only one live row per SIRET: a third one is refused again.
    await fails(create(stub, md, siret=DANONE_HQ), Code.ALREADY_EXISTS)


async def test_ten_concurrent_creates_with_one_siret(
    stub: Stub, md: Metadata, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    results = await asyncio.gather(
        *(create(stub, md, name=f"Racer {i}", siret=DANONE_HQ) for i in range(10)),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, pb.Counterparty)]
    lost = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(won) == 1 and len(lost) == 9, results
    for err in lost:
        assert err.code() == Code.ALREADY_EXISTS, err
        assert error_info(err).reason == "COUNTERPARTY_SIRET_TAKEN"
    (row,) = await rows(admin, tenant)
    assert str(row["id"]) == won[0].id


async def test_create_with_a_request_id_is_idempotent(
    stub: Stub, md: Metadata, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    first = await create(stub, md, siret=DANONE_HQ, request_id="cp-1")
    again = await create(stub, md, siret=DANONE_HQ, request_id="cp-1")
    assert again == first
    assert len(await rows(admin, tenant)) == 1


async def test_an_invoice_takes_the_id_exactly_as_returned(
    stub: Stub, md: Metadata, invoices: Invoices
) -> None:
    created = await create(stub, md, siret=DANONE_HQ)
    invoice: ipb.Invoice = await invoices.CreateInvoice(
        ipb.CreateInvoiceRequest(invoice=sample_invoice(counterparty_id=created.id)), metadata=md
    )
    assert invoice.counterparty_id == created.id
    assert invoice.account_id == created.id  # a customer invoice
    assert (await get_invoice(invoices, md, invoice.id)).counterparty_id == created.id
    listed: ipb.ListInvoicesResponse = await invoices.ListInvoices(
        ipb.ListInvoicesRequest(filter=f'counterparty_id = "{created.id}"'), metadata=md
    )
    assert [i.id for i in listed.data] == [invoice.id]


# ---- GetCounterparty -----------------------------------------------------------------


async def test_get_includes_a_soft_deleted_counterparty(stub: Stub, md: Metadata) -> None:
    created = await create(stub, md, siret=DANONE_HQ)
    deleted = await delete(stub, md, created.id)
    got = await get(stub, md, created.id)
    assert got == deleted
    assert got.HasField("deleted_at") and got.siret == DANONE_HQ


async def test_get_unknown_is_not_found(stub: Stub, md: Metadata) -> None:
    err = await fails(get(stub, md, UNKNOWN_ID), Code.NOT_FOUND)
    info = error_info(err)
    assert info.reason == "COUNTERPARTY_NOT_FOUND"
    assert info.metadata["id"] == UNKNOWN_ID


MALFORMED = [
    "nope",
    "0190f3a1000070008000000000000000",
    "{0190f3a1-0000-7000-8000-000000000000}",
    f" {UNKNOWN_ID}",
    f"{UNKNOWN_ID}0",
    "0190f3a1-0000-7000-8000-00000000000g",
    "inv_01JD6N8Q6Z7T3M3Y5C4V8R2K1P",
]


@pytest.mark.parametrize("bad", MALFORMED)
async def test_malformed_ids_are_invalid_argument(stub: Stub, md: Metadata, bad: str) -> None:
    await invalid(get(stub, md, bad), "id")
    await invalid(delete(stub, md, bad), "id")
    await invalid(update(stub, md, bad, name="x"), "counterparty.id")


async def test_empty_id_is_required(stub: Stub, md: Metadata) -> None:
    await invalid(get(stub, md, ""), "id", "REQUIRED")
    await invalid(delete(stub, md, ""), "id", "REQUIRED")
    await invalid(update(stub, md, "", name="x"), "counterparty.id", "REQUIRED")


async def test_another_tenants_counterparty_is_indistinguishable_from_unknown(
    stub: Stub, md: Metadata, tokens: Tokens
) -> None:
    mine = await create(stub, md, siret=DANONE_HQ)
    intruder = tokens.md(uuid.uuid4())
    requests: list[tuple[str, Callable[[str], Message]]] = [
        ("GetCounterparty", lambda i: pb.GetCounterpartyRequest(id=i)),
        (
            "UpdateCounterparty",
            lambda i: pb.UpdateCounterpartyRequest(counterparty=pb.Counterparty(id=i, name="x")),
        ),
        ("DeleteCounterparty", lambda i: pb.DeleteCounterpartyRequest(id=i)),
        ("DeleteCounterparty", lambda i: pb.DeleteCounterpartyRequest(id=i, etag=mine.etag)),
    ]
    for name, make in requests:
        rpc = getattr(stub, name)
        theirs = await fails(rpc(make(mine.id), metadata=intruder), Code.NOT_FOUND)
        missing = await fails(rpc(make(UNKNOWN_ID), metadata=intruder), Code.NOT_FOUND)
        assert without(str(theirs.details()), mine.id) == without(
            str(missing.details()), UNKNOWN_ID
        )
        assert without(str(rich_status(theirs)), mine.id) == without(
            str(rich_status(missing)), UNKNOWN_ID
        )
        assert error_info(theirs).reason == error_info(missing).reason
    assert await get(stub, md, mine.id) == mine


# ---- UpdateCounterparty --------------------------------------------------------------


async def test_update_renames_with_a_mask(stub: Stub, md: Metadata) -> None:
    created = await create(stub, md, siret=DANONE_HQ, vat_number=DANONE_VAT, head_office=True)
    # The mask picks the name; the other populated fields are ignored.
    renamed = await update(
        stub, md, created.id, ("name",), name=" Danone France ", siret=DANONE_2, vat_number=""
    )
    assert renamed.name == "Danone France"
    assert (renamed.siret, renamed.siren, renamed.vat_number) == (DANONE_HQ, DANONE, DANONE_VAT)
    assert renamed.head_office is True
    assert renamed.etag != created.etag and ETAG.match(renamed.etag)
    assert renamed.created_at == created.created_at
    assert as_dt(renamed.updated_at) >= as_dt(created.updated_at)
    assert await get(stub, md, created.id) == renamed


async def test_update_without_a_mask_takes_the_populated_fields(stub: Stub, md: Metadata) -> None:
    created = await create(stub, md, siret=DANONE_HQ, vat_number=DANONE_VAT, head_office=True)
    renamed = await update(stub, md, created.id, name="Renamed")
    assert renamed.name == "Renamed"
    # Empty strings and false are not populated: they are left alone.
    assert (renamed.siret, renamed.vat_number, renamed.head_office) == (
        DANONE_HQ,
        DANONE_VAT,
        True,
    )


async def test_update_siret_and_the_siren_follows(
    stub: Stub, md: Metadata, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    created = await create(stub, md, siret=DANONE_HQ)
    moved = await update(
        stub, md, created.id, siret=" ".join(OTHER_HQ[i : i + 3] for i in (0, 3, 6, 9, 12))
    )
    assert (moved.siret, moved.siren) == (OTHER_HQ, OTHER)
    (row,) = await rows(admin, tenant)
    assert (row["siret"], row["siren"]) == (OTHER_HQ, OTHER)
    cleared = await update(stub, md, created.id, ("siret",), siret="")
    assert (cleared.siret, cleared.siren) == ("", "")
    (row,) = await rows(admin, tenant)
    assert (row["siret"], row["siren"]) == (None, None)


async def test_update_head_office_needs_the_mask_to_clear_it(stub: Stub, md: Metadata) -> None:
    created = await create(stub, md, siret=DANONE_HQ, head_office=True)
    cleared = await update(stub, md, created.id, ("head_office",), head_office=False)
    assert cleared.head_office is False
    again = await update(stub, md, created.id, head_office=True)
    assert again.head_office is True


async def test_update_star_mask_replaces_every_updatable_field(stub: Stub, md: Metadata) -> None:
    created = await create(stub, md, siret=DANONE_HQ, vat_number=DANONE_VAT, head_office=True)
    replaced = await update(stub, md, created.id, ("*",), name="Bare")
    assert (replaced.name, replaced.siret, replaced.siren, replaced.vat_number) == (
        "Bare",
        "",
        "",
        "",
    )
    assert replaced.head_office is False


async def test_update_vat_matching_the_stored_siret_is_accepted(stub: Stub, md: Metadata) -> None:
    created = await create(stub, md, siret=DANONE_HQ)
    updated = await update(stub, md, created.id, vat_number="fr 44 732 829 320")
    assert updated.vat_number == DANONE_VAT


async def test_update_vat_naming_another_siren_than_the_stored_siret_is_refused(
    stub: Stub, md: Metadata
) -> None:
    created = await create(stub, md, siret=DANONE_HQ)
    for paths in ((), ("vat_number",)):
        await invalid(
            update(stub, md, created.id, paths, vat_number=OTHER_VAT),
            "counterparty.vat_number",
            "VAT_SIREN_MISMATCH",
        )
    assert await get(stub, md, created.id) == created


async def test_update_siret_away_from_the_stored_french_vat_is_refused(
    stub: Stub, md: Metadata
) -> None:
    """The stored pair must stay consistent: a new SIRET of another company while the
    stored French VAT number names the old SIREN is the same mismatch as on create."""
    created = await create(stub, md, siret=DANONE_HQ, vat_number=DANONE_VAT)
    err = await fails(update(stub, md, created.id, siret=OTHER_HQ), Code.INVALID_ARGUMENT)
    assert error_info(err).reason == "VAT_SIREN_MISMATCH"
    assert await get(stub, md, created.id) == created


async def test_update_siret_and_vat_together_are_checked_together(stub: Stub, md: Metadata) -> None:
    created = await create(stub, md, siret=DANONE_HQ, vat_number=DANONE_VAT)
    await invalid(
        update(stub, md, created.id, siret=OTHER_HQ, vat_number=DANONE_VAT),
        "counterparty.vat_number",
        "VAT_SIREN_MISMATCH",
    )
    both = await update(stub, md, created.id, siret=OTHER_HQ, vat_number=OTHER_VAT)
    assert (both.siret, both.siren, both.vat_number) == (OTHER_HQ, OTHER, OTHER_VAT)


@pytest.mark.parametrize(
    ("paths", "fields", "field", "reason"),
    [
        ((), {"siret": BAD_SIRET}, "counterparty.siret", "INVALID_SIRET"),
        ((), {"vat_number": "FR45732829320"}, "counterparty.vat_number", "INVALID_VAT"),
        (("name",), {"name": ""}, "counterparty.name", "REQUIRED"),
        ((), {"name": "x" * 201}, "counterparty.name", "TOO_LONG"),
        (("nickname",), {"name": "x"}, "update_mask", "INVALID_UPDATE_MASK"),
        (("siren",), {"siren": OTHER}, "update_mask", "INVALID_UPDATE_MASK"),
        (("name", "etag"), {"name": "x"}, "update_mask", "INVALID_UPDATE_MASK"),
        (("id",), {"name": "x"}, "update_mask", "INVALID_UPDATE_MASK"),
    ],
    ids=["siret", "vat", "empty-name", "long-name", "unknown", "siren", "etag", "id"],
)
async def test_update_validation(
    stub: Stub,
    md: Metadata,
    paths: tuple[str, ...],
    fields: Json,
    field: str,
    reason: str,
) -> None:
    created = await create(stub, md, siret=DANONE_HQ)
    await invalid(update(stub, md, created.id, paths, **fields), field, reason)
    assert await get(stub, md, created.id) == created


async def test_update_with_a_stale_etag_is_aborted(stub: Stub, md: Metadata) -> None:
    created = await create(stub, md, siret=DANONE_HQ)
    current = await update(stub, md, created.id, name="One", etag=created.etag)
    err = await fails(update(stub, md, created.id, name="Two", etag=created.etag), Code.ABORTED)
    info = error_info(err)
    assert info.reason == "ETAG_MISMATCH"
    assert info.metadata["etag"] == current.etag
    assert await get(stub, md, created.id) == current
    fresh = await update(stub, md, created.id, name="Two", etag=current.etag)
    assert fresh.name == "Two" and fresh.etag != current.etag


async def test_update_of_a_deleted_or_unknown_one_is_not_found(stub: Stub, md: Metadata) -> None:
    created = await create(stub, md, siret=DANONE_HQ)
    deleted = await delete(stub, md, created.id)
    err = await fails(update(stub, md, created.id, name="Back"), Code.NOT_FOUND)
    assert error_info(err).reason == "COUNTERPARTY_NOT_FOUND"
    await fails(update(stub, md, UNKNOWN_ID, name="Back"), Code.NOT_FOUND)
    assert await get(stub, md, created.id) == deleted


async def test_update_to_a_siret_taken_by_another_is_already_exists(
    stub: Stub, md: Metadata
) -> None:
    first = await create(stub, md, siret=DANONE_HQ)
    second = await create(stub, md, name="Lyon", siret=DANONE_2)
    err = await fails(update(stub, md, second.id, siret=DANONE_HQ), Code.ALREADY_EXISTS)
    assert error_info(err).reason == "COUNTERPARTY_SIRET_TAKEN"
    assert await get(stub, md, second.id) == second
    # Its own SIRET is no conflict; a deleted one's SIRET is free.
    same = await update(stub, md, first.id, siret="732 829 320 00074")
    assert same.siret == DANONE_HQ
    await delete(stub, md, first.id)
    taken_over = await update(stub, md, second.id, siret=DANONE_HQ)
    assert taken_over.siret == DANONE_HQ


# ---- DeleteCounterparty --------------------------------------------------------------


async def test_delete_returns_the_row_with_deleted_at(stub: Stub, md: Metadata) -> None:
    created = await create(stub, md, siret=DANONE_HQ, vat_number=DANONE_VAT)
    deleted = await delete(stub, md, created.id, etag=created.etag)
    assert deleted.HasField("deleted_at")
    assert as_dt(deleted.deleted_at) >= as_dt(created.created_at)
    assert (deleted.id, deleted.name, deleted.siret, deleted.vat_number) == (
        created.id,
        created.name,
        created.siret,
        created.vat_number,
    )
    assert deleted.etag != created.etag
    assert await get(stub, md, created.id) == deleted
    err = await fails(delete(stub, md, created.id), Code.NOT_FOUND)
    assert error_info(err).reason == "COUNTERPARTY_NOT_FOUND"
    assert await list_ids(stub, md) == set()


async def test_delete_with_a_stale_etag_is_aborted(stub: Stub, md: Metadata) -> None:
    created = await create(stub, md, siret=DANONE_HQ)
    renamed = await update(stub, md, created.id, name="Renamed")
    err = await fails(delete(stub, md, created.id, etag=created.etag), Code.ABORTED)
    assert error_info(err).reason == "ETAG_MISMATCH"
    assert not (await get(stub, md, created.id)).HasField("deleted_at")
    deleted = await delete(stub, md, created.id, etag=renamed.etag)
    assert deleted.HasField("deleted_at")


async def test_delete_unknown_is_not_found(stub: Stub, md: Metadata) -> None:
    await fails(delete(stub, md, UNKNOWN_ID), Code.NOT_FOUND)


# ---- ListCounterparties ----------------------------------------------------------------


async def population(stub: Stub, md: Metadata) -> dict[str, pb.Counterparty]:
    """Two Danone establishments (one head office), another company, one without SIRET,
    and a deleted third Danone establishment."""
    made = {
        "hq": await create(stub, md, name="Papeterie Dupont", siret=DANONE_HQ, head_office=True),
        "lyon": await create(stub, md, name="Papeterie Dupont Lyon", siret=DANONE_2),
        "other": await create(
            stub, md, name="Imprimerie Martin", siret=OTHER_HQ, vat_number=OTHER_VAT
        ),
        "bare": await create(stub, md, name="Acme"),
        "gone": await create(stub, md, name="Papyrus", siret=DANONE_3),
    }
    await delete(stub, md, made["gone"].id)
    return made


@pytest.mark.parametrize(
    ("text", "expected", "show_deleted"),
    [
        (f'siren = "{DANONE}"', {"hq", "lyon"}, False),
        (f'siren = "{DANONE}"', {"hq", "lyon", "gone"}, True),
        ("head_office = true", {"hq"}, False),
        ("head_office = false", {"lyon", "other", "bare"}, False),
        ('name = "Pap*"', {"hq", "lyon"}, False),
        ('name = "Pap*"', {"hq", "lyon", "gone"}, True),
        ('name = "Papeterie Dupont"', {"hq"}, False),
        (f'siret = "{OTHER_HQ}"', {"other"}, False),
        (f'vat_number = "{OTHER_VAT}"', {"other"}, False),
        (f'siren = "{DANONE}" AND head_office = false', {"lyon"}, False),
        ('siren = "356000000"', set(), False),
    ],
    ids=[
        "siren",
        "siren-deleted",
        "head-office",
        "not-head-office",
        "name-prefix",
        "name-prefix-deleted",
        "name-exact",
        "siret",
        "vat",
        "and",
        "no-match",
    ],
)
async def test_list_filters(
    stub: Stub, md: Metadata, text: str, expected: set[str], show_deleted: bool
) -> None:
    made = await population(stub, md)
    found = await list_ids(stub, md, filter=text, show_deleted=show_deleted)
    assert found == {made[k].id for k in expected}


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"filter": 'nickname = "x"'}, "filter", "UNKNOWN_FILTER_FIELD"),
        ({"filter": 'tenant_id = "x"'}, "filter", "UNKNOWN_FILTER_FIELD"),
        ({"filter": 'siren = "'}, "filter", None),
        ({"filter": 'head_office = "maybe"'}, "filter", None),
        ({"order_by": "vat_number"}, "order_by", None),
        ({"direction": "sideways"}, "direction", None),
        ({"limit": -1}, "limit", None),
        ({"cursor": "not-a-cursor"}, "cursor", None),
    ],
    ids=[
        "unknown-field",
        "tenant-field",
        "syntax",
        "bool-value",
        "order-by",
        "direction",
        "negative-limit",
        "cursor",
    ],
)
async def test_list_validation(
    stub: Stub, md: Metadata, fields: Json, field: str, reason: str | None
) -> None:
    await invalid(listing(stub, md, **fields), field, reason)


@pytest.mark.parametrize("direction", ["asc", "desc"])
async def test_list_order_by_name_with_limit_one_pages(
    stub: Stub, md: Metadata, direction: str
) -> None:
    made = await population(stub, md)
    items = await walk(stub, md, order_by="name", direction=direction)
    names = sorted((c.name for k, c in made.items() if k != "gone"), reverse=direction == "desc")
    assert [c.name for c in items] == names
    first = await listing(
        stub, md, limit=1, order_by="name", direction=direction, include_total=True
    )
    assert first.total == 4 and first.next_cursor


async def test_list_order_by_siret_puts_missing_ones_last(stub: Stub, md: Metadata) -> None:
    made = await population(stub, md)
    live = [c for k, c in made.items() if k != "gone"]
    ascending = await walk(stub, md, order_by="siret", direction="asc")
    assert [c.siret for c in ascending] == [*sorted(c.siret for c in live if c.siret), ""]
    descending = await walk(stub, md, order_by="siret", direction="desc")
    assert sorted(c.id for c in descending) == sorted(c.id for c in live)
    with_siret = [c.siret for c in descending if c.siret]
    assert with_siret == sorted(with_siret, reverse=True)
    every = await walk(stub, md, order_by="siret", direction="asc", show_deleted=True)
    assert sorted(c.id for c in every) == sorted(c.id for c in made.values())


async def test_list_default_order_is_newest_first(stub: Stub, md: Metadata) -> None:
    made = await population(stub, md)
    page = await listing(stub, md)
    assert [c.id for c in page.data] == [made[k].id for k in ("bare", "other", "lyon", "hq")]


async def test_list_show_deleted_and_include_total(stub: Stub, md: Metadata) -> None:
    made = await population(stub, md)
    plain = await listing(stub, md)
    assert not plain.HasField("total")
    assert made["gone"].id not in {c.id for c in plain.data}
    counted = await listing(stub, md, include_total=True, limit=2)
    assert counted.total == 4 and len(counted.data) == 2 and counted.next_cursor
    everything = await listing(stub, md, include_total=True, show_deleted=True)
    assert everything.total == 5
    gone = next(c for c in everything.data if c.id == made["gone"].id)
    assert gone.HasField("deleted_at")
    filtered = await listing(stub, md, include_total=True, filter='name = "Pap*"')
    assert filtered.total == 2


async def test_list_cursor_is_bound_to_its_query(stub: Stub, md: Metadata) -> None:
    await population(stub, md)
    first = await listing(stub, md, limit=1, order_by="name")
    assert first.next_cursor
    await invalid(listing(stub, md, limit=1, cursor=first.next_cursor, order_by="siret"), "cursor")


async def test_list_is_tenant_isolated(stub: Stub, md: Metadata, tokens: Tokens) -> None:
    made = await population(stub, md)
    other = tokens.md(uuid.uuid4())
    assert await list_ids(stub, other) == set()
    assert await list_ids(stub, other, show_deleted=True, filter=f'siren = "{DANONE}"') == set()
    theirs = await create(stub, other, name="Papeterie Dupont", siret=DANONE_HQ)
    assert await list_ids(stub, other, filter='name = "Pap*"') == {theirs.id}
    mine = await list_ids(stub, md, show_deleted=True)
    assert mine == {c.id for c in made.values()}
    assert (await listing(stub, other, include_total=True)).total == 1


# ---- permissions -------------------------------------------------------------------------


async def test_read_only_token_cannot_write(
    stub: Stub, md: Metadata, tokens: Tokens, tenant: uuid.UUID
) -> None:
    created = await create(stub, md, siret=DANONE_HQ)
    reader = tokens.md(tenant, permissions=["counterparties.read"])
    assert await get(stub, reader, created.id) == created
    assert await list_ids(stub, reader) == {created.id}
    for call in (
        create(stub, reader, name="Nope", siret=DANONE_2),
        update(stub, reader, created.id, name="Nope"),
        delete(stub, reader, created.id),
    ):
        await fails(call, Code.PERMISSION_DENIED)
    assert await list_ids(stub, md, show_deleted=True) == {created.id}
    assert await get(stub, md, created.id) == created


async def test_write_only_or_no_permission_cannot_read(
    stub: Stub, md: Metadata, tokens: Tokens, tenant: uuid.UUID
) -> None:
    created = await create(stub, md)
    for permissions in (["counterparties.write"], ["invoices.read", "invoices.write"], []):
        token = tokens.md(tenant, permissions=permissions)
        await fails(get(stub, token, created.id), Code.PERMISSION_DENIED)
        await fails(listing(stub, token), Code.PERMISSION_DENIED)
    await fails(create(stub, tokens.md(tenant, permissions=[])), Code.PERMISSION_DENIED)


async def test_no_or_bad_token_is_unauthenticated(stub: Stub, md: Metadata) -> None:
    created = await create(stub, md)
    for metadata in [(), (("authorization", "Bearer not-a-jwt"),)]:
        await fails(listing(stub, metadata), Code.UNAUTHENTICATED)
        await fails(get(stub, metadata, created.id), Code.UNAUTHENTICATED)
        await fails(create(stub, metadata), Code.UNAUTHENTICATED)
        await fails(update(stub, metadata, created.id, name="x"), Code.UNAUTHENTICATED)
        await fails(delete(stub, metadata, created.id), Code.UNAUTHENTICATED)
    assert await get(stub, md, created.id) == created


# ---- REST --------------------------------------------------------------------------------


async def test_rest_create_is_201_with_location(
    http: httpx.AsyncClient, auth: dict[str, str], tenant: uuid.UUID
) -> None:
    created = await http.post(
        "/v1/counterparties",
        json={
            "name": "Danone SA",
            "siret": "732 829 320 00074",
            "vatNumber": "fr 44 732829320",
            "headOffice": True,
            "siren": OTHER,
        },
        headers=auth,
    )
    assert created.status_code == 201, created.text
    data: Json = created.json()
    assert UUID.match(data["id"]), data
    assert data["tenant_id"] == str(tenant)
    assert (data["siret"], data["siren"], data["vat_number"]) == (DANONE_HQ, DANONE, DANONE_VAT)
    assert data["head_office"] is True and data["name"] == "Danone SA"
    assert not data.get("deleted_at")
    assert created.headers["location"] == f"/v1/counterparties/{data['id']}"
    assert created.headers["etag"] == data["etag"]
    got = await http.get(created.headers["location"], headers=auth)
    assert got.status_code == 200 and got.json() == data
    snake = await http.post(
        "/v1/counterparties",
        json={"name": "Lyon", "siret": DANONE_2, "vat_number": "FR44 732829320"},
        headers=auth,
    )
    assert snake.status_code == 201, snake.text
    assert snake.json()["vat_number"] == DANONE_VAT and snake.json()["head_office"] is False


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({}, "counterparty.name", "REQUIRED"),
        ({"name": "  "}, "counterparty.name", "REQUIRED"),
        ({"name": "x", "siret": BAD_SIRET}, "counterparty.siret", "INVALID_SIRET"),
        ({"name": "x", "vatNumber": "FR45732829320"}, "counterparty.vat_number", "INVALID_VAT"),
        (
            {"name": "x", "siret": DANONE_HQ, "vatNumber": OTHER_VAT},
            "counterparty.vat_number",
            "VAT_SIREN_MISMATCH",
        ),
    ],
    ids=["no-name", "blank-name", "siret", "vat", "vat-siren"],
)
async def test_rest_create_errors_are_400(
    http: httpx.AsyncClient, auth: dict[str, str], body: Json, field: str, reason: str
) -> None:
    response = await http.post("/v1/counterparties", json=body, headers=auth)
    error = assert_rest_error(response, 400, "INVALID_ARGUMENT", reason)
    assert field in rest_fields(error), error


async def test_rest_duplicate_siret_is_409(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    first = await http.post(
        "/v1/counterparties", json={"name": "A", "siret": DANONE_HQ}, headers=auth
    )
    assert first.status_code == 201, first.text
    again = await http.post(
        "/v1/counterparties", json={"name": "B", "siret": "732 829 320 00074"}, headers=auth
    )
    assert_rest_error(again, 409, "ALREADY_EXISTS", "COUNTERPARTY_SIRET_TAKEN")


async def test_rest_get_errors(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    unknown = await http.get(f"/v1/counterparties/{UNKNOWN_ID}", headers=auth)
    assert_rest_error(unknown, 404, "NOT_FOUND", "COUNTERPARTY_NOT_FOUND")
    malformed = await http.get("/v1/counterparties/not-a-uuid", headers=auth)
    body = assert_rest_error(malformed, 400, "INVALID_ARGUMENT")
    assert "id" in rest_fields(body)


async def test_rest_patch_and_conditionals(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    created = await http.post(
        "/v1/counterparties",
        json={"name": "Danone", "siret": DANONE_HQ, "headOffice": True},
        headers=auth,
    )
    view: Json = created.json()
    path = f"/v1/counterparties/{view['id']}"

    renamed = await http.patch(path, json={"name": "Danone SA"}, headers=auth)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Danone SA"
    assert renamed.json()["siret"] == DANONE_HQ and renamed.json()["head_office"] is True
    assert renamed.headers["etag"] == renamed.json()["etag"] != view["etag"]

    # Over REST the body's keys are the mask: false clears the head-office flag.
    moved = await http.patch(path, json={"siret": OTHER_HQ, "headOffice": False}, headers=auth)
    assert moved.status_code == 200, moved.text
    assert (moved.json()["siret"], moved.json()["siren"]) == (OTHER_HQ, OTHER)
    assert moved.json()["head_office"] is False and moved.json()["name"] == "Danone SA"

    stale_header = await http.patch(
        path, json={"name": "Stale"}, headers={**auth, "If-Match": view["etag"]}
    )
    assert_rest_error(stale_header, 412, "ABORTED", "ETAG_MISMATCH")
    stale_body = await http.patch(path, json={"name": "Stale", "etag": view["etag"]}, headers=auth)
    assert_rest_error(stale_body, 409, "ABORTED", "ETAG_MISMATCH")
    fresh = await http.patch(
        path, json={"name": "Fresh"}, headers={**auth, "If-Match": moved.json()["etag"]}
    )
    assert fresh.status_code == 200 and fresh.json()["name"] == "Fresh"

    # The mask is a query parameter (the body is the counterparty).
    bad_mask = await http.patch(
        path, params={"update_mask": "siren"}, json={"name": "x"}, headers=auth
    )
    body = assert_rest_error(bad_mask, 400, "INVALID_ARGUMENT", "INVALID_UPDATE_MASK")
    assert "update_mask" in rest_fields(body)
    bad_siret = await http.patch(path, json={"siret": BAD_SIRET}, headers=auth)
    assert_rest_error(bad_siret, 400, "INVALID_ARGUMENT", "INVALID_SIRET")

    other = await http.post(
        "/v1/counterparties", json={"name": "Other", "siret": DANONE_2}, headers=auth
    )
    taken = await http.patch(
        f"/v1/counterparties/{other.json()['id']}", json={"siret": OTHER_HQ}, headers=auth
    )
    assert_rest_error(taken, 409, "ALREADY_EXISTS", "COUNTERPARTY_SIRET_TAKEN")
    assert (await http.get(path, headers=auth)).json()["name"] == "Fresh"


async def test_rest_delete_returns_the_row_then_404(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    created = await http.post(
        "/v1/counterparties", json={"name": "Gone", "siret": DANONE_HQ}, headers=auth
    )
    view: Json = created.json()
    path = f"/v1/counterparties/{view['id']}"
    renamed = await http.patch(path, json={"name": "Going"}, headers=auth)
    stale = await http.delete(path, headers={**auth, "If-Match": view["etag"]})
    assert_rest_error(stale, 412, "ABORTED", "ETAG_MISMATCH")
    deleted = await http.delete(path, headers={**auth, "If-Match": renamed.json()["etag"]})
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["deleted_at"] and deleted.json()["id"] == view["id"]
    assert_rest_error(await http.delete(path, headers=auth), 404, "NOT_FOUND")
    assert_rest_error(await http.patch(path, json={"name": "x"}, headers=auth), 404, "NOT_FOUND")
    got = await http.get(path, headers=auth)
    assert got.status_code == 200 and got.json() == deleted.json()
    reused = await http.post(
        "/v1/counterparties", json={"name": "New", "siret": DANONE_HQ}, headers=auth
    )
    assert reused.status_code == 201, reused.text


async def test_rest_list(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    for body in (
        {"name": "Papeterie Dupont", "siret": DANONE_HQ, "headOffice": True},
        {"name": "Papeterie Dupont Lyon", "siret": DANONE_2},
        {"name": "Imprimerie Martin", "siret": OTHER_HQ},
    ):
        assert (await http.post("/v1/counterparties", json=body, headers=auth)).status_code == 201
    listed = await http.get(
        "/v1/counterparties",
        params={
            "filter": f'siren = "{DANONE}"',
            "order_by": "name",
            "direction": "asc",
            "include_total": "true",
        },
        headers=auth,
    )
    assert listed.status_code == 200, listed.text
    data: Json = listed.json()
    assert [c["name"] for c in data["data"]] == ["Papeterie Dupont", "Papeterie Dupont Lyon"]
    assert data["total"] == 2 and data["next_cursor"] == ""
    heads = await http.get("/v1/counterparties?filter=head_office%20%3D%20true", headers=auth)
    assert [c["siret"] for c in heads.json()["data"]] == [DANONE_HQ]
    paged = await http.get(
        "/v1/counterparties",
        params={"limit": "1", "order_by": "siret", "direction": "asc"},
        headers=auth,
    )
    cursor = paged.json()["next_cursor"]
    assert cursor and [c["siret"] for c in paged.json()["data"]] == [OTHER_HQ]
    second = await http.get(
        "/v1/counterparties",
        params={"limit": "1", "order_by": "siret", "direction": "asc", "cursor": cursor},
        headers=auth,
    )
    assert [c["siret"] for c in second.json()["data"]] == [DANONE_2]
    unknown = await http.get(
        "/v1/counterparties", params={"filter": 'nickname = "x"'}, headers=auth
    )
    assert_rest_error(unknown, 400, "INVALID_ARGUMENT", "UNKNOWN_FILTER_FIELD")


async def test_rest_permissions(
    http: httpx.AsyncClient, auth: dict[str, str], tokens: Tokens, tenant: uuid.UUID
) -> None:
    created = await http.post(
        "/v1/counterparties", json={"name": "Mine", "siret": DANONE_HQ}, headers=auth
    )
    path = f"/v1/counterparties/{created.json()['id']}"
    reader = {
        "Authorization": f"Bearer {tokens.token(tenant, permissions=['counterparties.read'])}"
    }
    assert (await http.get(path, headers=reader)).status_code == 200
    assert (await http.get("/v1/counterparties", headers=reader)).status_code == 200
    for response in (
        await http.post("/v1/counterparties", json={"name": "x"}, headers=reader),
        await http.patch(path, json={"name": "x"}, headers=reader),
        await http.delete(path, headers=reader),
    ):
        assert_rest_error(response, 403, "PERMISSION_DENIED")
    for response in (
        await http.get(path),
        await http.get("/v1/counterparties"),
        await http.post("/v1/counterparties", json={"name": "x"}),
        await http.patch(path, json={"name": "x"}),
        await http.delete(path),
    ):
        assert_rest_error(response, 401, "UNAUTHENTICATED")
    assert (await http.get(path, headers=auth)).json() == created.json()
