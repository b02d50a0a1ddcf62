"""Tenant isolation (DESIGN.md section 4, reliability notes section 4).

(a) IDOR: another tenant's id is NOT_FOUND with the very bytes of an unknown id, and
    nothing of the owner's row changes.
(b) Row-level security as the app role on a raw connection: no tenant -> no rows and no
    writes; a transaction-local tenant sees only its rows and does not outlive the
    transaction.
(c) Catalog audit: RLS ENABLE + FORCE with a fail-closed policy on every tenant table,
    a non-privileged non-owner app role, every unique key led by tenant_id.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf import field_mask_pb2
from grpc_status import rpc_status
from invoicing.v1 import invoices_pb2

from service import registry
from service.kit import ids
from tests.conftest import APP_ROLE, Database, Tokens, count_invoices, sample_invoice

POLICY_PREDICATE = "NULLIF(current_setting('app.tenant_id'"
INSUFFICIENT_PRIVILEGE = "42501"

Call = Callable[[Any, str, Any], Awaitable[Any]]


async def _create(invoices: Any, md: Any, **overrides: Any) -> invoices_pb2.Invoice:
    return await invoices.CreateInvoice(
        invoices_pb2.CreateInvoiceRequest(invoice=sample_invoice(**overrides)), metadata=md
    )


async def _checksum(admin: asyncpg.Connection, tenant: uuid.UUID) -> str:
    value = await admin.fetchval(
        "SELECT md5(coalesce(string_agg(i::text, '|' ORDER BY i.id), ''))"
        " FROM invoices i WHERE tenant_id = $1",
        tenant,
    )
    return str(value)


def _calls() -> dict[str, Call]:
    mask = field_mask_pb2.FieldMask(paths=["notes"])

    async def get(stub: Any, invoice_id: str, md: Any) -> Any:
        return await stub.GetInvoice(invoices_pb2.GetInvoiceRequest(id=invoice_id), metadata=md)

    async def update(stub: Any, invoice_id: str, md: Any) -> Any:
        invoice = invoices_pb2.Invoice(id=invoice_id, notes="hijacked")
        return await stub.UpdateInvoice(
            invoices_pb2.UpdateInvoiceRequest(invoice=invoice, update_mask=mask), metadata=md
        )

    async def delete(stub: Any, invoice_id: str, md: Any) -> Any:
        return await stub.DeleteInvoice(
            invoices_pb2.DeleteInvoiceRequest(id=invoice_id), metadata=md
        )

    async def issue(stub: Any, invoice_id: str, md: Any) -> Any:
        return await stub.IssueInvoice(invoices_pb2.IssueInvoiceRequest(id=invoice_id), metadata=md)

    async def void(stub: Any, invoice_id: str, md: Any) -> Any:
        return await stub.VoidInvoice(
            invoices_pb2.VoidInvoiceRequest(id=invoice_id, reason="nope"), metadata=md
        )

    async def undelete(stub: Any, invoice_id: str, md: Any) -> Any:
        return await stub.UndeleteInvoice(
            invoices_pb2.UndeleteInvoiceRequest(id=invoice_id), metadata=md
        )

    return {
        "GetInvoice": get,
        "UpdateInvoice": update,
        "DeleteInvoice": delete,
        "IssueInvoice": issue,
        "VoidInvoice": void,
        "UndeleteInvoice": undelete,
    }


CALLS = _calls()


async def _error(call: Call, stub: Any, invoice_id: str, md: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(stub, invoice_id, md)
    return caught.value


@pytest.fixture
async def tenant_a_invoices(
    invoices: Any, tokens: Tokens, tenant: uuid.UUID
) -> dict[str, invoices_pb2.Invoice]:
    """Tenant A's draft, issued and deleted invoices."""
    md = tokens.md(tenant)
    draft = await _create(invoices, md)
    issued = await _create(invoices, md)
    issued = await invoices.IssueInvoice(
        invoices_pb2.IssueInvoiceRequest(id=issued.id), metadata=md
    )
    deleted = await _create(invoices, md)
    deleted = await invoices.DeleteInvoice(
        invoices_pb2.DeleteInvoiceRequest(id=deleted.id), metadata=md
    )
    return {"draft": draft, "issued": issued, "deleted": deleted}


# ---- (a) IDOR matrix ----------------------------------------------------------------------


@pytest.mark.parametrize("method", sorted(CALLS))
async def test_other_tenant_id_is_not_found_identical_to_stranger(
    invoices: Any,
    tokens: Tokens,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
    tenant_a_invoices: dict[str, invoices_pb2.Invoice],
    method: str,
) -> None:
    call = CALLS[method]
    tenant_b, tenant_c = uuid.uuid4(), uuid.uuid4()
    await _create(invoices, tokens.md(tenant_b))  # B has invoices of its own
    before = await _checksum(admin, tenant)

    for state, invoice in tenant_a_invoices.items():
        as_b = await _error(call, invoices, invoice.id, tokens.md(tenant_b))
        as_c = await _error(call, invoices, invoice.id, tokens.md(tenant_c))
        assert as_b.code() == grpc.StatusCode.NOT_FOUND, (state, as_b.code(), as_b.details())
        assert as_c.code() == grpc.StatusCode.NOT_FOUND, (state, as_c.code(), as_c.details())
        status_b, status_c = rpc_status.from_call(as_b), rpc_status.from_call(as_c)
        assert status_b is not None and status_c is not None
        assert status_b.SerializeToString() == status_c.SerializeToString(), state
        assert as_b.details() == as_c.details()
        assert str(tenant) not in as_b.details()

    assert await _checksum(admin, tenant) == before
    assert await count_invoices(admin, tenant_c) == 0


async def test_owner_still_sees_own_invoices_after_foreign_attempts(
    invoices: Any,
    tokens: Tokens,
    tenant: uuid.UUID,
    tenant_a_invoices: dict[str, invoices_pb2.Invoice],
) -> None:
    stranger = tokens.md(uuid.uuid4())
    for call in CALLS.values():
        await _error(call, invoices, tenant_a_invoices["draft"].id, stranger)
    got = await invoices.GetInvoice(
        invoices_pb2.GetInvoiceRequest(id=tenant_a_invoices["draft"].id),
        metadata=tokens.md(tenant),
    )
    assert got.status == invoices_pb2.INVOICE_STATUS_DRAFT
    assert got.notes == ""
    assert not got.is_deleted


async def test_list_returns_only_callers_invoices(
    invoices: Any, tokens: Tokens, tenant: uuid.UUID
) -> None:
    other = uuid.uuid4()
    mine = {(await _create(invoices, tokens.md(tenant))).id for _ in range(3)}
    await _create(invoices, tokens.md(other))
    page = await invoices.ListInvoices(
        invoices_pb2.ListInvoicesRequest(limit=200, include_total=True, show_deleted=True),
        metadata=tokens.md(tenant),
    )
    assert {item.id for item in page.data} == mine
    assert page.total == 3
    assert {item.tenant_id for item in page.data} == {str(tenant)}


# ---- (b) RLS as the app role on a raw connection ---------------------------------------


@pytest.fixture
async def app_conn(database: Database) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database.app_url)
    yield conn
    await conn.close()


_INSERT = (
    "INSERT INTO invoices (tenant_id, id, type, direction, currency, subtotal, tax_amount,"
    " discount_amount, total, created_by, updated_by)"
    " VALUES ($1, $2, 'customer', 'receivable', 'EUR', 0, 0, 0, 0, 'rls-test', 'rls-test')"
)


async def test_app_role_without_tenant_sees_no_rows(
    invoices: Any, md: Any, admin: asyncpg.Connection, app_conn: asyncpg.Connection
) -> None:
    await _create(invoices, md)
    assert await admin.fetchval("SELECT count(*) FROM invoices") > 0
    assert await app_conn.fetchval("SELECT current_user") == APP_ROLE
    assert await app_conn.fetchval("SELECT count(*) FROM invoices") == 0
    assert await app_conn.fetchval("SELECT count(*) FROM invoice_number_counters") == 0
    assert await app_conn.fetchval("SELECT count(*) FROM idempotency_keys") == 0


async def test_app_role_without_tenant_cannot_write(
    invoices: Any,
    md: Any,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
    app_conn: asyncpg.Connection,
) -> None:
    existing = await _create(invoices, md)
    before = await _checksum(admin, tenant)
    for target in (tenant, uuid.uuid4()):
        with pytest.raises(asyncpg.PostgresError) as caught:
            await app_conn.execute(_INSERT, target, uuid.uuid4())
        assert caught.value.sqlstate == INSUFFICIENT_PRIVILEGE
    assert await app_conn.execute("UPDATE invoices SET notes = 'x'") == "UPDATE 0"
    assert await app_conn.execute("DELETE FROM invoices") == "DELETE 0"
    assert await _checksum(admin, tenant) == before
    assert existing.id


async def test_app_role_with_local_tenant_sees_only_that_tenant(
    invoices: Any,
    tokens: Tokens,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
    app_conn: asyncpg.Connection,
) -> None:
    other = uuid.uuid4()
    for _ in range(2):
        await _create(invoices, tokens.md(tenant))
    await _create(invoices, tokens.md(other))

    async with app_conn.transaction():
        await app_conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant))
        rows = await app_conn.fetch("SELECT tenant_id FROM invoices")
        assert len(rows) == 2
        assert {r["tenant_id"] for r in rows} == {tenant}
        # WITH CHECK: a row for another tenant cannot be written, even with a tenant set.
        with pytest.raises(asyncpg.PostgresError) as caught:
            async with app_conn.transaction():  # savepoint
                await app_conn.execute(_INSERT, other, uuid.uuid4())
        assert caught.value.sqlstate == INSUFFICIENT_PRIVILEGE
        assert await app_conn.execute(
            "UPDATE invoices SET notes = notes WHERE tenant_id = $1", other
        ) == ("UPDATE 0")

    # The setting was transaction-local: now it is '' (not NULL) and must fail closed.
    assert await app_conn.fetchval("SELECT current_setting('app.tenant_id', true)") == ""
    assert await app_conn.fetchval("SELECT count(*) FROM invoices") == 0
    assert await count_invoices(admin, other) == 1


async def test_app_role_rolled_back_tenant_does_not_leak(
    invoices: Any, md: Any, tenant: uuid.UUID, app_conn: asyncpg.Connection
) -> None:
    await _create(invoices, md)
    tx = app_conn.transaction()
    await tx.start()
    await app_conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant))
    assert await app_conn.fetchval("SELECT count(*) FROM invoices") == 1
    await tx.rollback()
    assert await app_conn.fetchval("SELECT count(*) FROM invoices") == 0


async def test_app_role_with_local_tenant_can_insert_own_row(
    tenant: uuid.UUID, admin: asyncpg.Connection, app_conn: asyncpg.Connection
) -> None:
    row_id = uuid.uuid4()
    async with app_conn.transaction():
        await app_conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant))
        await app_conn.execute(_INSERT, tenant, row_id)
    assert await admin.fetchval("SELECT tenant_id FROM invoices WHERE id = $1", row_id) == tenant


# ---- (c) catalog audit ---------------------------------------------------------------------


# Tables outside tenant RLS on purpose, declared with info={"system": True}: the work queue
# (ids and scheduling state, which the worker must see across tenants) and the connection
# routes (connection id -> tenant id, for webhooks, which come without a token).
SYSTEM_TABLES = sorted(
    name for name, table in registry.metadata().tables.items() if table.info.get("system")
)


def test_system_tables_are_only_the_work_queue_and_the_connection_routes() -> None:
    assert SYSTEM_TABLES == ["connection_routes", "work_items"]


async def _tenant_tables(admin: asyncpg.Connection) -> list[asyncpg.Record]:
    return await admin.fetch(
        """
        SELECT c.oid, c.relname, c.relrowsecurity, c.relforcerowsecurity
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
          AND EXISTS (SELECT 1 FROM pg_attribute a
                      WHERE a.attrelid = c.oid AND a.attname = 'tenant_id'
                        AND NOT a.attisdropped)
          AND NOT (c.relname = ANY($1::text[]))
        ORDER BY c.relname
        """,
        SYSTEM_TABLES,
    )


async def test_catalog_every_tenant_table_forces_rls(admin: asyncpg.Connection) -> None:
    tables = await _tenant_tables(admin)
    names = {t["relname"] for t in tables}
    assert {"invoices", "invoice_number_counters", "idempotency_keys"} <= names
    bad = [t["relname"] for t in tables if not (t["relrowsecurity"] and t["relforcerowsecurity"])]
    assert bad == []


async def test_catalog_every_table_has_tenant_id(admin: asyncpg.Connection) -> None:
    rows = await admin.fetch(
        """
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
          AND c.relname <> 'alembic_version'
          AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                          WHERE a.attrelid = c.oid AND a.attname = 'tenant_id'
                            AND NOT a.attisdropped)
        """
    )
    assert [r["relname"] for r in rows] == []


async def test_catalog_every_tenant_table_has_fail_closed_policy(
    admin: asyncpg.Connection,
) -> None:
    problems = []
    for table in await _tenant_tables(admin):
        policies = await admin.fetch(
            "SELECT policyname, permissive, cmd, qual, with_check FROM pg_policies"
            " WHERE schemaname = 'public' AND tablename = $1",
            table["relname"],
        )
        if not policies:
            problems.append((table["relname"], "no policy"))
        for p in policies:
            if POLICY_PREDICATE not in (p["qual"] or ""):
                problems.append((table["relname"], p["policyname"], "qual", p["qual"]))
            if p["with_check"] is not None and POLICY_PREDICATE not in p["with_check"]:
                problems.append((table["relname"], p["policyname"], "check", p["with_check"]))
            if p["cmd"] in ("ALL", "INSERT", "UPDATE") and p["with_check"] is None:
                # For ALL/UPDATE the USING clause doubles as the check; still fail closed.
                assert POLICY_PREDICATE in (p["qual"] or "")
        # Only the tenant predicate may open rows: no extra permissive policy.
        permissive = [p for p in policies if p["permissive"] == "PERMISSIVE"]
        if len(permissive) != 1 or permissive[0]["cmd"] != "ALL":
            problems.append((table["relname"], "permissive policies", len(permissive)))
    assert problems == []


async def test_catalog_app_role_is_not_privileged(admin: asyncpg.Connection) -> None:
    role = await admin.fetchrow(
        "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles"
        " WHERE rolname = $1",
        APP_ROLE,
    )
    assert role is not None
    assert role["rolsuper"] is False
    assert role["rolbypassrls"] is False
    assert role["rolcreaterole"] is False
    assert role["rolcreatedb"] is False


async def test_catalog_app_role_owns_nothing(admin: asyncpg.Connection) -> None:
    owned = await admin.fetch(
        """
        SELECT c.relname, c.relkind FROM pg_class c
        JOIN pg_roles r ON r.oid = c.relowner
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE r.rolname = $1 AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        """,
        APP_ROLE,
    )
    assert [(r["relname"], r["relkind"]) for r in owned] == []
    schemas = await admin.fetch(
        "SELECT nspname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner"
        " WHERE r.rolname = $1",
        APP_ROLE,
    )
    assert [r["nspname"] for r in schemas] == []


async def test_catalog_app_role_cannot_create_or_truncate(admin: asyncpg.Connection) -> None:
    assert (
        await admin.fetchval("SELECT has_schema_privilege($1, 'public', 'CREATE')", APP_ROLE)
        is False
    )
    for table in await _tenant_tables(admin):
        for privilege in ("TRUNCATE", "TRIGGER", "REFERENCES"):
            allowed = await admin.fetchval(
                "SELECT has_table_privilege($1, $2::oid, $3)", APP_ROLE, table["oid"], privilege
            )
            assert allowed is False, (table["relname"], privilege)


async def test_catalog_app_role_cannot_write_migration_state(admin: asyncpg.Connection) -> None:
    for privilege in ("INSERT", "UPDATE", "DELETE", "TRUNCATE"):
        allowed = await admin.fetchval(
            "SELECT has_table_privilege($1, 'public.alembic_version', $2)", APP_ROLE, privilege
        )
        assert allowed is False, privilege


async def test_catalog_has_no_security_definer_functions(admin: asyncpg.Connection) -> None:
    """A SECURITY DEFINER function owned by the migration role would bypass RLS."""
    rows = await admin.fetch(
        "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = 'public' AND p.prosecdef"
    )
    assert [r["proname"] for r in rows] == []


async def test_catalog_every_unique_key_starts_with_tenant_id(
    admin: asyncpg.Connection,
) -> None:
    rows = await admin.fetch(
        """
        SELECT ic.relname AS index_name, c.relname AS table_name, a.attname AS first_column,
               i.indisprimary AS is_primary
        FROM pg_index i
        JOIN pg_class c ON c.oid = i.indrelid
        JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE n.nspname = 'public' AND (i.indisunique OR i.indisprimary)
          AND c.relname <> 'alembic_version'
        """
    )
    assert rows, "expected unique indexes"
    bad = [
        (r["table_name"], r["index_name"])
        for r in rows
        if r["first_column"] != "tenant_id" and r["table_name"] not in SYSTEM_TABLES
    ]
    assert bad == []
    pk_tables = {r["table_name"] for r in rows if r["is_primary"]}
    assert {t["relname"] for t in await _tenant_tables(admin)} <= pk_tables


# ---- invoice_get(): the single-round-trip read (migration 0002) -----------------------


async def test_invoice_get_function_reads_own_invoice_and_leaves_no_tenant_behind(
    invoices: Any, md: Any, tenant: uuid.UUID, app_conn: asyncpg.Connection
) -> None:
    created = await _create(invoices, md)
    invoice_id = ids_of(created)
    row = await app_conn.fetchrow("SELECT * FROM invoice_get($1, $2, NULL)", tenant, invoice_id)
    assert row is not None and row["id"] == invoice_id
    # The setting was local to that statement's own transaction: nothing is visible now.
    assert await app_conn.fetchval("SELECT count(*) FROM invoices") == 0
    assert await app_conn.fetchval("SELECT current_setting('app.tenant_id', true)") in ("", None)


async def test_invoice_get_function_never_returns_another_tenants_invoice(
    invoices: Any, md: Any, app_conn: asyncpg.Connection
) -> None:
    created = await _create(invoices, md)
    stranger = uuid.uuid4()
    row = await app_conn.fetchrow(
        "SELECT * FROM invoice_get($1, $2, NULL)", stranger, ids_of(created)
    )
    assert row is None


async def test_invoice_get_function_filters_by_app_when_given(
    invoices: Any, md: Any, tenant: uuid.UUID, app_conn: asyncpg.Connection
) -> None:
    invoice_id = ids_of(await _create(invoices, md))
    assert (
        await app_conn.fetchrow("SELECT * FROM invoice_get($1, $2, 'some-app')", tenant, invoice_id)
        is None
    )


async def test_invoice_get_function_is_invoker_and_not_public(admin: asyncpg.Connection) -> None:
    row = await admin.fetchrow(
        "SELECT p.prosecdef, has_function_privilege('public', p.oid, 'EXECUTE') AS public_exec,"
        " has_function_privilege($1, p.oid, 'EXECUTE') AS app_exec"
        " FROM pg_proc p WHERE p.proname = 'invoice_get'",
        APP_ROLE,
    )
    assert row is not None
    assert row["prosecdef"] is False
    assert row["public_exec"] is False
    assert row["app_exec"] is True


def ids_of(invoice: invoices_pb2.Invoice) -> uuid.UUID:
    return ids.decode_id(invoice.id, ids.PREFIXES["invoice"], "id")
