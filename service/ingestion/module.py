"""Ingestion: documents polled from (and pushed by) inbound providers become supplier
invoices. Its work runs in the worker; PollConnection (ConnectionService) runs a poll now."""

from __future__ import annotations

from datetime import timedelta

from service.connections import service as connections
from service.edge.modules import Module, Task
from service.ingestion import tasks

MODULE = Module(
    name="ingestion",
    tasks=[
        Task(
            connections.POLL_TASK,
            tasks.poll,
            every=timedelta(minutes=5),
            lease=timedelta(minutes=2),
            retry=timedelta(seconds=30),
        )
    ],
)
