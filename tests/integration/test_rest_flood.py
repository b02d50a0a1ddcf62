"""The REST port cannot stop the service: header deadline, header size cap, connection
cap, idle timeout; and gRPC keeps answering while an unauthenticated client floods the
REST port of the same process (tests/tools/flood.py, its own process)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import psutil
import pytest
from invoicing.v1 import invoices_pb2 as ipb
from invoicing.v1 import invoices_pb2_grpc

from service import app
from service.kit import config
from tests.conftest import Database, Tokens, sample_invoice

ROOT = Path(__file__).resolve().parents[2]
CAP = 200


@pytest.fixture(scope="module")
async def guarded(settings: config.Settings, database: Database) -> AsyncIterator[app.Running]:
    tight = dataclasses.replace(
        settings,
        gateway_max_connections=CAP,
        gateway_header_timeout_seconds=1,
        gateway_idle_timeout_seconds=1,
        gateway_max_header_bytes=8192,
        worker_enabled=False,
    )
    running = await app.start(tight, database.app_url)
    yield running
    await app.stop(running, grace=1)


async def _open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _status(reader: asyncio.StreamReader, within: float = 5) -> int:
    line = await asyncio.wait_for(reader.readline(), within)
    return int(line.split()[1]) if line else 0


async def _closed(reader: asyncio.StreamReader, within: float = 5) -> bool:
    try:
        while await asyncio.wait_for(reader.read(65536), within):
            pass
    except ConnectionError:
        return True
    return True


async def test_a_header_over_the_cap_is_431_and_the_connection_closed(
    guarded: app.Running,
) -> None:
    reader, writer = await _open(guarded.gateway_port)
    writer.write(b"GET /v1/invoices HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 20_000)
    await writer.drain()
    assert await _status(reader) == 431
    assert await _closed(reader)
    writer.close()


async def test_sixteen_endless_8mb_headers_are_cut_off_early(guarded: app.Running) -> None:
    server = psutil.Process(os.getpid())
    before = server.memory_info().rss

    async def endless() -> tuple[int, int]:
        reader, writer = await _open(guarded.gateway_port)
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: ")
        sent = 0
        try:
            while sent < 8 * 2**20:
                writer.write(b"a" * 65536)
                await writer.drain()
                sent += 65536
        except ConnectionError:
            pass
        try:
            status = await _status(reader)
        except ConnectionError:
            status = 0  # reset: the server closed with our bytes unread, its 431 lost
        writer.close()
        return status, sent

    results = await asyncio.gather(*(endless() for _ in range(16)))
    grown_mb = (server.memory_info().rss - before) / 2**20
    print(f"16 x 8 MB headers: statuses {sorted({s for s, _ in results})}, RSS +{grown_mb:.1f} MB")
    assert all(status in (431, 0) for status, _ in results)
    assert all(sent < 8 * 2**20 for _, sent in results)  # closed long before 8 MB


async def test_a_slow_header_gets_408_at_the_deadline(guarded: app.Running) -> None:
    reader, writer = await _open(guarded.gateway_port)
    started = time.monotonic()
    writer.write(b"GET /v1/invoices HTTP/1.1\r\nHost: t\r\n")
    await writer.drain()

    async def trickle() -> None:  # the deadline is for the whole header, not for a gap
        with contextlib.suppress(ConnectionError):
            for _ in range(10):
                await asyncio.sleep(0.3)
                writer.write(b"X: y\r\n")
                await writer.drain()

    trickling = asyncio.create_task(trickle())
    assert await _status(reader) == 408
    await trickling
    assert 0.9 < time.monotonic() - started < 3
    writer.close()


async def test_a_silent_connection_is_closed_at_the_deadline(guarded: app.Running) -> None:
    reader, writer = await _open(guarded.gateway_port)
    assert await _status(reader) == 408
    writer.close()


async def test_an_idle_keep_alive_connection_is_closed(
    guarded: app.Running, tokens: Tokens
) -> None:
    reader, writer = await _open(guarded.gateway_port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    await writer.drain()
    assert await _status(reader) == 200
    started = time.monotonic()
    assert await _closed(reader, within=5)
    assert time.monotonic() - started < 3


async def test_connections_beyond_the_cap_get_503_at_once(guarded: app.Running) -> None:
    held = [await _open(guarded.gateway_port) for _ in range(CAP)]
    try:
        reader, writer = await _open(guarded.gateway_port)
        assert await _status(reader, within=2) == 503
        writer.close()
    finally:
        for _, writer in held:
            writer.close()
    await asyncio.sleep(0.2)
    reader, writer = await _open(guarded.gateway_port)  # room again
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    assert await _status(reader) == 200
    writer.close()


async def _probe(
    stub: invoices_pb2_grpc.InvoiceServiceStub, md: object, invoice_id: str, seconds: float
) -> tuple[list[float], list[str]]:
    latencies: list[float] = []
    failures: list[str] = []
    until = time.monotonic() + seconds

    async def loop() -> None:
        while time.monotonic() < until:
            started = time.monotonic()
            try:
                await stub.GetInvoice(ipb.GetInvoiceRequest(id=invoice_id), metadata=md, timeout=5)
            except grpc.aio.AioRpcError as err:
                failures.append(err.code().name)
                continue
            latencies.append(time.monotonic() - started)

    await asyncio.gather(*(loop() for _ in range(8)))
    return latencies, failures


def _ms(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


async def test_grpc_keeps_answering_while_the_rest_port_is_flooded(
    guarded: app.Running, tokens: Tokens
) -> None:
    md = tokens.md(uuid.uuid4())
    async with grpc.aio.insecure_channel(f"127.0.0.1:{guarded.port}") as channel:
        stub = invoices_pb2_grpc.InvoiceServiceStub(channel)
        invoice = await stub.CreateInvoice(
            ipb.CreateInvoiceRequest(invoice=sample_invoice()), metadata=md
        )
        quiet, quiet_failures = await _probe(stub, md, invoice.id, 3)
        flood = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.tools.flood",
            "--port",
            str(guarded.gateway_port),
            "--connections",
            "3000",
            "--seconds",
            "6",
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.PIPE,
        )
        await asyncio.sleep(1)  # let the flood reach its connection count
        server = psutil.Process(os.getpid())
        descriptors = server.num_fds()
        loud, loud_failures = await _probe(stub, md, invoice.id, 4)
        out, _ = await flood.communicate()
    answered = json.loads(out.decode().strip().splitlines()[-1])
    print(
        f"gRPC GetInvoice, 8 in flight: quiet p50 {_ms(quiet, 50):.1f} ms p99 "
        f"{_ms(quiet, 99):.1f} ms ({len(quiet)} calls); during a 3,000-connection flood "
        f"p50 {_ms(loud, 50):.1f} ms p99 {_ms(loud, 99):.1f} ms ({len(loud)} calls); "
        f"process descriptors during the flood {descriptors}; flood saw {answered}"
    )
    assert quiet_failures == [] and loud_failures == []
    assert len(loud) > 0
    assert answered.get("503", 0) > 0  # the cap turned the rest away
    assert descriptors < CAP + 1000  # bounded by the cap, not by the flood
