"""The README's ingestion walkthrough, run verbatim with bash against a service whose
YOOZ_BASE_URL is the sandbox stand-in (sandbox/yooz.py, as `make sandbox` starts it).

Substitutions: the `make run` REST address and the sandbox's (`127.0.0.1:8080`,
`127.0.0.1:8090`) become the test's, and `TOKEN=$(make -s token | tail -1)` a token of a
fresh tenant. Then the worker applies the pushed webhook, as `make run`'s would.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from invoicing.v1 import invoices_pb2 as ipb
from invoicing.v1 import invoices_pb2_grpc

from sandbox.yooz import StandIn, sample_document
from service import app
from service.ingestion.module import MODULE as INGESTION
from service.kit import config
from service.worker.runner import Runner
from tests.conftest import Database, Tokens
from tests.integration.test_readme_connections import values
from tests.integration.test_readme_curl import TOKEN_LINE, run_block

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- ingestion-examples:start -->", "<!-- ingestion-examples:end -->"


def block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(START) + len(START) : text.index(END)]
    [found] = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    return str(found)


@pytest.fixture
async def sandboxed(
    data_dir: Path, database: Database
) -> AsyncIterator[tuple[app.Running, StandIn]]:
    standin = StandIn().start()
    standin.put("yz_sandbox_key", *(sample_document(i) for i in range(3)))  # as `make sandbox`
    settings = config.load(
        {
            "DATA_DIR": str(data_dir),
            "GRPC_PORT": "0",
            "GATEWAY_PORT": "0",
            "LOG_LEVEL": "WARNING",
            "WORKER_ENABLED": "false",
            "YOOZ_BASE_URL": standin.url,
        }
    )
    server = await app.start(settings, database.app_url)
    yield server, standin
    await app.stop(server, grace=1)
    standin.stop()


async def test_readme_ingestion_walkthrough_runs_verbatim(
    sandboxed: tuple[app.Running, StandIn], tokens: Tokens
) -> None:
    server, standin = sandboxed
    tenant = uuid.uuid4()
    script = block()
    assert TOKEN_LINE in script and "127.0.0.1:8090" in script
    script = script.replace(TOKEN_LINE, f"TOKEN='{tokens.token(tenant)}'")
    script = script.replace("127.0.0.1:8080", f"127.0.0.1:{server.gateway_port}")
    script = script.replace("http://127.0.0.1:8090", standin.url)
    out = values(await run_block(script))
    counterparty, s1, connection, s2, polled, s3, listed, s4, pushed, s5 = out
    assert (s1, s2, s3, s4, s5) == (201, 201, 200, 200, 200), out
    assert counterparty["siret"] == "73282932000074" and counterparty["siren"] == "732829320"
    assert connection["state"] == "CONNECTION_STATE_OK"
    assert polled["last_poll"]["created"] == 3 and polled["last_poll"]["pages"] == 1
    invoices = listed["data"]
    assert [i["external"]["id"] for i in invoices] == [
        "yz_doc_000000",
        "yz_doc_000001",
        "yz_doc_000002",
    ]
    statuses = [i["supplier_match"]["status"] for i in invoices]
    assert statuses == ["MATCH_STATUS_MATCHED", "MATCH_STATUS_UNMATCHED", "MATCH_STATUS_UNMATCHED"]
    assert invoices[0]["counterparty_id"] == counterparty["id"]
    assert pushed == {"status": 202}
    # The worker applies the stored webhook.
    runner = Runner(
        server.runtime,
        [t for t in INGESTION.tasks if t.name == "ingestion.webhooks"],
        owner="readme",
        batch=50,
    )
    await runner.run_once()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = invoices_pb2_grpc.InvoiceServiceStub(channel)
        got = await stub.ListInvoices(
            ipb.ListInvoicesRequest(filter='external_id = "yz_doc_push_1"'),
            metadata=tokens.md(tenant),
        )
    [pushed_invoice] = got.data
    assert pushed_invoice.counterparty_id == counterparty["id"]
    assert pushed_invoice.total == "72.00"
