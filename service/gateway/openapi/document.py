"""The OpenAPI 3.1 document of the gateway's bindings: the same `google.api.http` rules it
routes. Mapping rules follow protoc-gen-openapiv3: path templates are expanded
(`/v1/{name=shelves/*}` -> `/v1/shelves/{name}`), body `*` excludes path-bound fields,
every operation has a `default` error response."""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from service.gateway.bindings import Binding, success_status
from service.gateway.openapi.schemas import (
    ERROR_REF,
    SECURITY,
    Json,
    Schemas,
    below,
    resolve,
)

_OPENAPI_VERBS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_CONVENTIONS = """\
JSON conventions: proto field names (snake_case) on output, snake_case or lowerCamelCase
accepted on input; fields without presence are always printed (zero values included),
unset proto3 `optional` fields and unset messages are omitted; 64-bit integers are strings;
enums are value names (numbers accepted on input); timestamps are RFC 3339 strings; field
masks are comma-separated strings. Errors carry the gRPC code name, the HTTP status, an
`ErrorInfo` in `details` and a trace id. Authentication: `Authorization: Bearer <JWT>`."""

_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)(?:=([^}]*))?\}")
_SENTENCE = re.compile(r"(.+?\.)(?=\s+[A-Z]|$)")  # "(e.g. by id)" does not end a sentence


def expand_template(template: str) -> tuple[str, list[tuple[str, str]]]:
    """An HttpRule template as an OpenAPI path, with its (parameter name, field path) pairs:
    `/v1/{name=shelves/*/books/*}:x` -> `/v1/shelves/{name}/books/{name_1}:x`."""
    variables: list[tuple[str, str]] = []

    def expand(match: re.Match[str]) -> str:
        field, pattern = match.group(1), match.group(2) or "*"
        return "/".join(_expand_segment(seg, field, variables) for seg in pattern.split("/"))

    return _VARIABLE.sub(expand, template), variables


def _expand_segment(segment: str, field: str, variables: list[tuple[str, str]]) -> str:
    if segment not in ("*", "**"):
        return segment
    seen = sum(1 for _, f in variables if f == field)
    name = field if seen == 0 else f"{field}_{seen}"
    variables.append((name, field))
    return f"{{{name}}}"


def _summary(text: str) -> str:
    first = " ".join(text.split("\n\n", 1)[0].split())
    match = _SENTENCE.match(first)
    return match.group(1) if match else first


# ---- operations ------------------------------------------------------------------------------


_PARAM = re.compile(r"\{([^}]*)\}")


class _Document:
    """Paths, operations and tags, with the component schemas they reference."""

    def __init__(self, comments: Mapping[str, str]) -> None:
        self.schemas = Schemas(comments)
        self.paths: dict[str, Json] = {}
        self.tags: dict[str, Json] = {}
        self._ids: Counter[str] = Counter()
        self._shapes: dict[str, str] = {}

    def add(self, binding: Binding) -> None:
        verb = binding.method.lower()
        path, variables = self._same_shape(*expand_template(binding.template))
        item = self.paths.get(path, {})
        if verb not in _OPENAPI_VERBS or verb in item:
            return  # not expressible in OpenAPI, or shadowed by an earlier binding
        self.paths[path] = item
        item[verb] = self.operation(binding, self._operation_id(binding.rpc), variables)
        self._tag(binding.rpc.containing_service)

    def _same_shape(
        self, path: str, variables: list[tuple[str, str]]
    ) -> tuple[str, list[tuple[str, str]]]:
        """OpenAPI forbids two templated paths that differ only in parameter names
        (`/v1/invoices/{id}` and `/v1/invoices/{invoice.id}`): the later one reuses the
        first one's path and names, still bound to its own fields."""
        shape = _PARAM.sub("{}", path)
        known = self._shapes.setdefault(shape, path)
        if known == path:
            return path, variables
        names = _PARAM.findall(known)
        return known, [(names[i], field) for i, (_, field) in enumerate(variables)]

    def _operation_id(self, rpc: MethodDescriptor) -> str:
        base = f"{rpc.containing_service.name}_{rpc.name}"
        taken = self._ids[base]
        self._ids[base] += 1
        return base if taken == 0 else f"{base}_{taken}"

    def _tag(self, service: ServiceDescriptor) -> None:
        if service.name not in self.tags:
            self.tags[service.name] = {
                "name": service.name,
                **self.schemas.describe(service.full_name),
            }

    def operation(
        self, binding: Binding, operation_id: str, variables: list[tuple[str, str]]
    ) -> Json:
        rpc = binding.rpc
        op: Json = {"operationId": operation_id, "tags": [rpc.containing_service.name]}
        op |= self._summary(rpc.full_name)
        parameters = self.parameters(binding, variables)
        if parameters:
            op["parameters"] = parameters
        if binding.body:
            op["requestBody"] = self.request_body(binding, frozenset(f for _, f in variables))
        op["responses"] = self.responses(binding)
        op["security"] = copy.deepcopy(SECURITY)
        if rpc.GetOptions().deprecated:
            op["deprecated"] = True
        return op

    def _summary(self, full_name: str) -> Json:
        text = self.schemas.comments.get(full_name, "")
        return {"summary": _summary(text), "description": text} if text else {}

    def parameters(self, binding: Binding, variables: list[tuple[str, str]]) -> list[Json]:
        request = binding.rpc.input_type
        params = [self.schemas.path_parameter(request, name, f) for name, f in variables]
        if binding.body == "*":
            return params
        bound = {f for _, f in variables} | ({binding.body} if binding.body else set())
        return params + list(self.schemas.query_parameters(request, frozenset(bound)))

    def request_body(self, binding: Binding, bound: frozenset[str]) -> Json:
        rpc, request = binding.rpc, binding.rpc.input_type
        base = f"{rpc.containing_service.full_name}.{rpc.name}.Body"
        body: Json = {"required": True}
        if binding.body == "*":
            schema = self.schemas.object_ref(request, bound, base)
        else:
            field = resolve(request, binding.body)
            schema = self.schemas.field_schema(field, below(bound, field.name), base)
            body |= self.schemas.describe(field.full_name)
        return body | {"content": {"application/json": {"schema": schema}}}

    def responses(self, binding: Binding) -> Json:
        status = success_status(binding)
        success: Json = {"description": HTTPStatus(status).phrase}
        if status != HTTPStatus.NO_CONTENT:
            content = {"application/json": {"schema": self.response_schema(binding)}}
            success["content"] = content
        error: Json = {
            "description": "Error",
            "content": {"application/json": {"schema": ERROR_REF}},
        }
        return {str(status): success, "default": copy.deepcopy(error)}

    def response_schema(self, binding: Binding) -> Json:
        output = binding.rpc.output_type
        if binding.response_body:
            return self.schemas.field_schema(resolve(output, binding.response_body))
        return self.schemas.message_ref(output)

    def build(self, title: str, version: str) -> Json:
        security_schemes = {
            "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        }
        return {
            "openapi": "3.1.0",
            "info": {"title": title, "version": version, "description": _CONVENTIONS},
            "servers": [{"url": "/"}],
            "tags": list(self.tags.values()),
            "paths": self.paths,
            "components": {"schemas": self.schemas.finish(), "securitySchemes": security_schemes},
            "security": copy.deepcopy(SECURITY),
        }


def build_openapi(
    bindings: Sequence[Binding],
    *,
    title: str = "Invoicing API",
    version: str = "v1",
    comments: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1.0 document of `bindings`; descriptions from `comments` (load_comments)."""
    document = _Document(comments or {})
    for binding in bindings:
        document.add(binding)
    return document.build(title, version)
