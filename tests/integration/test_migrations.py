"""Alembic migrations on a fresh, empty database: upgrade reaches head, the schema
matches the models exactly (autogenerate finds nothing), downgrade to base removes
every table, and upgrading again works."""

from __future__ import annotations

import asyncio
import os
import sys
import urllib.parse as up
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from service import migrate, registry
from service.kit import db
from tests.conftest import APP_ROLE, Database

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def fresh_url(database: Database, admin: asyncpg.Connection) -> AsyncIterator[str]:
    name = f"invoicing_mig_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = up.urlunsplit(up.urlsplit(database.admin_url)._replace(path=f"/{name}"))
    try:
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _head() -> str:
    script = ScriptDirectory.from_config(migrate.alembic_config("", app_role=APP_ROLE))
    head = script.get_current_head()
    assert head is not None
    return head


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


async def _version(url: str) -> str | None:
    conn = await asyncpg.connect(url)
    try:
        exists = await conn.fetchval("SELECT to_regclass('public.alembic_version') IS NOT NULL")
        if not exists:
            return None
        value = await conn.fetchval("SELECT version_num FROM alembic_version")
        return None if value is None else str(value)
    finally:
        await conn.close()


async def _schema_diff(url: str) -> list[Any]:
    engine = create_async_engine(db.async_url(url))

    def compare(sync_conn: Connection) -> list[Any]:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return list(compare_metadata(context, registry.metadata()))

    try:
        async with engine.connect() as conn:
            return await conn.run_sync(compare)
    finally:
        await engine.dispose()


async def _upgrade(url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, url, app_role=APP_ROLE)


async def _downgrade(url: str) -> None:
    await asyncio.to_thread(migrate.downgrade, url, app_role=APP_ROLE, revision="base")


async def test_upgrade_on_empty_database_reaches_head(fresh_url: str) -> None:
    assert await _tables(fresh_url) == set()
    await _upgrade(fresh_url)
    assert await _version(fresh_url) == _head()
    expected = set(registry.metadata().tables) | {"alembic_version"}
    assert await _tables(fresh_url) == expected


async def test_upgraded_schema_matches_models_exactly(fresh_url: str) -> None:
    await _upgrade(fresh_url)
    assert await _schema_diff(fresh_url) == []


async def test_upgrade_twice_is_a_no_op(fresh_url: str) -> None:
    await _upgrade(fresh_url)
    await _upgrade(fresh_url)
    assert await _version(fresh_url) == _head()


async def test_downgrade_to_base_leaves_no_tables_and_upgrade_again_works(
    fresh_url: str,
) -> None:
    await _upgrade(fresh_url)
    await _downgrade(fresh_url)
    assert await _tables(fresh_url) - {"alembic_version"} == set()
    assert await _version(fresh_url) is None

    await _upgrade(fresh_url)
    assert await _version(fresh_url) == _head()
    assert await _schema_diff(fresh_url) == []
    conn = await asyncpg.connect(fresh_url)
    try:
        tenant_tables = [
            name
            for name, table in registry.metadata().tables.items()
            if not table.info.get("system")
        ]
        forced = await conn.fetch(
            "SELECT relname FROM pg_class WHERE relname = ANY($1::text[])"
            " AND relrowsecurity AND relforcerowsecurity",
            list(registry.metadata().tables),
        )
        assert {r["relname"] for r in forced} == set(tenant_tables)
        policies = await conn.fetchval("SELECT count(*) FROM pg_policies WHERE schemaname='public'")
        assert policies == len(tenant_tables)
    finally:
        await conn.close()


async def test_downgrade_leaves_no_types_or_policies(fresh_url: str) -> None:
    await _upgrade(fresh_url)
    await _downgrade(fresh_url)
    conn = await asyncpg.connect(fresh_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_policies") == 0
        user_types = await conn.fetch(
            "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
            " WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'c')"
            " AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.reltype = t.oid)"
        )
        assert [r["typname"] for r in user_types] == []
        sequences = await conn.fetch(
            "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'S'"
        )
        assert [r["relname"] for r in sequences] == []
    finally:
        await conn.close()


async def test_replicas_migrating_at_once_take_turns(fresh_url: str, tmp_path: Path) -> None:
    """Several replicas start together and each runs the migrations (separate processes,
    as in production): the advisory lock serializes them; the later ones find the schema
    at head."""
    env = {
        **os.environ,
        "DATABASE_URL": fresh_url,
        "DATA_DIR": str(tmp_path),
        "PYTHONPATH": f"{ROOT}:{ROOT / 'generated'}",
    }
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service.migrate",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(3)
    ]
    results = [await asyncio.wait_for(p.communicate(), 120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], [r[1][-2000:] for r in results]
    assert await _version(fresh_url) == _head()
    assert await _schema_diff(fresh_url) == []
