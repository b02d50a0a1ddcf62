"""The heavy-rpc bulkhead: lists queue among themselves, cheap calls never wait for them.

The real pipeline (authentication, decoding, deadline) runs a test servicer whose lists
block until released, so the number running at once is observed, not timed.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from google.protobuf import empty_pb2
from google.rpc import code_pb2
from invoicing.v1 import invoices_pb2

from service.edge.modules import policies
from service.edge.pipeline import Call, Method, Pipeline, RpcFailure
from service.kit import auth, config

SERVICE = invoices_pb2.DESCRIPTOR.services_by_name["InvoiceService"]


class _Servicer:
    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.release = asyncio.Event()

    async def ListInvoices(self, request: object, call: Call) -> empty_pb2.Empty:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await self.release.wait()
        finally:
            self.running -= 1
        return empty_pb2.Empty()

    async def GetInvoice(self, request: object, call: Call) -> empty_pb2.Empty:
        return empty_pb2.Empty()


def _setup(tmp_path: Path, limit: int) -> tuple[Pipeline, _Servicer, dict[str, Method], str]:
    settings = config.load({"DATA_DIR": str(tmp_path)})
    pipeline = Pipeline(
        auth.Authenticator(key=auth.load_key(settings), settings=settings),
        {},
        heavy_concurrency=limit,
    )
    servicer = _Servicer()
    rpcs = policies(
        SERVICE, read="invoices.read", write="invoices.write", only=["ListInvoices", "GetInvoice"]
    )
    methods = {
        name: Method(
            f"/invoicing.v1.InvoiceService/{name}",
            name,
            rpcs[name],
            empty_pb2.Empty,
            empty_pb2.Empty,
            getattr(servicer, name),
        )
        for name in rpcs
    }
    token = auth.mint_dev_token(settings, tenant_id=uuid.uuid4(), permissions=["invoices.read"])
    return pipeline, servicer, methods, f"Bearer {token}"


def _call(method: Method, bearer: str, deadline: float | None = None) -> Call:
    return Call(method, {"authorization": bearer}, "grpc", deadline=deadline)


def test_lists_and_queries_are_heavy_and_the_rest_are_not() -> None:
    rpcs = policies(SERVICE, read="r", write="w")
    heavy = sorted(name for name, rpc in rpcs.items() if rpc.heavy)
    assert heavy == sorted(n for n in rpcs if n.startswith(("List", "Query")))
    assert "ListInvoices" in heavy
    assert not rpcs["GetInvoice"].heavy
    assert not rpcs["CreateInvoice"].heavy


@pytest.mark.parametrize("limit", [1, 3])
async def test_at_most_the_limit_of_lists_run_and_gets_pass_them(
    tmp_path: Path, limit: int
) -> None:
    pipeline, servicer, methods, bearer = _setup(tmp_path, limit)
    lists = [
        asyncio.ensure_future(pipeline.run(_call(methods["ListInvoices"], bearer), b""))
        for _ in range(10)
    ]
    for _ in range(20):
        await asyncio.sleep(0)
    assert servicer.running == limit
    # A get is served at once while every list slot is taken.
    got = await asyncio.wait_for(pipeline.run(_call(methods["GetInvoice"], bearer), b""), 1)
    assert got == empty_pb2.Empty()
    servicer.release.set()
    assert len(await asyncio.gather(*lists)) == 10
    assert servicer.most == limit


async def test_no_limit_when_zero(tmp_path: Path) -> None:
    pipeline, servicer, methods, bearer = _setup(tmp_path, 0)
    lists = [
        asyncio.ensure_future(pipeline.run(_call(methods["ListInvoices"], bearer), b""))
        for _ in range(10)
    ]
    for _ in range(20):
        await asyncio.sleep(0)
    assert servicer.running == 10
    servicer.release.set()
    await asyncio.gather(*lists)


async def test_a_list_waiting_for_a_slot_still_ends_at_its_deadline(tmp_path: Path) -> None:
    pipeline, servicer, methods, bearer = _setup(tmp_path, 1)
    first = asyncio.ensure_future(pipeline.run(_call(methods["ListInvoices"], bearer), b""))
    for _ in range(10):
        await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    waiting = _call(methods["ListInvoices"], bearer, deadline=loop.time() + 0.05)
    with pytest.raises(RpcFailure) as failure:
        await pipeline.run(waiting, b"")
    assert failure.value.status.code == code_pb2.DEADLINE_EXCEEDED
    assert servicer.most == 1
    servicer.release.set()
    await first
