"""The README's connection walkthrough (curl and grpcurl), run verbatim with bash.

The block between `<!-- connection-examples:start -->` and `<!-- connection-examples:end -->`
is executed as written, with three substitutions: the `make run` addresses (REST
`127.0.0.1:8080`, gRPC `127.0.0.1:50051`) become the test server's, `.venv/bin/grpcurl` the
virtualenv's grpcurl, and `TOKEN=$(make -s token | tail -1)` a token of the test's tenant.
The output is a stream of JSON bodies (curl: body, then the HTTP status; grpcurl: the body),
read in order and checked step by step.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

from service import app
from tests.conftest import Tokens
from tests.integration.test_readme_curl import TOKEN_LINE, run_block

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- connection-examples:start -->", "<!-- connection-examples:end -->"
MILLIS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")  # seed 004


def block() -> str:
    text = README.read_text(encoding="utf-8")
    assert text.count(START) == 1 and text.count(END) == 1
    section = text[text.index(START) + len(START) : text.index(END)]
    [found] = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    return str(found)


def values(output: str) -> list[Any]:
    """The JSON values printed, in order (bodies and statuses)."""
    decoder = json.JSONDecoder()
    found, index = [], 0
    while True:
        while index < len(output) and output[index].isspace():
            index += 1
        if index == len(output):
            return found
        value, index = decoder.raw_decode(output, index)
        found.append(value)


async def test_readme_connection_walkthrough_runs_verbatim(
    server: app.Running, tokens: Tokens
) -> None:
    tenant = uuid.uuid4()
    grpcurl = shutil.which("grpcurl", path=str(Path(sys.executable).parent))
    assert grpcurl, "grpcurl is installed in the virtualenv"
    script = block()
    assert TOKEN_LINE in script and "Cookie: session=$TOKEN" in script
    script = script.replace(TOKEN_LINE, f"TOKEN='{tokens.token(tenant)}'")
    script = script.replace("127.0.0.1:8080", f"127.0.0.1:{server.gateway_port}")
    script = script.replace("127.0.0.1:50051", f"127.0.0.1:{server.port}")
    script = script.replace(".venv/bin/grpcurl", grpcurl)
    out = values(await run_block(script))

    # The /invoice-connections steps answer in seed 004's spelling (camelCase, `client`
    # for the tenant, timestamps with milliseconds); the /v1 steps in the canonical JSON.
    created, status, *rest = out
    assert status == 201, created
    assert created["provider"] == "yooz" and created["active"] is True
    assert created["hasCredentials"] is True and created["hasWebhookSecret"] is True
    assert "has_credentials" not in created and "tenant_id" not in created
    assert created["state"] == "CONNECTION_STATE_OK"
    assert created["client"] == str(tenant)
    assert created["lastPolledAt"] is None
    assert MILLIS.match(created["createdAt"]) and MILLIS.match(created["updatedAt"]), created
    assert "yz_live_sk_first" not in json.dumps(out) and "whsec_" not in json.dumps(out)

    conflict, status, rotated, status2, got, disabled, *rest = rest
    assert status == 409, conflict
    assert conflict["details"][0]["reason"] == "CONNECTION_ALREADY_ACTIVE"
    assert status2 == 200, rotated
    assert rotated["hasCredentials"] is True and rotated["etag"] != created["etag"]
    assert rotated["id"] == created["id"] and rotated["createdAt"] == created["createdAt"]
    # grpcurl prints the proto3 JSON mapping (lowerCamel names).
    assert got["id"] == created["id"] and got["state"] == "CONNECTION_STATE_OK"
    assert disabled["state"] == "CONNECTION_STATE_DISABLED"
    assert "active" not in disabled  # false is the default and not printed

    active_list, status, deleted_status, after, status3 = rest
    assert status == 200 and active_list["data"] == []
    assert deleted_status == 204
    assert status3 == 200, after
    assert after["state"] == "CONNECTION_STATE_DELETED" and after["deleted_at"]
