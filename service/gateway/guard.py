"""The REST port's defences: the gateway shares its process, event loop and descriptor
table with the gRPC server and the database pool, so one client must not be able to
starve them through it.

- a connection cap below the descriptor budget: a connection past it is answered 503 and
  closed at once, so its descriptor is back within the same loop turn;
- a header deadline: a request line and headers not complete in time (slowloris, or a
  connection that sends nothing) get 408 and the connection is closed;
- a header size cap: more than `max_header_bytes` before the headers end gets 431 and the
  connection is closed (the parser would otherwise buffer an endless header line);
- the idle timeout between requests is uvicorn's `timeout_keep_alive`.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("service.gateway")
# Descriptors kept for everything but REST connections: gRPC connections, the database
# pool, log files, the worker's HTTP clients.
RESERVED_DESCRIPTORS = 1024


@dataclass(frozen=True)
class Limits:
    max_connections: int = 1000
    header_timeout_s: float = 10.0
    max_header_bytes: int = 32 * 1024
    idle_timeout_s: float = 5.0


def descriptor_budget(wanted: int) -> int:
    """The connection cap that fits this process's descriptor limit (raising the soft limit
    to the hard one when it is lower), leaving RESERVED_DESCRIPTORS for the rest."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):  # pragma: no cover - not allowed here: keep soft
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(16, min(wanted, soft - RESERVED_DESCRIPTORS))


def protocol(limits: Limits) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with `limits` applied."""
    return type("GuardedHttpToolsProtocol", (_Guarded,), {"limits": limits})


def _response(status: bytes, message: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"content-length: "
        + str(len(message)).encode()
        + b"\r\nconnection: close\r\n\r\n"
        + message
    )


_OVERLOADED = _response(
    b"503 Service Unavailable",
    b'{"code":"UNAVAILABLE","status":503,"title":"Service Unavailable",'
    b'"message":"too many connections; retry later"}',
)
_TOO_SLOW = _response(
    b"408 Request Timeout",
    b'{"code":"DEADLINE_EXCEEDED","status":408,"title":"Request Timeout",'
    b'"message":"the request headers did not arrive in time"}',
)
_TOO_BIG = _response(
    b"431 Request Header Fields Too Large",
    b'{"code":"INVALID_ARGUMENT","status":431,"title":"Request Header Fields Too Large",'
    b'"message":"the request line and headers are too large"}',
)


class _Guarded(HttpToolsProtocol):
    limits: Limits = Limits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_headers = True
        self._header_bytes = 0
        self._tail = b""
        self._header_timer: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self._refused = True
            transport.write(_OVERLOADED)
            transport.close()
            return
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._refused:
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._awaiting_headers:
            # Count only what precedes the end of the headers (a body may share the chunk).
            end = (self._tail + data).find(b"\r\n\r\n")
            self._header_bytes += len(data) if end < 0 else max(0, end - len(self._tail))
            self._tail = data[-3:]
            if self._header_bytes > self.limits.max_header_bytes:
                self._close_with(_TOO_BIG)
                return
            if self._header_timer is None:
                self._arm()
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._header_bytes = 0
        self._tail = b""
        self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._awaiting_headers = True  # what comes next is another request's headers

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.limits.header_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        idle = self.cycle is None or self.cycle.response_complete
        if self._awaiting_headers and idle and not self.transport.is_closing():
            self._close_with(_TOO_SLOW)

    def _close_with(self, response: bytes) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()
