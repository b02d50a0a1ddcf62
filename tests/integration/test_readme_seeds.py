"""The README's seed sections (one per seed), run verbatim with bash, in the README's order.

Each block between `<!-- seed-NNN:start -->` and `<!-- seed-NNN:end -->` is executed as
written, with the substitutions of the other README tests: the `make run` address becomes the
test server's and `TOKEN=$(make -s token | tail -1)` a token of the test's tenant. Every
curl prints the body, then the HTTP status; the output is checked step by step, in the
seed's format (the raw text too, where digits matter).
"""

from __future__ import annotations

import json
import re
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from service import app
from tests.conftest import Tokens
from tests.integration.test_readme_curl import TOKEN_LINE, run_block

README = Path(__file__).resolve().parents[2] / "README.md"
ORDER = ("001", "002", "003", "004", "000")
MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def block(seed: str) -> str:
    text = README.read_text(encoding="utf-8")
    start, end = f"<!-- seed-{seed}:start -->", f"<!-- seed-{seed}:end -->"
    assert text.count(start) == 1 and text.count(end) == 1, seed
    section = text[text.index(start) + len(start) : text.index(end)]
    [found] = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    return str(found)


def steps(output: str) -> list[tuple[str, Any, int]]:
    """(raw body, parsed body or None, status) per curl call."""
    lines = output.splitlines()
    assert len(lines) % 2 == 0, output
    out = []
    for i in range(0, len(lines), 2):
        raw, status = lines[i], int(lines[i + 1])
        out.append((raw, json.loads(raw, parse_float=Decimal) if raw else None, status))
    return out


async def run(seed: str, server: app.Running, token: str) -> list[tuple[str, Any, int]]:
    script = block(seed)
    assert TOKEN_LINE in script
    script = script.replace(TOKEN_LINE, f"TOKEN='{token}'")
    script = script.replace("127.0.0.1:8080", f"127.0.0.1:{server.gateway_port}")
    return steps(await run_block(script))


async def test_readme_seed_sections_run_verbatim(server: app.Running, tokens: Tokens) -> None:
    assert server.gateway_port, "the test settings start the REST gateway in-process"
    text = README.read_text(encoding="utf-8")
    assert [s for s in ORDER if f"seed-{s}:start" in text] == list(ORDER)
    token = tokens.token(uuid.uuid4())

    # Seed 001: the seed's enums, money as exact JSON numbers.
    (raw, created, status), (_, issued, s2), (_, paid, s3) = await run("001", server, token)
    assert status == 201, raw
    assert (created["type"], created["direction"], created["status"]) == (
        "customer",
        "receivable",
        "draft",
    )
    assert created["source_type"] == "api" and created["issue_date"] == "2026-05-10"
    assert '"total":1441.20' in raw and '"subtotal":1201.00' in raw
    assert created["total"] == Decimal("1441.20") and created["paid_date"] is None
    assert (s2, issued["status"], issued["payment_status"]) == (200, "issued", "unpaid")
    assert (s3, paid["payment_status"], paid["amount_paid"]) == (
        200,
        "partially_paid",
        Decimal("500.00"),
    )
    invoice = created["id"]

    # Seed 002: camelCase nodes.
    [(raw, document, status)] = await run("002", server, token)
    assert status == 200, raw
    identifiers = document["identifiers"]
    assert identifiers["id"] == invoice
    assert (identifiers["isClientInvoice"], identifiers["isSupplierInvoice"]) == (True, False)
    assert identifiers["jobId"] is None and "flexTransactionId" not in identifiers
    assert {"clientCompanyId", "supplierIsInternal", "projectSequenceId"} <= set(identifiers)
    assert set(document) >= {"identifiers", "properties", "lines", "totals", "related"}

    # Seed 003: JSON:API lists, the records query, the seed's error codes.
    listed, sorted_page, queried, bad, anonymous = await run("003", server, token)
    raw, doc, status = listed
    assert status == 200, raw
    [item] = doc["data"]
    assert item["type"] == "invoice_transaction"
    assert item["attributes"]["amount"] == Decimal("500.00") and '"amount":500.00' in raw
    assert item["attributes"]["allocation_type"] == "partial"
    assert item["attributes"]["deleted_at"] is None
    assert item["relationships"]["invoice"]["data"] == {"type": "invoice", "id": invoice}
    assert item["relationships"]["subscription"]["data"] is None
    assert doc["meta"] == {"total": 1, "count": 1} and doc["links"] == {"next": None}
    assert sorted_page[2] == 200 and sorted_page[1]["meta"]["count"] == 1, sorted_page[0]
    assert queried[2] == 200, queried[0]
    assert [d["id"] for d in queried[1]["data"]] == [item["id"]]
    for (raw, error, status), (code, expected) in zip(
        (bad, anonymous), (("BAD_REQUEST", 400), ("UNAUTHORIZED", 401)), strict=True
    ):
        assert (status, error["code"], error["status"]) == (expected, code, expected), raw
        assert error["title"] and error["message"]
        assert error["meta"]["trace_id"] and error["meta"]["log_id"]

    # Seed 004: the seed's curl examples.
    (raw, empty, s1), (raw_created, connection, s2), (raw_patched, patched, s3) = await run(
        "004", server, token
    )
    assert (s1, empty) == (200, []), raw
    assert s2 == 201, raw_created
    assert (connection["provider"], connection["active"]) == ("yooz", True)
    assert connection["hasCredentials"] is True and connection["hasWebhookSecret"] is True
    assert connection["lastPolledAt"] is None and "lastPolledAt" in connection
    assert MILLIS.match(connection["createdAt"]) and MILLIS.match(connection["updatedAt"])
    assert connection["client"] and "tenant_id" not in connection
    assert s3 == 200 and patched["id"] == connection["id"], raw_patched
    for text in (raw_created, raw_patched):
        assert "yz_live_sk" not in text and "whsec_" not in text

    # Seed 000: a provenance row as a JSON:API document; then seed 004's DELETE.
    (raw, linked, s1), (raw_list, rows, s2), (raw_deleted, _, s3) = await run("000", server, token)
    assert s1 == 201, raw
    row = linked["data"]
    assert row["type"] == "invoice_workspace_connector"
    assert row["attributes"]["direction"] == "input"
    assert row["attributes"]["deleted_at"] is None
    assert row["relationships"]["invoice"]["data"] == {"type": "invoice", "id": invoice}
    assert row["relationships"]["workspace_connector"]["data"] == {
        "type": "workspace_connector",
        "id": connection["id"],
    }
    assert s2 == 200 and [r["id"] for r in rows["data"]] == [row["id"]], raw_list
    assert (s3, raw_deleted) == (204, "")
