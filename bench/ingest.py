"""Ingestion rows of `make bench`: documents ingested per second by polling the Yooz
stand-in, and signed webhooks accepted (verified and stored) per second, both against the
service process as `make run` runs it (its worker on), beside CreateInvoice in the same run.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
from invoicing.v1 import connections_pb2 as cpb
from invoicing.v1 import connections_pb2_grpc

from sandbox.yooz import StandIn, sample_document
from service.kit import auth, config

ROOT = Path(__file__).resolve().parents[1]
POLLED = 8  # connections polled at once


async def _connect(
    target: str, settings: config.Settings, standin: StandIn, count: int, *, secret: bool
) -> list[dict[str, str]]:
    """Each account exists on the stand-in before its connection does: the worker may poll a
    new connection at once, and an unknown account answers 401 (NEEDS_CREDENTIALS)."""
    made = []
    async with grpc.aio.insecure_channel(target) as channel:
        stub = connections_pb2_grpc.ConnectionServiceStub(channel)
        for _ in range(count):
            tenant = uuid.uuid4()
            account = f"yz_bench_{uuid.uuid4().hex}"
            standin.account(account)
            webhook = "whsec_" + base64.b64encode(os.urandom(32)).decode() if secret else ""
            token = auth.mint_dev_token(settings, tenant_id=tenant)
            created = await stub.CreateConnection(
                cpb.CreateConnectionRequest(
                    provider="yooz", api_key=account, webhook_secret=webhook
                ),
                metadata=(("authorization", f"Bearer {token}"),),
            )
            made.append({"id": created.id, "account": account, "secret": webhook, "token": token})
    return made


def prepare(
    target: str, settings: config.Settings, standin: StandIn, documents: int
) -> dict[str, Any]:
    """Connections for both rows. The polled ones start with empty accounts (so the worker's
    first poll finds nothing and schedules the next one an interval later); the documents
    are put in afterwards, and the row's own polls take them all."""
    polled = asyncio.run(_connect(target, settings, standin, POLLED, secret=False))
    time.sleep(3)  # the worker's first polls of the empty accounts
    per = documents // POLLED
    for n, c in enumerate(polled):
        standin.put(
            c["account"], *(sample_document(n * per + i, id=f"yz_b{n}_{i}") for i in range(per))
        )
    hooked = asyncio.run(_connect(target, settings, standin, 8, secret=True))
    return {"polled": polled, "hooked": hooked, "documents": per * POLLED}


async def _poll_all(target: str, polled: list[dict[str, str]]) -> tuple[int, float]:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = connections_pb2_grpc.ConnectionServiceStub(channel)

        async def one(c: dict[str, str]) -> int:
            answer = await stub.PollConnection(
                cpb.PollConnectionRequest(id=c["id"]),
                metadata=(("authorization", f"Bearer {c['token']}"),),
                timeout=600,
            )
            return answer.last_poll.created

        started = time.perf_counter()
        created = await asyncio.gather(*(one(c) for c in polled))
        return sum(created), time.perf_counter() - started


def poll_row(target: str, spec: dict[str, Any], server: Any) -> dict[str, Any]:
    cpu0 = sum(server.ps.cpu_times()[:2])
    created, wall = asyncio.run(_poll_all(target, spec["polled"]))
    cpu = sum(server.ps.cpu_times()[:2]) - cpu0
    server.rss_peak = max(server.rss_peak, server.ps.memory_info().rss)
    errors = {} if created == spec["documents"] else {"missing": spec["documents"] - created}
    return {
        "scenario": "poll",
        "requests": created,
        "errors": errors,
        "wall_s": wall,
        "rps": created / wall if wall else 0.0,
        "p50_ms": None,
        "p99_ms": None,
        "client_cpu_share": 0.0,
        "server_cpu_share": cpu / wall if wall else 0.0,
    }


def webhook_row(
    gateway: str, spec: dict[str, Any], server: Any, duration: float, concurrency: int
) -> dict[str, Any]:
    spec_file = Path(tempfile.mkstemp(suffix=".json", prefix="bench-hooks-")[1])
    spec_file.write_text(
        json.dumps([{"id": c["id"], "secret": c["secret"]} for c in spec["hooked"]])
    )
    cmd = [
        sys.executable,
        "-m",
        "bench.webhooks",
        "--target",
        gateway,
        "--spec",
        str(spec_file),
        "--duration",
        str(duration),
        "--concurrency",
        str(concurrency),
        "--max-requests",
        str(int(duration * 3000)),
    ]
    env = dict(os.environ, PYTHONPATH=f"{ROOT}:{ROOT / 'generated'}")
    cpu0 = sum(server.ps.cpu_times()[:2])
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    server.rss_peak = max(server.rss_peak, server.ps.memory_info().rss)
    result["server_cpu_share"] = (sum(server.ps.cpu_times()[:2]) - cpu0) / result["wall_s"]
    return result
