"""Claims due work items with leases and runs the modules' tasks.

    claim    one statement: due items of a task whose lease is free or expired,
             `FOR UPDATE SKIP LOCKED`, leased to this runner until now() + the task's lease
    run      the task inside the item's tenant's unit of work, as a system principal
    settle   one statement, fenced by the lease owner: next due time (or a backoff after
             a failure), lease released; a runner whose lease expired meanwhile changes
             nothing (another runner has taken the item over)

Several runners (processes) on one database never hold one item at once, and a killed
runner's items are taken over when their leases expire. A cancelled runner does not
touch the database on its way out, exactly like a killed one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Interval, func, or_, select, tuple_
from sqlalchemy.sql import ClauseElement

from service.edge.modules import Task, TaskResult
from service.edge.runtime import Runtime
from service.kit import db, sql
from service.kit.auth import Principal
from service.kit.work import work_items

log = logging.getLogger("service.worker")
SYSTEM_SUBJECT = "system:worker"
MAX_BACKOFF = timedelta(hours=1)
w = work_items.c


def system_principal(tenant_id: uuid.UUID) -> Principal:
    return Principal(
        subject=SYSTEM_SUBJECT,
        tenant_id=tenant_id,
        app_id=None,
        workspaces=frozenset(),
        permissions=frozenset({"system"}),
    )


def _build_claim() -> ClauseElement:
    due = (
        select(w.tenant_id, w.task, w.key)
        .where(
            w.task == sql.param("task"),
            w.due_at <= func.now(),
            or_(w.lease_expires_at.is_(None), w.lease_expires_at < func.now()),
        )
        .order_by(w.due_at)
        .limit(sql.param("batch"))
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    return (
        work_items.update()
        .where(tuple_(w.tenant_id, w.task, w.key) == tuple_(due.c.tenant_id, due.c.task, due.c.key))
        .values(
            lease_owner=sql.param("owner"),
            lease_expires_at=func.now() + sql.param("lease", Interval()),
            runs=w.runs + 1,
        )
        .returning(w.tenant_id, w.key, w.failures)
    )


def _build_settle(failed: bool) -> ClauseElement:
    """Release the lease and set the next due time, only if the lease is still ours."""
    outcome: dict[str, Any] = (
        {"failures": w.failures + 1, "last_error": sql.param("error")}
        if failed
        else {"failures": 0, "last_error": None}
    )
    return (
        work_items.update()
        .where(
            w.tenant_id == sql.param("tenant"),
            w.task == sql.param("task"),
            w.key == sql.param("key"),
            w.lease_owner == sql.param("owner"),
        )
        .values(
            due_at=func.now() + sql.param("next", Interval()),
            lease_owner=None,
            lease_expires_at=None,
            last_run_at=func.now(),
            **outcome,
        )
    )


def _build_finish() -> ClauseElement:
    """Remove a finished item, only if the lease is still ours."""
    return work_items.delete().where(
        w.tenant_id == sql.param("tenant"),
        w.task == sql.param("task"),
        w.key == sql.param("key"),
        w.lease_owner == sql.param("owner"),
    )


_FINISH = sql.Prepared(_build_finish)
_CLAIM = sql.Prepared(_build_claim)
_DONE = sql.Prepared(lambda: _build_settle(failed=False))
_FAILED = sql.Prepared(lambda: _build_settle(failed=True))


@dataclass(frozen=True)
class Outcome:
    """One item's run, as the runner saw it (for logs, metrics and tests)."""

    task: str
    tenant_id: uuid.UUID
    key: str
    owner: str
    result: TaskResult | None
    error: str | None
    settled: bool  # False: the lease had been lost, the item was not touched
    seconds: float = 0.0


class Runner:
    def __init__(
        self,
        runtime: Runtime,
        tasks: Sequence[Task],
        *,
        owner: str | None = None,
        batch: int = 10,
        idle: float = 1.0,
        observe: Callable[[Outcome], None] | None = None,
    ) -> None:
        self._runtime = runtime
        self._tasks = list(tasks)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._batch = batch
        self._idle = idle
        self._observe = observe

    async def run_until(self, stop: asyncio.Event) -> None:
        """Claim and run due items until `stop` is set; sleep `idle` when none is due."""
        log.info("worker started", extra={"fields": {"owner": self.owner, "tasks": self.names}})
        while not stop.is_set():
            try:
                ran = await self.run_once()
            except (TimeoutError, OSError) as exc:  # the database is away: retry
                log.warning("worker cannot claim", extra={"fields": {"error": type(exc).__name__}})
                ran = 0
            except Exception as exc:
                if db.sqlstate(exc) is None:
                    raise
                log.warning("worker cannot claim", extra={"fields": {"sqlstate": db.sqlstate(exc)}})
                ran = 0
            if ran == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._idle)
        log.info("worker stopped", extra={"fields": {"owner": self.owner}})

    @property
    def names(self) -> list[str]:
        return [task.name for task in self._tasks]

    async def run_once(self) -> int:
        """Claim and run one batch of due items of every task; returns how many ran."""
        ran = 0
        for task in self._tasks:
            claimed = await self._claim(task)
            await asyncio.gather(*(self._run(task, *item) for item in claimed))
            ran += len(claimed)
        return ran

    async def _claim(self, task: Task) -> list[tuple[uuid.UUID, str, int]]:
        params = {"task": task.name, "batch": self._batch, "owner": self.owner, "lease": task.lease}
        async with self._runtime.database.pool.acquire() as conn:
            rows = await sql.fetch(conn, _CLAIM, params)
        return [(row["tenant_id"], row["key"], row["failures"]) for row in rows]

    async def _run(self, task: Task, tenant_id: uuid.UUID, key: str, failures: int) -> None:
        principal = system_principal(tenant_id)
        started = time.perf_counter()
        result: TaskResult | None = None
        error: str | None = None
        try:
            result = await self._runtime.calls.transaction(
                principal, lambda conn: task.run(self._runtime, conn, principal, key)
            )
        except Exception as exc:  # a task failing must not stop the worker
            error = f"{type(exc).__name__}: {str(exc)[:500]}"
            log.warning(
                "task failed",
                extra={"fields": {"task": task.name, "tenant_id": str(tenant_id), "key": key}},
                exc_info=exc,
            )
        settled = await self._settle(task, tenant_id, key, failures, result, error)
        if log.isEnabledFor(logging.INFO):
            fields = {
                "task": task.name,
                "tenant_id": str(tenant_id),
                "key": key,
                "count": result.count if result else 0,
                "ok": error is None,
                "settled": settled,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            }
            log.info("task", extra={"fields": fields})
        if self._observe is not None:
            seconds = time.perf_counter() - started
            outcome = Outcome(
                task.name, tenant_id, key, self.owner, result, error, settled, seconds
            )
            self._observe(outcome)

    async def _settle(
        self,
        task: Task,
        tenant_id: uuid.UUID,
        key: str,
        failures: int,
        result: TaskResult | None,
        error: str | None,
    ) -> bool:
        params = {"tenant": tenant_id, "task": task.name, "key": key, "owner": self.owner}
        async with self._runtime.database.pool.acquire() as conn:
            if result is not None and result.finished:
                status = await sql.execute(conn, _FINISH, params)
            elif result is not None:
                later = timedelta(0) if result.more else (result.next_in or task.every)
                status = await sql.execute(conn, _DONE, {**params, "next": later})
            else:
                backoff = min(task.retry * (2 ** min(failures, 16)), MAX_BACKOFF)
                status = await sql.execute(
                    conn, _FAILED, {**params, "next": backoff, "error": error}
                )
        return status.endswith(" 1")
