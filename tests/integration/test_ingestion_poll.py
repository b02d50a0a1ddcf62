"""Polling Yooz (PROVIDERS.md) through a real stand-in on 127.0.0.1: paging, idempotent
re-polls, updates and rejections, matching, provenance, backoff, Retry-After, refused
credentials, deletion, and a worker killed between pages."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from invoicing.v1 import (
    common_pb2,
    connections_pb2_grpc,
    counterparties_pb2_grpc,
    invoices_pb2_grpc,
)
from invoicing.v1 import connections_pb2 as cpb
from invoicing.v1 import counterparties_pb2 as kpb
from invoicing.v1 import invoices_pb2 as ipb

from sandbox.yooz import StandIn, sample_document
from service import app
from service.kit import config, ids
from service.worker.runner import Runner
from tests.conftest import Database, Tokens

ROOT = Path(__file__).resolve().parents[2]
Md = tuple[tuple[str, str], ...]


@pytest.fixture(scope="module")
def standin() -> Any:
    server = StandIn().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def running(standin: StandIn, data_dir: Path, database: Database) -> AsyncIterator[Any]:
    settings = config.load(
        {
            "DATA_DIR": str(data_dir),
            "GRPC_PORT": "0",
            "GATEWAY_PORT": "0",
            "LOG_LEVEL": "WARNING",
            "WORKER_ENABLED": "false",
            "YOOZ_BASE_URL": standin.url,
            "YOOZ_TIMEOUT_S": "2",
        }
    )
    server = await app.start(settings, database.app_url)
    yield server
    await app.stop(server, grace=1)


@pytest.fixture(scope="module")
async def ch(running: Any) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield channel


class Api:
    def __init__(self, channel: grpc.aio.Channel, md: Md) -> None:
        self.connections = connections_pb2_grpc.ConnectionServiceStub(channel)
        self.invoices = invoices_pb2_grpc.InvoiceServiceStub(channel)
        self.counterparties = counterparties_pb2_grpc.CounterpartyServiceStub(channel)
        self.md = md

    async def connect(self, key: str, **kwargs: Any) -> cpb.Connection:
        return await self.connections.CreateConnection(
            cpb.CreateConnectionRequest(provider="yooz", api_key=key, **kwargs), metadata=self.md
        )

    async def poll(self, connection_id: str) -> cpb.Connection:
        return await self.connections.PollConnection(
            cpb.PollConnectionRequest(id=connection_id), metadata=self.md
        )

    async def get(self, connection_id: str) -> cpb.Connection:
        return await self.connections.GetConnection(
            cpb.GetConnectionRequest(id=connection_id), metadata=self.md
        )

    async def ingested(self, filter_: str = "") -> list[ipb.Invoice]:
        found: list[ipb.Invoice] = []
        cursor = ""
        while True:
            listed = await self.invoices.ListInvoices(
                ipb.ListInvoicesRequest(
                    filter=f'external_provider = "yooz"{" AND " + filter_ if filter_ else ""}',
                    limit=200,
                    order_by="created_at",
                    direction="asc",
                    cursor=cursor,
                ),
                metadata=self.md,
            )
            found += listed.data
            cursor = listed.next_cursor
            if not cursor:
                return found


@pytest.fixture
def api(ch: grpc.aio.Channel, tokens: Tokens) -> Api:
    return Api(ch, tokens.md(uuid.uuid4()))


def key() -> str:
    return f"yz_test_{uuid.uuid4().hex}"


async def test_a_poll_follows_every_page_and_a_second_poll_changes_nothing(
    api: Api, standin: StandIn, admin: asyncpg.Connection
) -> None:
    account = key()
    standin.put(account, *(sample_document(i) for i in range(250)))  # 3 pages of 100
    connection = await api.connect(account)
    polled = await api.poll(connection.id)
    summary = polled.last_poll
    assert (summary.pages, summary.created, summary.updated, summary.skipped) == (3, 250, 0, 0)
    assert summary.finished_at.seconds > 0 and polled.last_polled_at.seconds > 0
    assert polled.state == cpb.CONNECTION_STATE_OK and polled.consecutive_failures == 0
    assert polled.next_poll_at.seconds > polled.last_polled_at.seconds
    invoices = await api.ingested()
    assert len(invoices) == 250
    first = invoices[0]
    assert first.type == ipb.INVOICE_TYPE_SUPPLIER and first.status == ipb.INVOICE_STATUS_DRAFT
    assert first.source == "yooz" and first.source_type == common_pb2.SOURCE_TYPE_SYSTEM
    assert first.external.provider == "yooz" and first.external.id == "yz_doc_000000"
    assert (first.subtotal, first.tax_amount, first.total) == ("4.20", "0.84", "5.04")
    assert first.document_ref.endswith("yz_doc_000000.pdf")
    assert first.review_reason == ""
    # Every invoice came in through the connection (provenance), once.
    rows = await admin.fetchval(
        "SELECT count(*) FROM invoice_provenances WHERE connection_id = $1 AND direction = 'input'",
        ids.decode_id(connection.id, "con", "id"),
    )
    assert rows == 250
    again = await api.poll(connection.id)
    assert (again.last_poll.pages, again.last_poll.created, again.last_poll.unchanged) == (1, 0, 0)
    assert len(await api.ingested()) == 250


async def test_updates_apply_to_drafts_only_and_rejections_remove_them(
    api: Api, standin: StandIn
) -> None:
    account = key()
    docs = [sample_document(i) for i in range(3)]
    standin.put(account, *docs)
    # The third document's supplier is a counterparty: its invoice can be issued.
    await api.counterparties.CreateCounterparty(
        kpb.CreateCounterpartyRequest(
            counterparty=kpb.Counterparty(name="Imprimerie", siret="44231509000013")
        ),
        metadata=api.md,
    )
    connection = await api.connect(account)
    await api.poll(connection.id)
    invoices = {i.external.id: i for i in await api.ingested()}
    issued = await api.invoices.IssueInvoice(
        ipb.IssueInvoiceRequest(id=invoices["yz_doc_000002"].id), metadata=api.md
    )
    assert issued.status == ipb.INVOICE_STATUS_ISSUED
    later = "2026-11-25T10:00:00Z"
    changed = dict(docs[0], updated_at=later, number="F-2026-CHANGED")
    rejected = dict(docs[1], updated_at=later, status="rejected")
    after_issue = dict(docs[2], updated_at=later, number="F-2026-LATE")
    standin.put(account, changed, rejected, after_issue)
    polled = await api.poll(connection.id)
    assert (polled.last_poll.updated, polled.last_poll.skipped) == (2, 1)
    now = {i.external.id: i for i in await api.ingested()}
    assert now["yz_doc_000000"].number == "F-2026-CHANGED"
    assert "yz_doc_000001" not in now  # its draft was deleted
    assert now["yz_doc_000002"].number == issued.number  # issued: not rewritten
    assert "after the invoice was issued" in now["yz_doc_000002"].review_reason
    # An older or equal updated_at is not applied again.
    standin.put(account, dict(docs[0], updated_at="2026-11-21T00:00:00Z", number="OLD"))
    await api.poll(connection.id)
    assert {i.external.id: i for i in await api.ingested()}["yz_doc_000000"].number == (
        "F-2026-CHANGED"
    )


async def test_totals_that_disagree_are_kept_and_flagged(api: Api, standin: StandIn) -> None:
    account = key()
    off = sample_document(7, total_excluding_tax="99.00", tax_amount="19.80", total="118.80")
    broken = sample_document(8, total="1.00")  # does not even add up
    standin.put(account, off, broken)
    connection = await api.connect(account)
    await api.poll(connection.id)
    got = {i.external.id: i for i in await api.ingested("review_required = true")}
    kept = got[off["id"]]
    assert (kept.subtotal, kept.tax_amount, kept.total) == ("99.00", "19.80", "118.80")
    assert "disagree" in kept.review_reason and "figures are kept" in kept.review_reason
    assert kept.external.total == "118.80"
    fallback = got[broken["id"]]
    assert fallback.external.total == "1.00" and "do not add up" in fallback.review_reason
    assert fallback.total != "1.00"


async def test_suppliers_are_matched_by_siret_then_siren(api: Api, standin: StandIn) -> None:
    make = api.counterparties.CreateCounterparty
    head = await make(
        kpb.CreateCounterpartyRequest(
            counterparty=kpb.Counterparty(name="Dupont HQ", siret="73282932000074")
        ),
        metadata=api.md,
    )
    account = key()
    standin.put(
        account,
        sample_document(0),  # Dupont's exact SIRET
        sample_document(3, supplier={"name": "Dupont", "siren": "732829320"}),  # SIREN only
        sample_document(1),  # La Poste: no counterparty yet
        sample_document(4, supplier={"name": "Bad", "siret": "73282932000075"}),  # bad check
        sample_document(5, supplier={"name": "Nobody"}),
    )
    connection = await api.connect(account)
    await api.poll(connection.id)
    got = {i.external.id: i for i in await api.ingested()}
    exact, by_siren = got["yz_doc_000000"], got["yz_doc_000003"]
    assert exact.supplier_match.status == ipb.MATCH_STATUS_MATCHED
    assert exact.counterparty_id == head.id and exact.supplier_match.reason == "SIRET"
    assert by_siren.counterparty_id == head.id and by_siren.supplier_match.reason == "SIREN"
    poste = got["yz_doc_000001"]
    assert poste.supplier_match.status == ipb.MATCH_STATUS_UNMATCHED and not poste.counterparty_id
    bad = got["yz_doc_000004"]
    assert bad.supplier_match.status == ipb.MATCH_STATUS_UNMATCHED
    assert "fails its check" in bad.supplier_match.reason and bad.supplier_match.siret
    assert got["yz_doc_000005"].supplier_match.status == ipb.MATCH_STATUS_UNMATCHED
    unmatched = await api.ingested("match_status = UNMATCHED")
    assert {i.external.id for i in unmatched} == {"yz_doc_000001", "yz_doc_000004", "yz_doc_000005"}


async def test_provider_failures_back_off_and_refused_keys_wait_for_a_new_one(
    api: Api, standin: StandIn
) -> None:
    account = key()
    standin.put(account, sample_document(0))
    connection = await api.connect(account)
    standin.fail(account, 503)
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await api.poll(connection.id)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    state = await api.get(connection.id)
    assert state.state == cpb.CONNECTION_STATE_FAILING and state.consecutive_failures == 1
    assert state.last_error == "the provider failed (503)" and not state.last_polled_at.seconds
    assert state.next_poll_at.seconds > 0
    standin.fail(account, 429, retry_after="120")
    with pytest.raises(grpc.aio.AioRpcError):
        await api.poll(connection.id)
    state = await api.get(connection.id)
    assert state.consecutive_failures == 2 and "429" in state.last_error
    wait = state.next_poll_at.seconds - state.last_error_at.seconds
    assert 115 <= wait <= 125  # Retry-After honoured
    recovered = await api.poll(connection.id)
    assert recovered.state == cpb.CONNECTION_STATE_OK and recovered.consecutive_failures == 0
    assert recovered.last_error  # kept as history
    # A refused key: waiting for new credentials, not retried, and the body never kept.
    standin.fail(account, 401)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await api.poll(connection.id)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    state = await api.get(connection.id)
    assert state.state == cpb.CONNECTION_STATE_NEEDS_CREDENTIALS
    assert not state.next_poll_at.seconds and account not in state.last_error
    with pytest.raises(grpc.aio.AioRpcError) as waiting:
        await api.poll(connection.id)
    assert waiting.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # A new key ends the wait.
    rotated = await api.connections.UpdateConnection(
        cpb.UpdateConnectionRequest(id=connection.id, api_key=account), metadata=api.md
    )
    assert rotated.state == cpb.CONNECTION_STATE_OK
    assert (await api.poll(connection.id)).state == cpb.CONNECTION_STATE_OK


async def test_an_unknown_key_answered_401_never_reaches_state_or_logs(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    secret = f"yz_canary_{uuid.uuid4().hex}"  # the stand-in has no such account: 401
    connection = await api.connect(secret)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await api.poll(connection.id)
    assert secret not in repr(refused.value)
    state = await api.get(connection.id)
    assert state.state == cpb.CONNECTION_STATE_NEEDS_CREDENTIALS
    assert secret not in str(state) and secret not in caplog.text


async def test_deleted_or_disabled_connections_are_not_polled(api: Api, standin: StandIn) -> None:
    account = key()
    standin.put(account, sample_document(0))
    connection = await api.connect(account)
    await api.connections.UpdateConnection(
        cpb.UpdateConnectionRequest(id=connection.id, active=False), metadata=api.md
    )
    with pytest.raises(grpc.aio.AioRpcError) as inactive:
        await api.poll(connection.id)
    assert inactive.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await api.connections.DeleteConnection(
        cpb.DeleteConnectionRequest(id=connection.id), metadata=api.md
    )
    with pytest.raises(grpc.aio.AioRpcError) as deleted:
        await api.poll(connection.id)
    assert deleted.value.code() == grpc.StatusCode.NOT_FOUND
    assert standin.account(account).requests == 0


async def test_the_worker_polls_due_connections(api: Api, standin: StandIn, running: Any) -> None:
    account = key()
    standin.put(account, *(sample_document(i) for i in range(120)))
    connection = await api.connect(account)  # due at once
    from service.connections import service as connections_service
    from service.ingestion.module import MODULE as INGESTION

    [poll] = [t for t in INGESTION.tasks if t.name == connections_service.POLL_TASK]
    runner = Runner(running.runtime, [poll], owner="test-poller", batch=200)
    for _ in range(60):  # pages are due again at once; other tests' connections too
        await runner.run_once()
        if len(await api.ingested()) == 120:
            break
    assert len(await api.ingested()) == 120
    state = await api.get(connection.id)
    assert state.last_poll.pages == 2 and state.last_poll.created == 120


# ---- a worker killed between pages ---------------------------------------------------------


async def test_a_worker_killed_between_pages_loses_nothing_and_applies_nothing_twice(
    api: Api, database: Database, data_dir: Path, admin: asyncpg.Connection
) -> None:
    slow = StandIn(delay_s=0.4).start()  # each page takes 0.4 s: time to kill mid-poll
    try:
        account = key()
        slow.put(account, *(sample_document(i) for i in range(1000)))  # 10 pages
        # A connection of this stand-in: the worker processes get its URL.
        connection = await api.connect(account)
        env = {
            **os.environ,
            "DATABASE_URL": database.app_url,
            "DATA_DIR": str(data_dir),
            "WORKER_IDLE_MS": "50",
            "LOG_LEVEL": "WARNING",
            "YOOZ_BASE_URL": slow.url,
            "PYTHONPATH": f"{ROOT}:{ROOT / 'generated'}",
        }

        async def worker() -> asyncio.subprocess.Process:
            return await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "service.worker",
                cwd=ROOT,
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )

        first = await worker()
        tenant = await admin.fetchval(
            "SELECT tenant_id FROM connections WHERE id = $1",
            ids.decode_id(connection.id, "con", "id"),
        )
        count = "SELECT count(*) FROM invoices WHERE tenant_id = $1 AND external_id IS NOT NULL"
        while await admin.fetchval(count, tenant) < 300:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        first.send_signal(signal.SIGKILL)  # mid-poll: some pages committed, one in flight
        await first.wait()
        partial = await admin.fetchval(count, tenant)
        assert 300 <= partial < 1000
        # Its lease expires (2 minutes) before another worker may take the item: make it due.
        await admin.execute(
            "UPDATE work_items SET lease_expires_at = now() WHERE task = 'connections.poll'"
            " AND key = $1",
            str(ids.decode_id(connection.id, "con", "id")),
        )
        second = await worker()
        try:
            for _ in range(400):
                if await admin.fetchval(count, tenant) == 1000:
                    break
                await asyncio.sleep(0.05)
        finally:
            second.send_signal(signal.SIGTERM)
            await second.wait()
        assert await admin.fetchval(count, tenant) == 1000
        distinct = await admin.fetchval(
            "SELECT count(DISTINCT external_id) FROM invoices WHERE tenant_id = $1", tenant
        )
        assert distinct == 1000
        provenance = await admin.fetchval(
            "SELECT count(*) FROM invoice_provenances WHERE tenant_id = $1", tenant
        )
        assert provenance == 1000
        print(
            f"\ncrash mid-poll: killed after {partial} of 1000 documents; the second worker "
            f"finished the poll: 1000 invoices, 1000 provenance rows, none twice"
        )
    finally:
        slow.stop()


async def test_a_contractor_created_or_corrected_later_matches_waiting_invoices(
    api: Api, standin: StandIn
) -> None:
    account = key()
    standin.put(account, sample_document(1))  # La Poste
    connection = await api.connect(account)
    await api.poll(connection.id)
    assert len(await api.ingested("match_status = UNMATCHED")) == 1
    make = api.counterparties.CreateCounterparty
    poste = await make(
        kpb.CreateCounterpartyRequest(
            counterparty=kpb.Counterparty(name="La Poste", siret="35600000049837")
        ),
        metadata=api.md,
    )
    got = {i.external.id: i for i in await api.ingested()}
    assert got["yz_doc_000001"].supplier_match.status == ipb.MATCH_STATUS_MATCHED
    assert got["yz_doc_000001"].counterparty_id == poste.id
    # Two establishments of one SIREN, no head office: ambiguous; marking one fixes it.
    first = await make(
        kpb.CreateCounterpartyRequest(
            counterparty=kpb.Counterparty(name="Imprimerie Nord", siret="44231509000021")
        ),
        metadata=api.md,
    )
    await make(
        kpb.CreateCounterpartyRequest(
            counterparty=kpb.Counterparty(name="Imprimerie Sud", siret="44231509000039")
        ),
        metadata=api.md,
    )
    standin.put(account, sample_document(2, updated_at=datetime(2027, 1, 1, tzinfo=UTC)))
    await api.poll(connection.id)  # Imprimerie's third establishment: SIREN only
    waiting = {i.external.id: i for i in await api.ingested()}["yz_doc_000002"]
    assert waiting.supplier_match.status == ipb.MATCH_STATUS_AMBIGUOUS
    await api.counterparties.UpdateCounterparty(
        kpb.UpdateCounterpartyRequest(
            counterparty=kpb.Counterparty(id=first.id, head_office=True),
            update_mask={"paths": ["head_office"]},
        ),
        metadata=api.md,
    )
    matched = {i.external.id: i for i in await api.ingested()}["yz_doc_000002"]
    assert matched.supplier_match.status == ipb.MATCH_STATUS_MATCHED
    assert matched.counterparty_id == first.id


async def test_three_workers_over_300_connections_poll_each_once_per_interval(
    tokens: Tokens, ch: grpc.aio.Channel, database: Database, data_dir: Path
) -> None:
    """Three worker processes, 300 connections, a 2 s interval: measured by the stand-in,
    no connection is ever polled by two at once, and each is polled once per interval."""
    standin = StandIn(delay_s=0.05).start()
    interval = 2.0
    try:
        stubs = connections_pb2_grpc.ConnectionServiceStub(ch)
        accounts = [key() for _ in range(300)]

        async def connect(account: str) -> None:
            standin.put(account, sample_document(0))
            await stubs.CreateConnection(
                cpb.CreateConnectionRequest(provider="yooz", api_key=account),
                metadata=tokens.md(uuid.uuid4()),
            )

        await asyncio.gather(*(connect(a) for a in accounts))
        env = {
            **os.environ,
            "DATABASE_URL": database.app_url,
            "DATA_DIR": str(data_dir),
            "WORKER_IDLE_MS": "50",
            "WORKER_BATCH": "20",
            "LOG_LEVEL": "WARNING",
            "YOOZ_BASE_URL": standin.url,
            "POLL_INTERVAL_S": str(int(interval)),
            "PYTHONPATH": f"{ROOT}:{ROOT / 'generated'}",
        }
        workers = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "service.worker",
                cwd=ROOT,
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            for _ in range(3)
        ]
        started = time.monotonic()

        def least_polled() -> int:
            return min(len(standin.account(a).polls) for a in accounts)

        # At least 8 s; longer (up to 40 s) when a loaded machine (CI, a parallel suite)
        # starts the workers late: liveness is "every connection polled twice", the rate
        # bound below is checked against the time actually elapsed.
        for _ in range(160):
            waited = time.monotonic() - started
            if waited >= 40 or (waited >= 8.0 and least_polled() >= 2):
                break
            await asyncio.sleep(0.25)
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            await worker.wait()
        elapsed = time.monotonic() - started
        polls = [standin.account(a).polls for a in accounts]
        overlaps = [standin.account(a).most_in_flight for a in accounts]
        assert max(overlaps) == 1, "a connection was polled by two workers at once"
        counts = [len(p) for p in polls]
        assert min(counts) >= 2, sorted(counts)[:5]
        assert max(counts) <= elapsed / (interval * 0.9) + 1, sorted(counts)[-5:]
        gaps = [b - a for p in polls for a, b in itertools.pairwise(p)]
        assert min(gaps) >= interval * 0.9 - 0.3, min(gaps)
        print(
            f"\n3 workers, 300 connections, {interval:g} s interval, {elapsed:.1f} s: polls per "
            f"connection {min(counts)}..{max(counts)} (mean {sum(counts) / len(counts):.2f}), "
            f"gap between polls of one connection >= {min(gaps):.2f} s, at most "
            f"{max(overlaps)} poll of one connection in flight"
        )
    finally:
        standin.stop()
