"""The README's aggregation walkthrough (seed 002), run verbatim with bash: three drafts
aggregated, the parent's document (in seed 002's camelCase spelling), the parent issued and
paid, a child following it and locked. Substitutions as in test_readme_connections.py."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from pathlib import Path

from service import app
from tests.conftest import Tokens
from tests.integration.test_readme_connections import values
from tests.integration.test_readme_curl import TOKEN_LINE, run_block

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- aggregation-examples:start -->", "<!-- aggregation-examples:end -->"


def block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(START) + len(START) : text.index(END)]
    [found] = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    return str(found)


async def test_readme_aggregation_walkthrough_runs_verbatim(
    server: app.Running, tokens: Tokens
) -> None:
    script = block().replace(TOKEN_LINE, f"TOKEN='{tokens.token(uuid.uuid4())}'")
    script = script.replace("127.0.0.1:8080", f"127.0.0.1:{server.gateway_port}")
    out = values(await run_block(script))
    parent, s1, document, s2, issued, s3, paid, s4, child, s5, refused, s6 = out
    assert (s1, s2, s3, s4, s5, s6) == (200, 200, 200, 200, 200, 400), out
    assert parent["is_aggregation_parent"] is True and len(parent["line_items"]) == 3
    assert Decimal(parent["total"]) == Decimal("720.00") and parent["notes"] == "November"
    # The document path speaks seed 002: camelCase names, money still decimal strings and
    # enums still full names.
    assert document["identifiers"]["id"] == parent["id"]
    assert "child_count" not in document["aggregation"]
    assert document["aggregation"]["isParent"] is True
    assert {r["relation"] for r in document["related"]} == {"RELATION_CHILD"}
    assert len(document["related"]) == 3 and document["aggregation"]["childCount"] == 3
    assert document["totals"]["total"] == parent["total"]
    assert document["totals"]["amountDue"] == parent["amount_due"]
    assert issued["status"] == "INVOICE_STATUS_ISSUED" and issued["number"].startswith("INV-")
    assert paid["payment_status"] == "PAYMENT_STATUS_PAID"
    assert child["payment_status"] == "PAYMENT_STATUS_PAID"
    assert child["parent_id"] == parent["id"]
    assert refused["details"][0]["reason"] == "INVOICE_AGGREGATED"
