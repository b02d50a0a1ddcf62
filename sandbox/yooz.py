"""A stand-in for Yooz that follows PROVIDERS.md: `python -m sandbox.yooz` (or `make sandbox`).

    GET /v1/invoices?updated_after=&cursor=&limit=   Authorization: Bearer <api key>
        200 {"data": [...], "next_cursor": ...}; ordered by (updated_at, id); updated_after
        exclusive; 401 for an unknown key; 429 with Retry-After and 5xx when told to fail.

Each API key is an account holding its own documents. The same server drives the
walkthrough (README, "Ingestion sandbox") and the tests: documents are added, failures
injected and requests observed through Python (`StandIn`) or its `/_sandbox/*` endpoints:

    POST /_sandbox/accounts/{key}/documents   a document (JSON), or {"sample": n} for samples
    POST /_sandbox/webhooks                   {"url", "secret", "type", "document"}: sends a
                                              Standard Webhooks signed event, answers its status

A real HTTP server on 127.0.0.1 (threads), no mocks: the service talks to it over TCP.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_LIMIT = 100


@dataclasses.dataclass
class Failure:
    status: int
    times: int
    retry_after: str | None = None


@dataclasses.dataclass
class Account:
    documents: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    failures: list[Failure] = dataclasses.field(default_factory=list)
    requests: int = 0
    in_flight: int = 0
    most_in_flight: int = 0
    polls: list[float] = dataclasses.field(default_factory=list)  # first-page request times


class StandIn:
    """The server and its state; `url` once started."""

    def __init__(self, *, delay_s: float = 0.0, port: int = 0) -> None:
        self.accounts: dict[str, Account] = {}
        self.delay_s = delay_s
        self.lock = threading.Lock()
        self._server = _Server(("127.0.0.1", port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> StandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ---- state ---------------------------------------------------------------------------

    def account(self, key: str) -> Account:
        with self.lock:
            return self.accounts.setdefault(key, Account())

    def put(self, key: str, *documents: dict[str, Any]) -> None:
        account = self.account(key)
        with self.lock:
            for document in documents:
                account.documents[str(document["id"])] = document

    def fail(self, key: str, status: int, times: int = 1, retry_after: str | None = None) -> None:
        account = self.account(key)
        with self.lock:
            account.failures.append(Failure(status, times, retry_after))

    # ---- the API -------------------------------------------------------------------------

    def list_invoices(self, key: str, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            account = self.accounts.get(key)
            if account is None:
                # A real provider may echo what it got: the service must not keep it.
                return 401, {}, {"error": "unauthorized", "detail": f"unknown key {key}"}
            account.requests += 1
            if account.failures:
                failure = account.failures[0]
                failure.times -= 1
                if failure.times <= 0:
                    account.failures.pop(0)
                headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
                return failure.status, headers, {"error": "injected", "detail": f"key {key}"}
            account.in_flight += 1
            account.most_in_flight = max(account.most_in_flight, account.in_flight)
            if not query.get("cursor"):
                account.polls.append(time.monotonic())
            documents = sorted(
                account.documents.values(), key=lambda d: (str(d["updated_at"]), str(d["id"]))
            )
        try:
            if self.delay_s:
                time.sleep(self.delay_s)
            try:
                limit = max(1, min(MAX_LIMIT, int(query.get("limit", "50"))))
            except ValueError:
                return 400, {}, {"error": "limit"}
            if query.get("cursor"):
                state = json.loads(base64.urlsafe_b64decode(query["cursor"]))
                after, offset = state["after"], state["offset"]
            else:
                after, offset = query.get("updated_after"), 0
            if after:
                documents = [d for d in documents if _instant(d["updated_at"]) > _instant(after)]
            page = documents[offset : offset + limit]
            more = offset + limit < len(documents)
            cursor = None
            if more:
                state = {"after": after, "offset": offset + limit}
                cursor = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
            return 200, {}, {"data": page, "next_cursor": cursor}
        finally:
            with self.lock:
                account.in_flight -= 1


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer (a killed worker) is not an error here."""


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _handler(standin: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/v1/invoices":
                self._send(404, {"error": "not found"})
                return
            auth = self.headers.get("Authorization", "")
            key = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
            query = dict(urllib.parse.parse_qsl(url.query))
            status, headers, body = standin.list_invoices(key, query)
            self._send(status, body, headers)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            parts = self.path.strip("/").split("/")
            if parts[:2] == ["_sandbox", "accounts"] and len(parts) == 4:
                key = urllib.parse.unquote(parts[2])
                if "sample" in body:
                    documents = [sample_document(i) for i in range(int(body["sample"]))]
                else:
                    documents = [body]
                standin.put(key, *documents)
                self._send(201, {"added": [d["id"] for d in documents]})
                return
            if parts == ["_sandbox", "webhooks"]:
                status = send_webhook(
                    body["url"],
                    body["secret"],
                    body.get("type", "invoice.created"),
                    body.get("document") or sample_document(0),
                )
                self._send(200, {"status": status})
                return
            self._send(404, {"error": "not found"})

    return Handler


# ---- documents and webhooks ---------------------------------------------------------------

SUPPLIERS = (
    ("Papeterie Dupont SARL", "73282932000074"),
    ("La Poste", "35600000049837"),
    ("Imprimerie Inconnue", "44231509000013"),
)


def sample_document(
    index: int, *, updated_at: datetime | None = None, **overrides: Any
) -> dict[str, Any]:
    """A PROVIDERS.md document whose totals agree with its lines."""
    name, siret = SUPPLIERS[index % len(SUPPLIERS)]
    quantity, price = 1 + index % 5, f"{4 + index % 7}.20"
    excl = Decimal(quantity) * Decimal(price)
    tax = (excl * Decimal("0.20")).quantize(Decimal("0.01"), ROUND_HALF_UP)
    stamp = updated_at or datetime(2026, 11, 20, 9, 0, tzinfo=UTC) + timedelta(minutes=index)
    document = {
        "id": f"yz_doc_{index:06d}",
        "updated_at": stamp.isoformat().replace("+00:00", "Z"),
        "status": "approved",
        "number": f"F-2026-{index:04d}",
        "supplier": {"name": name, "siret": siret},
        "issue_date": "2026-11-18",
        "due_date": "2026-12-18",
        "currency": "EUR",
        "lines": [
            {
                "description": "Ramettes A4",
                "quantity": str(quantity),
                "unit_price": price,
                "tax_rate": "0.20",
            }
        ],
        "total_excluding_tax": str(excl),
        "tax_amount": str(tax),
        "total": str(excl + tax),
        "document_url": f"https://files.yooz.example/docs/yz_doc_{index:06d}.pdf",
    }
    document.update(overrides)
    return document


def webhook_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_") :])
    return secret.encode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    content = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(webhook_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_headers(
    secret: str, body: bytes, *, message_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
        "content-type": "application/json",
    }


def send_webhook(url: str, secret: str, event_type: str, document: dict[str, Any]) -> int:
    body = json.dumps({"type": event_type, "data": document}).encode()
    if not url.startswith(("http://", "https://")):
        raise ValueError("webhook URLs are http(s)")
    request = urllib.request.Request(  # noqa: S310 (http(s) only, checked above)
        url, data=body, headers=webhook_headers(secret, body)
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def main(argv: list[str] | None = None, ready: Callable[[StandIn], None] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--key", default="yz_sandbox_key", help="an account to create")
    parser.add_argument("--samples", type=int, default=3, help="sample documents in it")
    args = parser.parse_args(argv)
    standin = StandIn(port=args.port).start()
    standin.put(args.key, *(sample_document(i) for i in range(args.samples)))
    print(
        f"Yooz stand-in on {standin.url}: account {args.key} with {args.samples} documents",
        flush=True,
    )
    if ready is not None:
        ready(standin)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        standin.stop()


if __name__ == "__main__":
    main()
