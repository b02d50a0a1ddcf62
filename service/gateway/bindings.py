"""The HTTP bindings declared on rpcs (`google.api.http`, with additional_bindings)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

_VERBS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class Binding:
    """One HTTP route of one rpc."""

    method: str  # upper case: GET, POST, PATCH, DELETE, PUT, or a custom kind
    template: str  # "/v1/invoices/{id}:issue"
    body: str  # "" (no body), "*" (the whole request) or a top-level field name
    response_body: str  # "" (the whole response) or a top-level field name
    rpc: MethodDescriptor
    alias: bool = False  # an additional binding: the same rpc at another path

    @property
    def full_method(self) -> str:
        """The gRPC method path: "/invoicing.v1.InvoiceService/IssueInvoice"."""
        return f"/{self.rpc.containing_service.full_name}/{self.rpc.name}"


def _from_rule(rule: http_pb2.HttpRule, rpc: MethodDescriptor, alias: bool = False) -> Binding:
    pattern = rule.WhichOneof("pattern")
    if pattern == "custom":
        method, template = rule.custom.kind.upper(), rule.custom.path
    elif pattern in _VERBS:
        method, template = pattern.upper(), getattr(rule, pattern)
    else:
        raise ValueError(f"{rpc.full_name}: http rule without a pattern")
    return Binding(method, template, rule.body, rule.response_body, rpc, alias)


def bindings_for(rpc: MethodDescriptor) -> list[Binding]:
    options = rpc.GetOptions()
    extension: Any = annotations_pb2.http  # typed as a plain FieldDescriptor in the stubs
    if not options.HasExtension(extension):
        return []
    rule: http_pb2.HttpRule = options.Extensions[extension]
    extras = (_from_rule(extra, rpc, alias=True) for extra in rule.additional_bindings)
    return [_from_rule(rule, rpc), *extras]


def bindings_from_services(services: Iterable[ServiceDescriptor]) -> list[Binding]:
    """Every binding of every rpc, in declaration order (which breaks routing ties)."""
    return [b for service in services for rpc in service.methods for b in bindings_for(rpc)]


def has_request_id(binding: Binding) -> bool:
    return "request_id" in binding.rpc.input_type.fields_by_name


def etag_path(binding: Binding) -> tuple[str, ...] | None:
    """Where a precondition (If-Match) goes in the request: its own `etag`, or the body
    resource's. A create has none: there is nothing yet to be stale."""
    request = binding.rpc.input_type
    if success_status(binding) == 201:
        return None
    if "etag" in request.fields_by_name:
        return ("etag",)
    body = request.fields_by_name.get(binding.body) if binding.body not in ("", "*") else None
    if body is not None and body.message_type and "etag" in body.message_type.fields_by_name:
        return (body.name, "etag")
    return None


def returns_etag(binding: Binding) -> bool:
    return "etag" in binding.rpc.output_type.fields_by_name and not binding.response_body


def success_status(binding: Binding) -> int:
    """201 for creates, 204 for rpcs returning google.protobuf.Empty, else 200."""
    if binding.rpc.output_type.full_name == "google.protobuf.Empty":
        return 204
    if binding.rpc.name.startswith("Create") and binding.method == "POST":
        return 201
    return 200


def generated_services(package: str = "invoicing.v1") -> list[ServiceDescriptor]:
    """Every service of the generated package (the standalone gateway serves them all,
    knowing no resource: what the server does not serve answers UNIMPLEMENTED there)."""
    imported = importlib.import_module(package)
    found: list[ServiceDescriptor] = []
    for info in sorted(pkgutil.iter_modules(imported.__path__), key=lambda i: i.name):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(f"{package}.{info.name}")
            found.extend(module.DESCRIPTOR.services_by_name.values())
    return found
