"""h2load as the load source for gRPC (HTTP/2) and REST (HTTP/1.1): one C tool for
both sides of the REST-vs-gRPC comparison, costing little CPU (FLOORS.md)."""

from __future__ import annotations

import shutil
import statistics
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

MISSING = (
    "h2load not found: the REST-vs-gRPC rows were skipped. They need h2load from Debian's"
    " nghttp2-client (`apt-get install nghttp2-client`); `make bench` installs nothing itself."
)


def find() -> str | None:
    """The h2load binary on PATH, or None (the bench then skips its rows and says why)."""
    return shutil.which("h2load")


def grpc_frame(message: bytes) -> bytes:
    """A gRPC length-prefixed message: uncompressed flag, 4-byte length, bytes."""
    return struct.pack(">BI", 0, len(message)) + message


def run(
    binary: str,
    url: str,
    *,
    headers: list[str],
    duration: float,
    concurrency: int,
    grpc_body: bytes | None = None,
) -> dict[str, Any]:
    """Drive `url` for `duration` s; latencies from h2load's per-request log."""
    workdir = Path(tempfile.mkdtemp(prefix="h2load-"))
    log = workdir / "requests.tsv"
    cmd = [binary, "-D", str(int(duration)), "--warm-up-time", "1", "--log-file", str(log)]
    for header in headers:
        cmd += ["-H", header]
    if grpc_body is None:  # REST over HTTP/1.1: one request in flight per connection
        cmd += ["--h1", "-c", str(concurrency), "-m", "1"]
    else:  # gRPC over one HTTP/2 connection, like a channel
        body = workdir / "body.bin"
        body.write_bytes(grpc_frame(grpc_body))
        cmd += ["-c", "1", "-m", str(concurrency), "-d", str(body)]
        cmd += ["-H", "content-type: application/grpc", "-H", "te: trailers"]
    started = time.perf_counter()
    process = subprocess.Popen(
        [*cmd, url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    ps = psutil.Process(process.pid)
    cpu = 0.0
    while process.poll() is None:
        try:
            times = ps.cpu_times()
            cpu = times.user + times.system
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    wall = time.perf_counter() - started
    output = process.stdout.read() if process.stdout else ""
    return _summary(log, output, cpu / wall if wall else 0.0)


def _summary(log: Path, output: str, cpu_share: float) -> dict[str, Any]:
    rows = [line.split("\t") for line in log.read_text().splitlines() if line.strip()]
    ok = [int(r[2]) / 1000 for r in rows if r[1].startswith("2")]
    failed = len(rows) - len(ok)
    start = min((int(r[0]) for r in rows), default=0)
    end = max((int(r[0]) + int(r[2]) for r in rows), default=0)
    window = (end - start) / 1e6 if rows else 0.0
    ok.sort()
    n = len(ok)
    return {
        "requests": n,
        "errors": {"non-2xx": failed} if failed else {},
        "wall_s": window,
        "rps": n / window if window else 0.0,
        "p50_ms": statistics.median(ok) if ok else None,
        "p99_ms": ok[min(n - 1, int(n * 0.99))] if ok else None,
        "client_cpu_share": cpu_share,
        "h2load": output.strip().splitlines()[-8:] if n == 0 else [],
    }
