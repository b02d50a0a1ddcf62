"""The worker: lease claims on the real database, several runners at once, a killed
runner's items taken over, fencing of a late settle, the purge of expired idempotency
keys, and the `python -m service.worker` process.

The session server runs no worker (WORKER_ENABLED=false in the test settings): each test
starts its own runners, so only they claim items.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from invoicing.v1 import invoices_pb2

from service import app
from service.edge.modules import Task, TaskResult
from service.edge.runtime import Runtime
from service.housekeeping import tasks as housekeeping
from service.kit import config, db
from service.kit.auth import Principal
from service.kit.idempotency import PURGE_TASK
from service.worker.runner import SYSTEM_SUBJECT, Outcome, Runner
from tests.conftest import Database, sample_invoice

ROOT = Path(__file__).resolve().parents[2]
PURGE = Task(PURGE_TASK, housekeeping.purge_idempotency_keys, every=timedelta(hours=1))


async def _enqueue(admin: asyncpg.Connection, task: str, tenants: list[uuid.UUID]) -> None:
    await admin.executemany(
        "INSERT INTO work_items (tenant_id, task, key, due_at) VALUES ($1, $2, '', now())"
        " ON CONFLICT (tenant_id, task, key) DO UPDATE SET due_at = now(),"
        " lease_owner = NULL, lease_expires_at = NULL",
        [(t, task) for t in tenants],
    )


async def _keys(admin: asyncpg.Connection, tenant: uuid.UUID, *, expired: int, live: int) -> None:
    await admin.execute(
        "INSERT INTO idempotency_keys (tenant_id, method, request_id, request_hash, response,"
        " expires_at) SELECT $1, 'CreateInvoice', 'k-' || g, '\\x00', '\\x00',"
        " CASE WHEN g <= $2::int THEN now() - interval '1 hour' ELSE now() + interval '1 day' END"
        " FROM generate_series(1, $2::int + $3::int) g",
        tenant,
        expired,
        live,
    )


async def _count(admin: asyncpg.Connection, tenant: uuid.UUID, *, expired: bool) -> int:
    op = "<" if expired else ">="
    return int(
        await admin.fetchval(
            f"SELECT count(*) FROM idempotency_keys WHERE tenant_id = $1 AND expires_at {op} now()",
            tenant,
        )
    )


async def _none_expired(admin: asyncpg.Connection, tenant: uuid.UUID) -> bool:
    return await _count(admin, tenant, expired=True) == 0


async def _eventually(check: Callable[[], Awaitable[bool]], seconds: float = 20) -> None:
    """Poll the database until `check` holds (another process does the work)."""
    for _ in range(int(seconds / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)


async def _drain(runner: Runner, *, rounds: int = 200) -> None:
    """Run until a round finds nothing due."""
    for _ in range(rounds):
        if await runner.run_once() == 0:
            return
    raise AssertionError("work never ran out")


# ---- the purge ---------------------------------------------------------------------


async def test_purge_deletes_only_the_tenants_expired_keys(
    server: app.Running, admin: asyncpg.Connection
) -> None:
    tenant, neighbour = uuid.uuid4(), uuid.uuid4()
    await _keys(admin, tenant, expired=5, live=3)
    await _keys(admin, neighbour, expired=4, live=0)
    await _enqueue(admin, PURGE_TASK, [tenant])
    seen: list[Outcome] = []
    runner = Runner(server.runtime, [PURGE], owner="w1", observe=seen.append)
    await _drain(runner)
    assert [(o.tenant_id, o.result) for o in seen if o.tenant_id == tenant] == [
        (tenant, TaskResult(count=5, more=False))
    ]
    assert await _count(admin, tenant, expired=True) == 0
    assert await _count(admin, tenant, expired=False) == 3
    # Another tenant's keys are not touched by this tenant's item (RLS and the WHERE clause).
    assert await _count(admin, neighbour, expired=True) == 4
    item = await admin.fetchrow(
        "SELECT due_at - now() AS wait, lease_owner, failures FROM work_items"
        " WHERE tenant_id = $1 AND task = $2",
        tenant,
        PURGE_TASK,
    )
    assert item["lease_owner"] is None and item["failures"] == 0
    assert timedelta(minutes=59) < item["wait"] <= timedelta(hours=1)


async def test_a_full_batch_makes_the_item_due_again_at_once(
    server: app.Running, admin: asyncpg.Connection
) -> None:
    tenant = uuid.uuid4()
    await _keys(admin, tenant, expired=housekeeping.PURGE_BATCH + 7, live=1)
    await _enqueue(admin, PURGE_TASK, [tenant])
    seen: list[Outcome] = []
    runner = Runner(server.runtime, [PURGE], owner="w1", observe=seen.append)
    await _drain(runner)
    counts = [o.result.count for o in seen if o.tenant_id == tenant and o.result]
    assert counts == [housekeeping.PURGE_BATCH, 7]
    assert await _count(admin, tenant, expired=False) == 1


async def test_an_idempotent_write_enqueues_its_tenants_purge_item(
    invoices: object, md: object, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    request = invoices_pb2.CreateInvoiceRequest(invoice=sample_invoice(), request_id="r-1")
    await invoices.CreateInvoice(request, metadata=md)  # type: ignore[attr-defined]
    await invoices.CreateInvoice(  # type: ignore[attr-defined]
        invoices_pb2.CreateInvoiceRequest(invoice=sample_invoice(), request_id="r-2"), metadata=md
    )
    rows = await admin.fetch(
        "SELECT due_at - now() AS wait FROM work_items WHERE tenant_id = $1 AND task = $2",
        tenant,
        PURGE_TASK,
    )
    assert len(rows) == 1  # one item per tenant, however many keys
    # Due when the first key expires (24 h), not before.
    assert timedelta(hours=23) < rows[0]["wait"] <= timedelta(hours=24)


async def test_two_workers_never_purge_the_same_batch_twice(
    server: app.Running, admin: asyncpg.Connection
) -> None:
    tenants = [uuid.uuid4() for _ in range(24)]
    per_tenant = housekeeping.PURGE_BATCH + 250  # two batches each
    for tenant in tenants:
        await _keys(admin, tenant, expired=per_tenant, live=2)
    await _enqueue(admin, PURGE_TASK, tenants)
    seen: list[Outcome] = []
    first = Runner(server.runtime, [PURGE], owner="w1", batch=3, observe=seen.append)
    second = Runner(server.runtime, [PURGE], owner="w2", batch=3, observe=seen.append)
    await asyncio.gather(_drain(first), _drain(second))

    ours = [o for o in seen if o.tenant_id in set(tenants)]
    assert all(o.error is None and o.settled for o in ours)
    # Every expired key purged exactly once: the batches add up to the keys, no more.
    assert sum(o.result.count for o in ours if o.result) == per_tenant * len(tenants)
    for tenant in tenants:
        batches = [o.result.count for o in ours if o.tenant_id == tenant and o.result]
        assert batches == [housekeeping.PURGE_BATCH, 250], (tenant, batches)
        assert await _count(admin, tenant, expired=True) == 0
        assert await _count(admin, tenant, expired=False) == 2
    assert {o.owner for o in ours} == {"w1", "w2"}  # both did work


# ---- leases with a task that records its runs -----------------------------------


@dataclasses.dataclass
class Recorder:
    """A task that records every run's interval and can be held mid-run."""

    name: str
    delay: float = 0.0
    hold: asyncio.Event | None = None
    started: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    runs: list[tuple[uuid.UUID, str, float, float]] = dataclasses.field(default_factory=list)

    async def __call__(
        self, runtime: Runtime, conn: db.Conn, principal: Principal, key: str
    ) -> TaskResult:
        assert principal.subject == SYSTEM_SUBJECT and principal.permissions == {"system"}
        # The run is inside the tenant's unit of work: RLS sees exactly this tenant.
        assert await conn.fetchval("SELECT current_setting('app.tenant_id')") == str(
            principal.tenant_id
        )
        begun = time.monotonic()
        self.started.set()
        if self.hold is not None:
            await self.hold.wait()
        await asyncio.sleep(self.delay)
        self.runs.append((principal.tenant_id, key, begun, time.monotonic()))
        return TaskResult(count=1)

    def task(self, lease: timedelta = timedelta(seconds=30)) -> Task:
        return Task(self.name, self, every=timedelta(hours=1), lease=lease)


async def test_three_runners_run_each_item_once_and_never_concurrently(
    server: app.Running, admin: asyncpg.Connection
) -> None:
    recorder = Recorder(f"test.record.{uuid.uuid4().hex[:8]}", delay=0.01)
    tenants = [uuid.uuid4() for _ in range(60)]
    await _enqueue(admin, recorder.name, tenants)
    runners = [Runner(server.runtime, [recorder.task()], owner=f"w{i}", batch=4) for i in range(3)]
    await asyncio.gather(*(_drain(r) for r in runners))
    assert sorted(t for t, *_ in recorder.runs) == sorted(tenants)  # each once
    runs = await admin.fetch(
        "SELECT runs, lease_owner FROM work_items WHERE task = $1", recorder.name
    )
    assert [r["runs"] for r in runs] == [1] * len(tenants)
    assert {r["lease_owner"] for r in runs} == {None}


async def test_a_killed_runners_item_is_taken_over_when_its_lease_expires(
    server: app.Running, admin: asyncpg.Connection
) -> None:
    recorder = Recorder(f"test.kill.{uuid.uuid4().hex[:8]}", hold=asyncio.Event())
    tenant = uuid.uuid4()
    await _enqueue(admin, recorder.name, [tenant])
    lease = timedelta(seconds=1)
    doomed = Runner(server.runtime, [recorder.task(lease)], owner="doomed")
    killed = asyncio.create_task(doomed.run_once())
    await asyncio.wait_for(recorder.started.wait(), 10)
    killed.cancel()  # like a SIGKILL: the runner never settles, its lease stays
    with pytest.raises(asyncio.CancelledError):
        await killed
    row = await admin.fetchrow("SELECT lease_owner FROM work_items WHERE task = $1", recorder.name)
    assert row["lease_owner"] == "doomed"

    heir = Runner(server.runtime, [dataclasses.replace(recorder.task(lease))], owner="heir")
    recorder.hold = None
    assert await heir.run_once() == 0  # the lease still holds
    await asyncio.sleep(lease.total_seconds() + 0.2)
    assert await heir.run_once() == 1
    assert [t for t, *_ in recorder.runs] == [tenant]
    row = await admin.fetchrow(
        "SELECT lease_owner, runs FROM work_items WHERE task = $1", recorder.name
    )
    assert (row["lease_owner"], row["runs"]) == (None, 2)


async def test_a_late_settle_after_a_takeover_changes_nothing(
    server: app.Running, admin: asyncpg.Connection
) -> None:
    recorder = Recorder(f"test.fence.{uuid.uuid4().hex[:8]}")
    tenant = uuid.uuid4()
    await _enqueue(admin, recorder.name, [tenant])
    task = recorder.task(timedelta(seconds=30))
    slow = Runner(server.runtime, [task], owner="slow")
    claimed = await slow._claim(task)
    assert [(t, k) for t, k, _ in claimed] == [(tenant, "")]
    # The lease ran out meanwhile and another runner took the item over.
    await admin.execute(
        "UPDATE work_items SET lease_owner = 'heir', lease_expires_at = now() + interval '1 h'"
        " WHERE task = $1",
        recorder.name,
    )
    settled = await slow._settle(task, tenant, "", 0, TaskResult(count=1), None)
    assert settled is False
    row = await admin.fetchrow(
        "SELECT lease_owner, last_run_at FROM work_items WHERE task = $1", recorder.name
    )
    assert row["lease_owner"] == "heir" and row["last_run_at"] is None


async def test_a_failing_task_backs_off_and_records_the_error(
    server: app.Running, admin: asyncpg.Connection
) -> None:
    name = f"test.fail.{uuid.uuid4().hex[:8]}"

    async def boom(runtime: Runtime, conn: db.Conn, principal: Principal, key: str) -> TaskResult:
        raise RuntimeError("provider said no")

    tenant = uuid.uuid4()
    await _enqueue(admin, name, [tenant])
    task = Task(name, boom, every=timedelta(hours=1), retry=timedelta(seconds=30))
    runner = Runner(server.runtime, [task], owner="w1")
    assert await runner.run_once() == 1
    assert await runner.run_once() == 0  # backing off, not retried at once
    row = await admin.fetchrow(
        "SELECT failures, last_error, due_at - now() AS wait, lease_owner FROM work_items"
        " WHERE task = $1",
        name,
    )
    assert row["failures"] == 1 and "provider said no" in row["last_error"]
    assert row["lease_owner"] is None
    assert timedelta(seconds=25) < row["wait"] <= timedelta(seconds=30)  # `retry`, then doubling


# ---- the worker process -------------------------------------------------------------


@pytest.fixture
async def worker_process(
    database: Database, data_dir: Path
) -> AsyncIterator[Callable[[], Awaitable[asyncio.subprocess.Process]]]:
    started: list[asyncio.subprocess.Process] = []

    async def start() -> asyncio.subprocess.Process:
        env = {
            **os.environ,
            "DATABASE_URL": database.app_url,
            "DATA_DIR": str(data_dir),
            "WORKER_IDLE_MS": "50",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": f"{ROOT}:{ROOT / 'generated'}",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service.worker",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        started.append(process)
        assert process.stdout is not None
        banner = await asyncio.wait_for(process.stdout.readline(), 30)
        assert b"invoicing worker" in banner and PURGE_TASK.encode() in banner
        return process

    yield start
    for process in started:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_the_worker_process_takes_over_a_dead_workers_lease_and_stops_on_sigterm(
    worker_process: Callable[[], Awaitable[asyncio.subprocess.Process]],
    admin: asyncpg.Connection,
) -> None:
    tenant = uuid.uuid4()
    await _keys(admin, tenant, expired=12, live=1)
    # Leased to a worker that died: the lease expired a second ago.
    await admin.execute(
        "INSERT INTO work_items (tenant_id, task, key, due_at, lease_owner, lease_expires_at)"
        " VALUES ($1, $2, '', now() - interval '1 minute', 'dead:1', now() - interval '1 s')",
        tenant,
        PURGE_TASK,
    )
    process = await worker_process()
    await _eventually(lambda: _none_expired(admin, tenant))
    assert await _count(admin, tenant, expired=True) == 0
    assert await _count(admin, tenant, expired=False) == 1
    row = await admin.fetchrow(
        "SELECT lease_owner, runs FROM work_items WHERE tenant_id = $1", tenant
    )
    assert row["lease_owner"] is None and row["runs"] == 1
    process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.wait(), 20) == 0


async def test_the_server_runs_the_worker_by_default(
    settings: config.Settings, database: Database, admin: asyncpg.Connection
) -> None:
    tenant = uuid.uuid4()
    await _keys(admin, tenant, expired=3, live=0)
    await _enqueue(admin, PURGE_TASK, [tenant])
    with_worker = dataclasses.replace(
        settings, worker_enabled=True, gateway_enabled=False, worker_idle_ms=50
    )
    running = await app.start(with_worker, database.app_url)
    try:
        assert running.worker is not None
        await _eventually(lambda: _none_expired(admin, tenant))
        assert await _count(admin, tenant, expired=True) == 0
    finally:
        await app.stop(running, grace=1)
    assert running.worker.done()


async def test_failures_back_off_exponentially_up_to_the_cap(
    server: app.Running, admin: asyncpg.Connection
) -> None:
    name = f"test.backoff.{uuid.uuid4().hex[:8]}"

    async def boom(runtime: Runtime, conn: db.Conn, principal: Principal, key: str) -> TaskResult:
        raise RuntimeError("still down")

    tenant = uuid.uuid4()
    task = Task(name, boom, every=timedelta(hours=1), retry=timedelta(seconds=10))
    runner = Runner(server.runtime, [task], owner="w1")
    waits = []
    for _ in range(12):
        await _enqueue_due_keeping_failures(admin, name, tenant)
        assert await runner.run_once() == 1
        waits.append(
            await admin.fetchval(
                "SELECT round(extract(epoch FROM due_at - now())) FROM work_items WHERE task = $1",
                name,
            )
        )
    expected = [min(10 * 2**n, 3600) for n in range(12)]
    assert [int(w) for w in waits] == pytest.approx(expected, abs=1)


async def _enqueue_due_keeping_failures(
    admin: asyncpg.Connection, task: str, tenant: uuid.UUID
) -> None:
    await admin.execute(
        "INSERT INTO work_items (tenant_id, task, key, due_at) VALUES ($1, $2, '', now())"
        " ON CONFLICT (tenant_id, task, key) DO UPDATE SET due_at = now()",
        tenant,
        task,
    )
