"""Ingestion: documents polled from, and pushed by, inbound providers become supplier
invoices. Its work runs in the worker; PollConnection (ConnectionService) runs a poll now;
the webhook endpoint stores signed events for the worker."""

from __future__ import annotations

from datetime import timedelta

from service.connections import service as connections
from service.edge.modules import Auth, Module, Route, Task
from service.ingestion import service, servicer, tasks
from service.ingestion.models import webhook_events

MODULE = Module(
    name="ingestion",
    tables=[webhook_events],
    tasks=[
        Task(
            connections.POLL_TASK,
            tasks.poll,
            every=timedelta(minutes=5),
            lease=timedelta(minutes=2),
            retry=timedelta(seconds=30),
        ),
        Task(
            service.WEBHOOK_TASK,
            tasks.webhooks,
            every=timedelta(hours=1),
            lease=timedelta(minutes=2),
            retry=timedelta(seconds=10),
        ),
    ],
    routes=[Route("POST", servicer.PATH, servicer.webhook_endpoint, Auth.WEBHOOK, name="webhooks")],
)
