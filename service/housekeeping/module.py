"""Housekeeping: the kit's own tables (idempotency keys, the work queue) and the tasks
that keep them small."""

from __future__ import annotations

from datetime import timedelta

from service.edge.modules import Module, Task
from service.housekeeping import tasks
from service.kit.idempotency import PURGE_TASK, idempotency_keys
from service.kit.work import work_items

MODULE = Module(
    name="housekeeping",
    tables=[idempotency_keys, work_items],
    tasks=[Task(PURGE_TASK, tasks.purge_idempotency_keys, every=timedelta(hours=1))],
)
