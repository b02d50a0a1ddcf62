"""Load client, run as its own process: a bounded number of in-flight unary calls
for a bounded time, over loopback. Prints one JSON line of results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from typing import Any

import grpc
from invoicing.v1 import allocations_pb2 as apb
from invoicing.v1 import allocations_pb2_grpc, invoices_pb2_grpc
from invoicing.v1 import invoices_pb2 as pb

# What one PayInvoice call pays, in the invoice currency (EUR): small enough that the
# seeded amounts due never run out, however many rounds pay the same invoices.
PAYMENT = "0.01"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def build_requests(scenario: str, spec: dict[str, Any]) -> list[tuple[Any, tuple[Any, ...]]]:
    """(request, metadata) pairs; workers take them round-robin (or once each)."""
    md = (("authorization", f"Bearer {spec['token']}"),)
    if scenario == "get":
        return [(pb.GetInvoiceRequest(id=i), md) for i in spec["ids"]]
    if scenario == "list":
        return [(pb.ListInvoicesRequest(limit=50), md)]
    if scenario == "list_filter":
        return [(pb.ListInvoicesRequest(limit=50, filter=spec["filter"]), md)]
    if scenario == "list_deep":
        return [(pb.ListInvoicesRequest(limit=50, cursor=spec["cursor"]), md)]
    if scenario == "create":
        lines = [
            pb.LineItem(description=f"line {i}", quantity="2", unit_price="19.99", tax_rate="0.2")
            for i in range(10)
        ]
        invoice = pb.Invoice(
            type=pb.INVOICE_TYPE_CUSTOMER,
            currency="EUR",
            counterparty_id="0b9c4a52-8d0e-4a8e-9a51-2f7d4d2c1e11",
            line_items=lines,
        )
        write_md = (("authorization", f"Bearer {spec['write_token']}"),)
        return [(pb.CreateInvoiceRequest(invoice=invoice), write_md)]
    if scenario == "issue":
        return [
            (pb.IssueInvoiceRequest(id=i), (("authorization", f"Bearer {t}"),))
            for i, t in spec["drafts"]
        ]
    if scenario == "pay":
        # One issued invoice with an amount due per call, spread over the tenants.
        return [
            (pb.PayInvoiceRequest(id=i, amount=PAYMENT), (("authorization", f"Bearer {t}"),))
            for i, t in spec["payable"]
        ]
    if scenario == "pay_hot":
        hot_md = (("authorization", f"Bearer {spec['hot_token']}"),)
        return [(pb.PayInvoiceRequest(id=spec["hot_invoice"], amount=PAYMENT), hot_md)]
    if scenario in ("mixed_get", "mixed_list"):
        # Both kinds, half the workers each; only the named kind is measured.
        gets = [(pb.GetInvoiceRequest(id=i), md) for i in spec["ids"]]
        return gets if scenario == "mixed_get" else [(pb.ListInvoicesRequest(limit=50), md)]
    if scenario == "alloc_list":
        return [(apb.ListAllocationsRequest(limit=50), md)]
    if scenario == "alloc_list_filter":
        return [(apb.ListAllocationsRequest(limit=50, filter=spec["alloc_filter"]), md)]
    raise SystemExit(f"unknown scenario {scenario}")


def method(channel: grpc.aio.Channel, scenario: str) -> Any:
    if scenario.startswith("alloc_"):
        return allocations_pb2_grpc.AllocationServiceStub(channel).ListAllocations
    stub = invoices_pb2_grpc.InvoiceServiceStub(channel)
    return {
        "get": stub.GetInvoice,
        "list": stub.ListInvoices,
        "list_filter": stub.ListInvoices,
        "list_deep": stub.ListInvoices,
        "create": stub.CreateInvoice,
        "issue": stub.IssueInvoice,
        "pay": stub.PayInvoice,
        "pay_hot": stub.PayInvoice,
        "mixed_get": stub.GetInvoice,
        "mixed_list": stub.ListInvoices,
    }[scenario]


# The unmeasured other half of a mixed scenario.
BESIDE = {"mixed_get": "mixed_list", "mixed_list": "mixed_get"}


async def drive(args: argparse.Namespace, spec: dict[str, Any]) -> dict[str, Any]:
    requests = build_requests(args.scenario, spec)
    once = args.scenario == "issue"
    latencies: list[float] = []
    errors: dict[str, int] = {}
    next_index = 0
    async with grpc.aio.insecure_channel(args.target) as channel:
        call = method(channel, args.scenario)
        await asyncio.wait_for(channel.channel_ready(), 30)
        deadline = time.perf_counter() + args.duration

        async def worker() -> None:
            nonlocal next_index
            while time.perf_counter() < deadline and len(latencies) < args.max_requests:
                if once and next_index >= len(requests):
                    return
                request, md = requests[next_index % len(requests)]
                next_index += 1
                started = time.perf_counter()
                try:
                    await call(request, metadata=md, timeout=30)
                except grpc.aio.AioRpcError as err:
                    errors[err.code().name] = errors.get(err.code().name, 0) + 1
                    continue
                latencies.append(time.perf_counter() - started)

        async def beside(scenario: str) -> None:
            other, index = method(channel, scenario), 0
            others = build_requests(scenario, spec)
            while time.perf_counter() < deadline:
                request, md = others[index % len(others)]
                index += 1
                try:
                    await other(request, metadata=md, timeout=30)
                except grpc.aio.AioRpcError as err:
                    key = f"beside {err.code().name}"
                    errors[key] = errors.get(key, 0) + 1

        measured = args.concurrency
        background = []
        if args.scenario in BESIDE:
            measured = args.concurrency // 2
            background = [beside(BESIDE[args.scenario]) for _ in range(args.concurrency - measured)]
        cpu0, wall0 = _cpu(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(measured)), *background)
        cpu, wall = _cpu() - cpu0, time.perf_counter() - wall0
    latencies.sort()
    n = len(latencies)
    return {
        "scenario": args.scenario,
        "requests": n,
        "errors": errors,
        "wall_s": wall,
        "rps": n / wall if wall else 0.0,
        "p50_ms": latencies[n // 2] * 1000 if n else None,
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else None,
        "client_cpu_share": cpu / wall if wall else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--spec", required=True, help="JSON file with ids, tokens, cursors")
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    args = parser.parse_args()
    with open(args.spec) as f:
        spec = json.load(f)
    import uvloop

    print(json.dumps(uvloop.run(drive(args, spec))), flush=True)


if __name__ == "__main__":
    main()
