"""The README's curl examples, run verbatim with bash against the in-process REST gateway.

The block between `<!-- curl-examples:start -->` and `<!-- curl-examples:end -->` in README.md
is executed as written, with exactly two substitutions:

- `127.0.0.1:8080` (the `make run` gateway address) -> the test gateway's address;
- `TOKEN=$(make -s token | tail -1)` -> `TOKEN='<jwt>'`, a token minted for the test's own
  tenant with the test server's dev secret (the `make token` of the test settings' data dir;
  running make here would use the default data dir and the default tenant instead).

Every curl prints the response body on one line and the HTTP status on the next, so the
output is read as (body, status) pairs, one per step, and each is checked.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
from invoicing.v1 import invoices_pb2 as pb
from invoicing.v1 import invoices_pb2_grpc

from service import app
from service.kit import config
from tests.conftest import Tokens, sample_invoice

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- curl-examples:start -->", "<!-- curl-examples:end -->"
MAKE_ADDRESS = "127.0.0.1:8080"
TOKEN_LINE = "TOKEN=$(make -s token | tail -1)"
STEPS = (
    "create",
    "get",
    "list page 1",
    "list page 2",
    "patch notes",
    "issue",
    "issue retried",
    "fx rate",
    "pay in usd",
    "allocations",
    "records query",
    "error",
)


def curl_block() -> str:
    """The ```sh block between the markers (exactly one)."""
    text = README.read_text(encoding="utf-8")
    assert text.count(START) == 1 and text.count(END) == 1, "README curl markers"
    section = text[text.index(START) + len(START) : text.index(END)]
    blocks = re.findall(r"```(?:sh|bash|shell)\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1, "one ```sh block between the curl-examples markers"
    return str(blocks[0])


def test_curl_block_is_written_for_make_run() -> None:
    block = curl_block()
    assert block.count(TOKEN_LINE) == 1
    assert MAKE_ADDRESS in block
    hosts = set(re.findall(r"https?://([^/\s\"']+)", block))
    assert hosts == {MAKE_ADDRESS}, hosts
    for needed in (
        "POST",
        "PATCH",
        "Idempotency-Key",
        "cursor",
        "filter",
        "inv_nope",
        ":pay",
        "/v1/allocations",
        "/v1/records/query",
    ):
        assert needed in block, needed


async def run_block(script: str, limit_s: float = 60) -> str:
    """bash -euo pipefail; async, so the session loop keeps serving the gateway meanwhile."""
    bash = shutil.which("bash")
    assert bash and shutil.which("curl") and shutil.which("python3"), "bash, curl, python3"
    process = await asyncio.create_subprocess_exec(
        bash,
        "-euo",
        "pipefail",
        "-c",
        script,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ),
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), limit_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, stderr.decode()
    return stdout.decode()


def steps(output: str) -> list[tuple[dict[str, Any], int]]:
    lines = output.splitlines()
    assert len(lines) == 2 * len(STEPS), output
    pairs = [(json.loads(lines[i]), int(lines[i + 1])) for i in range(0, len(lines), 2)]
    return pairs


async def test_readme_curl_examples_run_verbatim(
    server: app.Running,
    tokens: Tokens,
    tenant: uuid.UUID,
    invoices: invoices_pb2_grpc.InvoiceServiceStub,
    md: tuple[tuple[str, str], ...],
) -> None:
    assert server.gateway_port, "the test settings start the REST gateway in-process"
    # One older matching draft, so that the filtered one-per-page list has a second page.
    older = await invoices.CreateInvoice(
        pb.CreateInvoiceRequest(invoice=sample_invoice(tags=["consulting"])), metadata=md
    )

    script = curl_block()
    script = script.replace(TOKEN_LINE, f"TOKEN='{tokens.token(tenant)}'")
    script = script.replace(MAKE_ADDRESS, f"127.0.0.1:{server.gateway_port}")
    results = dict(zip(STEPS, steps(await run_block(script)), strict=True))

    created, status = results["create"]
    assert status == 201, created
    assert created["id"].startswith("inv_")
    assert created["tenant_id"] == str(tenant)
    assert created["status"] == "INVOICE_STATUS_DRAFT"
    assert created["direction"] == "INVOICE_DIRECTION_RECEIVABLE"
    assert (created["subtotal"], created["tax_amount"], created["total"]) == (
        "1200.00",
        "240.00",
        "1440.00",
    )
    assert created["tags"] == ["consulting"]

    got, status = results["get"]
    assert status == 200 and got == created

    first, status = results["list page 1"]
    assert status == 200, first
    assert first["total"] == 2
    assert [i["id"] for i in first["data"]] == [created["id"]]  # newest first
    assert first["next_cursor"]
    second, status = results["list page 2"]
    assert status == 200, second
    assert second["total"] == 2
    assert [i["id"] for i in second["data"]] == [older.id]
    assert second["next_cursor"] == ""

    patched, status = results["patch notes"]
    assert status == 200, patched
    assert patched["notes"] == "Payment within 30 days"
    unchanged = {k: v for k, v in created.items() if k not in ("notes", "updated_at", "etag")}
    assert {k: patched[k] for k in unchanged} == unchanged

    issued, status = results["issue"]
    assert status == 200, issued
    assert issued["id"] == created["id"]
    assert issued["status"] == "INVOICE_STATUS_ISSUED"
    assert re.fullmatch(r"INV-\d{4}-0001", issued["number"]), issued["number"]
    assert issued["notes"] == "Payment within 30 days" and issued["total"] == "1440.00"
    retried, status = results["issue retried"]
    assert status == 200 and retried == issued

    rate, status = results["fx rate"]
    assert status == 201, rate
    assert (rate["base_currency"], rate["quote_currency"], rate["rate"]) == ("USD", "EUR", "0.92")

    paid, status = results["pay in usd"]
    assert status == 200, paid
    assert paid["id"] == created["id"]
    assert (paid["amount_paid"], paid["amount_due"]) == ("460.00", "980.00")
    assert paid["payment_status"] == "PAYMENT_STATUS_PARTIALLY_PAID"

    listed, status = results["allocations"]
    assert status == 200, listed
    [allocation] = listed["data"]
    assert allocation["invoice_id"] == created["id"]
    assert (allocation["amount"], allocation["currency"]) == ("500.00", "USD")
    assert (allocation["invoice_amount"], allocation["invoice_currency"]) == ("460.00", "EUR")
    assert (allocation["accounting_amount"], allocation["accounting_currency"]) == ("460.00", "EUR")
    assert allocation["allocation_type"] == "ALLOCATION_TYPE_PARTIAL" and allocation["is_partial"]
    assert allocation["composite_fx_rate"].startswith("1 USD = 0.92 EUR (ecb, ")
    assert allocation["exchange_rate_id"] == rate["id"]

    queried, status = results["records query"]
    assert status == 200, queried
    [record] = queried["data"]  # seed 003's JSON:API resource object
    assert (record["type"], record["id"]) == ("invoice_transaction", allocation["id"])
    assert record["attributes"]["amount"] == 500 and record["attributes"]["currency"] == "USD"
    assert record["relationships"]["invoice"]["data"]["id"] == created["id"]
    assert queried["meta"] == {"total": 1, "count": 1}

    error, status = results["error"]
    assert status == 400, error
    assert error["code"] == "INVALID_ARGUMENT" and error["status"] == 400
    assert error["title"] == "Bad Request" and error["meta"]["trace_id"]
    kinds = {d["@type"].rsplit("/", 1)[-1]: d for d in error["details"]}
    assert kinds["google.rpc.ErrorInfo"]["domain"] == "invoicing.v1"
    violations = kinds["google.rpc.BadRequest"]["field_violations"]
    assert [v["field"] for v in violations] == ["id"]

    stored = await invoices.GetInvoice(pb.GetInvoiceRequest(id=created["id"]), metadata=md)
    assert stored.status == pb.INVOICE_STATUS_ISSUED and stored.number == issued["number"]


async def test_last_line_of_make_token_is_a_working_token(
    server: app.Running, settings: config.Settings, tenant: uuid.UUID
) -> None:
    """What the substituted TOKEN line stands for: `make token` runs `python -m service.token`
    and `tail -1` keeps its last line. Run against the test data dir (its dev secret), that
    last line authenticates over the gateway."""
    root = README.parent
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.token",
        "--tenant",
        str(tenant),
        cwd=root,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={
            **os.environ,
            "DATA_DIR": str(settings.data_dir),
            "PYTHONPATH": f"{root}{os.pathsep}{root / 'generated'}",
        },
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    lines = stdout.decode().splitlines()
    assert len(lines) >= 2 and lines[0].startswith("#")
    token = lines[-1]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.gateway_port}") as client:
        response = await client.get("/v1/invoices", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
