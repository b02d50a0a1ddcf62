"""Webhook load client, run as its own process: signed Standard Webhooks events, each with
its own webhook-id, posted over keep-alive HTTP/1.1 connections (raw asyncio streams: the
client must cost little next to the service it measures). Prints one JSON line."""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from typing import Any

from sandbox.yooz import sample_document, webhook_headers


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def build(targets: list[dict[str, str]], count: int, host: str) -> list[bytes]:
    """`count` complete requests, round-robin over the connections, pre-signed."""
    requests = []
    document = sample_document(0)
    for i in range(count):
        target = targets[i % len(targets)]
        body = json.dumps({"type": "invoice.updated", "data": document}).encode()
        headers = webhook_headers(target["secret"], body, message_id=f"bench_{i}_{time.time_ns()}")
        lines = [
            f"POST /v1/invoice-connections/{target['id']}/webhooks HTTP/1.1",
            f"Host: {host}",
            f"Content-Length: {len(body)}",
            *(f"{k}: {v}" for k, v in headers.items()),
            "",
            "",
        ]
        requests.append("\r\n".join(lines).encode() + body)
    return requests


async def drive(args: argparse.Namespace, targets: list[dict[str, str]]) -> dict[str, Any]:
    host, port = args.target.rsplit(":", 1)
    requests = build(targets, args.max_requests, args.target)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    next_index = 0
    deadline = time.perf_counter() + args.duration

    async def worker() -> None:
        nonlocal next_index
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while time.perf_counter() < deadline and next_index < len(requests):
                request = requests[next_index]
                next_index += 1
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                if status == 202:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors[str(status)] = errors.get(str(status), 0) + 1
        finally:
            writer.close()

    cpu0, wall0 = _cpu(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    cpu, wall = _cpu() - cpu0, time.perf_counter() - wall0
    latencies.sort()
    n = len(latencies)
    return {
        "scenario": "webhooks",
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
    parser.add_argument("--target", required=True, help="host:port of the REST gateway")
    parser.add_argument("--spec", required=True, help='JSON [{"id": con_..., "secret": ...}]')
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--max-requests", type=int, default=100_000)
    args = parser.parse_args()
    with open(args.spec) as f:
        targets = json.load(f)
    import uvloop

    print(json.dumps(uvloop.run(drive(args, targets))), flush=True)


if __name__ == "__main__":
    main()
