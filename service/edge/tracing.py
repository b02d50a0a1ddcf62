"""W3C trace context on every call, and OpenTelemetry spans when configured.

A caller's `traceparent` (gRPC metadata or HTTP header) names the trace: its trace id
becomes the call's trace id (logs, error bodies, `x-request-id`), and the call answers
with a `traceparent` of its own span. Without one, `x-request-id` or a fresh id is used.

OpenTelemetry is off unless `OTEL_TRACES_EXPORTER` is `otlp` or `console`, or
`OTEL_EXPORTER_OTLP_ENDPOINT` is set (the SDK's own variables, including the endpoint
and headers, configure the exporter); then each rpc and background task is a span,
child of the caller's.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16
_propagator = TraceContextTextMapPropagator()
_tracer: trace.Tracer | None = None


@dataclass(frozen=True)
class Context:
    trace_id: str  # what logs and errors show: the W3C trace id, or x-request-id
    w3c_trace: str  # 32 hex
    flags: str
    parent: Mapping[str, str]  # the incoming carrier (for OpenTelemetry's extract)


def incoming(metadata: Mapping[str, str]) -> Context:
    parent = metadata.get("traceparent", "")
    match = _TRACEPARENT.fullmatch(parent.strip().lower())
    if match and match.group(1) != _ZERO_TRACE and match.group(2) != _ZERO_SPAN:
        trace_id = match.group(1)
        return Context(trace_id, trace_id, match.group(3), {"traceparent": match.group(0)})
    given = metadata.get("x-request-id")
    trace_id = given if given and _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    return Context(trace_id, secrets.token_hex(16), "01", {})


def traceparent(context: Context, span_id: str | None = None) -> str:
    return f"00-{context.w3c_trace}-{span_id or secrets.token_hex(8)}-{context.flags}"


@contextlib.contextmanager
def span(name: str, context: Context, attributes: Mapping[str, Any]) -> Iterator[Any]:
    """An OpenTelemetry span (server kind) under the caller's, or nothing when off.
    Yields the span (or None); its id is what the answer's traceparent carries."""
    if _tracer is None:
        yield None
        return
    parent = _propagator.extract(dict(context.parent))
    with _tracer.start_as_current_span(
        name, context=parent, kind=SpanKind.SERVER, attributes=dict(attributes)
    ) as current:
        yield current


def span_id(current: Any) -> str | None:
    if current is None:
        return None
    return f"{current.get_span_context().span_id:016x}"


def fail(current: Any, code: str) -> None:
    if current is not None:
        current.set_attribute("rpc.grpc.status_code", code)
        current.set_status(Status(StatusCode.ERROR, code))


def configure(exporter: SpanExporter | None = None) -> bool:
    """Turn spans on: with `exporter` (tests), or from the OTEL_* environment."""
    global _tracer
    if exporter is None:
        exporter = _from_environment()
        if exporter is None:
            return False
        processor: Any = BatchSpanProcessor(exporter)
    else:
        processor = SimpleSpanProcessor(exporter)
    provider = TracerProvider(resource=Resource.create({"service.name": _service_name()}))
    provider.add_span_processor(processor)
    _tracer = provider.get_tracer("invoicing")
    return True


def disable() -> None:
    global _tracer
    _tracer = None


def _from_environment() -> SpanExporter | None:
    kind = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if kind == "console":
        return ConsoleSpanExporter()
    if kind == "otlp" or (not kind and os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    return None


def _service_name() -> str:
    return os.environ.get("OTEL_SERVICE_NAME", "invoicing")
