"""Shared fixtures: a real PostgreSQL (embedded unless DATABASE_URL), migrated with
Alembic, and the real gRPC server on a real loopback port.

Every test uses its own random tenant, so tests never see each other's rows and
no cleanup between tests is needed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from invoicing.v1 import (
    allocations_pb2_grpc,
    invoices_pb2,
    invoices_pb2_grpc,
    records_pb2_grpc,
)

from service import app, migrate
from service.gateway.server import GatewaySettings, RunningGateway, standalone_app
from service.kit import auth, config, devdb

APP_ROLE = "invoicing_app"


@dataclasses.dataclass(frozen=True)
class Database:
    admin_url: str  # superuser / owner: migrations and test assertions
    app_url: str  # the service's non-owner role (RLS applies)


def _fresh_database(base_url: str) -> tuple[str, str]:
    """Create an empty database next to the one DATABASE_URL names."""
    import urllib.parse as up

    name = f"invoicing_test_{uuid.uuid4().hex[:8]}"
    parts = up.urlsplit(base_url)

    async def create() -> None:
        conn = await asyncpg.connect(base_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return up.urlunsplit(parts._replace(path=f"/{name}")), name


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="inv-test-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def database(data_dir: Path) -> Iterator[Database]:
    external = os.environ.get("DATABASE_URL", "")
    if external:
        admin, _ = _fresh_database(external)
        app_url = devdb.with_user(admin, os.environ.get("TEST_APP_DB_USER", APP_ROLE))
        migrate.upgrade(admin, app_role=APP_ROLE)
        yield Database(admin_url=admin, app_url=app_url)
        return
    settings = config.load({"DATA_DIR": str(data_dir)})
    urls = devdb.resolve(settings)
    migrate.upgrade(urls.admin, app_role=APP_ROLE)
    devdb.allow_app_login(urls, settings)
    yield Database(admin_url=urls.admin, app_url=urls.app)
    devdb.stop_embedded(data_dir)


@pytest.fixture(scope="session")
def settings(data_dir: Path) -> config.Settings:
    return config.load(
        {
            "DATA_DIR": str(data_dir),
            "GRPC_PORT": "0",
            "GATEWAY_PORT": "0",
            "LOG_LEVEL": "WARNING",
            # The worker runs only where a test starts one (tests/integration/test_worker.py).
            "WORKER_ENABLED": "false",
        }
    )


@pytest.fixture(scope="session")
async def server(settings: config.Settings, database: Database) -> AsyncIterator[app.Running]:
    running = await app.start(settings, database.app_url)
    yield running
    await app.stop(running, grace=1)


@pytest.fixture(scope="session")
def target(server: app.Running) -> str:
    return f"127.0.0.1:{server.port}"


@pytest.fixture(scope="session")
async def standalone_gateway(
    settings: config.Settings, server: app.Running
) -> AsyncIterator[RunningGateway]:
    """The standalone gateway (`python -m service.gateway`) on a real port, forwarding
    over a real gRPC channel to the test server."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        gateway_settings = GatewaySettings.from_settings(settings, port=0)
        gateway = RunningGateway(standalone_app(ch, gateway_settings), gateway_settings)
        await gateway.start()
        yield gateway
        await gateway.stop()


@pytest.fixture(scope="session", params=["in-process", "standalone"])
def rest_base_url(
    request: pytest.FixtureRequest, server: app.Running, standalone_gateway: RunningGateway
) -> str:
    """The REST gateway in both modes: in the server process (in-process dispatch, the
    `make run` default) and standalone (forwarding over gRPC)."""
    port = server.gateway_port if request.param == "in-process" else standalone_gateway.port
    assert port, "the test settings start the REST gateway in-process"
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
async def channel(target: str) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(target) as ch:
        yield ch


@pytest.fixture(scope="session")
def invoices(channel: grpc.aio.Channel) -> invoices_pb2_grpc.InvoiceServiceStub:
    return invoices_pb2_grpc.InvoiceServiceStub(channel)


@pytest.fixture(scope="session")
def allocations(channel: grpc.aio.Channel) -> allocations_pb2_grpc.AllocationServiceStub:
    return allocations_pb2_grpc.AllocationServiceStub(channel)


@pytest.fixture(scope="session")
def records(channel: grpc.aio.Channel) -> records_pb2_grpc.RecordsServiceStub:
    return records_pb2_grpc.RecordsServiceStub(channel)


@pytest.fixture
def tenant() -> uuid.UUID:
    return uuid.uuid4()


class Tokens:
    """Mints dev tokens signed with the test server's secret."""

    def __init__(self, settings: config.Settings) -> None:
        self.settings = settings

    def token(self, tenant: uuid.UUID, **kwargs: Any) -> str:
        return auth.mint_dev_token(self.settings, tenant_id=tenant, **kwargs)

    def md(self, tenant: uuid.UUID, **kwargs: Any) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token(tenant, **kwargs)}"),)


@pytest.fixture(scope="session")
def tokens(settings: config.Settings) -> Tokens:
    return Tokens(settings)


@pytest.fixture
def md(tokens: Tokens, tenant: uuid.UUID) -> tuple[tuple[str, str], ...]:
    """Metadata for the test's tenant with every permission."""
    return tokens.md(tenant)


@pytest.fixture
async def admin(database: Database) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection for assertions on what was (not) written."""
    conn = await asyncpg.connect(database.admin_url)
    yield conn
    await conn.close()


# ---- helpers ----------------------------------------------------------------------


def rich_status(err: grpc.aio.AioRpcError) -> status_pb2.Status:
    status = rpc_status.from_call(err)
    assert status is not None, f"no google.rpc.Status in {err!r}"
    return status


def error_info(err: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    infos = []
    for detail in rich_status(err).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            infos.append(info)
    assert len(infos) == 1, f"expected exactly one ErrorInfo, got {len(infos)}"
    return infos[0]


def violations(err: grpc.aio.AioRpcError) -> list[str]:
    """Field paths named by the BadRequest detail."""
    fields = []
    for detail in rich_status(err).details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    return fields


def sample_invoice(**overrides: Any) -> invoices_pb2.Invoice:
    """A valid customer draft: 10 x 120.00 at 20 % tax = 1440.00."""
    fields: dict[str, Any] = {
        "type": invoices_pb2.INVOICE_TYPE_CUSTOMER,
        "currency": "EUR",
        "counterparty_id": "0b9c4a52-8d0e-4a8e-9a51-2f7d4d2c1e11",
        "line_items": [
            invoices_pb2.LineItem(
                description="Consulting", quantity="10", unit_price="120.00", tax_rate="0.20"
            )
        ],
    }
    fields.update(overrides)
    return invoices_pb2.Invoice(**fields)


async def count_invoices(admin: asyncpg.Connection, tenant: uuid.UUID) -> int:
    value = await admin.fetchval("SELECT count(*) FROM invoices WHERE tenant_id = $1", tenant)
    return int(value)
