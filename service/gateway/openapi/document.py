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

from google.protobuf.descriptor import ServiceDescriptor

from service.gateway import dialects
from service.gateway.bindings import (
    Binding,
    etag_path,
    has_request_id,
    returns_etag,
    success_status,
)
from service.gateway.dialects.base import list_field
from service.gateway.dialects.schemas import DialectSchemas
from service.gateway.dialects.schemas import example as dialect_example
from service.gateway.openapi.schemas import (
    ERROR_REF,
    SECURITY,
    Json,
    Schemas,
    below,
    resolve,
)

ALIAS_TAG = "Aliases"
ALIAS_TEXT = (
    "The same operations at the paths the source documents (seeds) use, so their clients work:"
    " each is marked `x-alias-of` the canonical operation."
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

    def __init__(self, comments: Mapping[str, str], examples: Mapping[str, Json]) -> None:
        self.schemas = Schemas(comments)
        self.dialect_schemas = DialectSchemas(self.schemas.components)
        self.examples = examples
        self.paths: dict[str, Json] = {}
        self.tags: dict[str, Json] = {}
        self._ids: Counter[str] = Counter()
        self._shapes: dict[str, str] = {}
        self._primary: dict[str, tuple[str, str, str]] = {}  # rpc -> (id, method, path)

    def add(self, binding: Binding) -> None:
        verb = binding.method.lower()
        path, variables = self._same_shape(*expand_template(binding.template))
        item = self.paths.get(path, {})
        if verb not in _OPENAPI_VERBS or verb in item:
            return  # not expressible in OpenAPI, or shadowed by an earlier binding
        self.paths[path] = item
        operation_id = self._operation_id(binding)
        operation = self.operation(binding, operation_id, variables)
        primary = self._primary.get(binding.rpc.full_name)
        if binding.alias and primary is not None:
            operation = self._as_alias(operation, primary)
        else:
            self._primary.setdefault(binding.rpc.full_name, (operation_id, verb, path))
        item[verb] = operation
        self._tag(binding.rpc.containing_service)

    def _as_alias(self, operation: Json, primary: tuple[str, str, str]) -> Json:
        """An additional binding: the same operation at a path a seed's clients use."""
        primary_id, verb, path = primary
        note = f"Alias of `{verb.upper()} {path}` (`{primary_id}`), at the path seed clients use."
        operation["x-alias-of"] = primary_id
        operation["tags"] = [ALIAS_TAG]
        operation["summary"] = f"{operation.get('summary', '')} (alias)".strip()
        operation["description"] = f"{note}\n\n{operation.get('description', '')}".strip()
        self.tags.setdefault(ALIAS_TAG, {"name": ALIAS_TAG, "description": ALIAS_TEXT})
        return operation

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

    def _operation_id(self, binding: Binding) -> str:
        rpc = binding.rpc
        base = f"{rpc.containing_service.name}_{rpc.name}"
        if binding.alias:
            base += "_alias"
        taken = self._ids[base]
        self._ids[base] += 1
        return base if taken == 0 else f"{base}_{taken + 1}"

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
        parameters = self.parameters(binding, variables) + _headers(binding)
        if parameters:
            op["parameters"] = parameters
        if binding.body:
            op["requestBody"] = self.request_body(binding, frozenset(f for _, f in variables))
        op["responses"] = self.responses(binding)
        dialect = dialects.for_binding(binding)
        if dialect is not None:
            self._in_dialect(op, binding, dialect, frozenset(f for _, f in variables))
        op["security"] = copy.deepcopy(SECURITY)
        if rpc.GetOptions().deprecated:
            op["deprecated"] = True
        return op

    def _in_dialect(
        self, op: Json, binding: Binding, dialect: dialects.Dialect, bound: frozenset[str]
    ) -> None:
        """A seed path: its body, success and error schemas in its seed's format."""
        op["x-dialect"] = dialect.name
        note = f"Speaks seed {dialect.seed}'s format. {dialect.describes}"
        op["description"] = f"{note}\n\n{op.get('description', '')}".strip()
        if binding.body and "requestBody" in op:
            request = binding.rpc.input_type
            target: Any
            if binding.body == "*":
                target, exclude = request, bound
            else:
                target = resolve(request, binding.body).message_type
                exclude = below(bound, binding.body)
            media = op["requestBody"]["content"]["application/json"]
            media["schema"] = self.dialect_schemas.request(dialect, binding, target, exclude)
            if "example" in media:
                media["example"] = dialect_example(dialect, target, media["example"])
        status = str(success_status(binding))
        content = op["responses"][status].get("content")
        if content is not None:
            content["application/json"]["schema"] = self.dialect_schemas.response(dialect, binding)
        listing = binding.method == "GET" and list_field(binding.rpc.output_type) is not None
        if listing and isinstance(dialect, dialects.JsonApi):
            sort = {
                "name": "sort",
                "in": "query",
                "description": "JSON:API sort: a field, `-field` for descending (the same as "
                "`orderBy` and `direction`).",
                "schema": {"type": "string"},
            }
            op.setdefault("parameters", []).append(sort)
        if listing and isinstance(dialect, dialects.Plain) and dialect.bare_list:
            op["responses"][status].setdefault("headers", {})["Link"] = {
                "description": 'The next page, when there is one: `<url>; rel="next"`.',
                "schema": {"type": "string"},
            }
        error = self.dialect_schemas.error(dialect)
        if error is not None:
            for response in op["responses"].values():
                if "content" in response and response is not op["responses"][status]:
                    response["content"]["application/json"]["schema"] = copy.deepcopy(error)

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
        elif binding.method == "PATCH" and (field := resolve(request, binding.body)).message_type:
            # A patch names only what changes: the resource's `required` does not apply.
            exclude = below(bound, field.name)
            schema = self.schemas.object_ref(field.message_type, exclude, base, partial=True)
            body |= self.schemas.describe(field.full_name)
        else:
            field = resolve(request, binding.body)
            schema = self.schemas.field_schema(field, below(bound, field.name), base)
            body |= self.schemas.describe(field.full_name)
        media: Json = {"schema": schema}
        example = self.examples.get(rpc.full_name)
        if example is not None:
            media["example"] = copy.deepcopy(example)
        return body | {"content": {"application/json": media}}

    def responses(self, binding: Binding) -> Json:
        status = success_status(binding)
        success: Json = {"description": HTTPStatus(status).phrase}
        if status != HTTPStatus.NO_CONTENT:
            content = {"application/json": {"schema": self.response_schema(binding)}}
            success["content"] = content
        headers = _response_headers(binding, status)
        if headers:
            success["headers"] = headers
        error: Json = {
            "description": "Error",
            "content": {"application/json": {"schema": ERROR_REF}},
        }
        responses: Json = {str(status): success}
        if binding.method == "GET" and returns_etag(binding):
            responses["304"] = {
                "description": "Not Modified: If-None-Match named the current etag.",
                "headers": {"ETag": _ETAG_HEADER},
            }
        if etag_path(binding) is not None:
            responses["412"] = {
                "description": "Precondition Failed: If-Match named a stale etag.",
                "content": {"application/json": {"schema": ERROR_REF}},
            }
        return responses | {"default": copy.deepcopy(error)}

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


def _headers(binding: Binding) -> list[Json]:
    """The request headers an operation honours."""
    headers: list[Json] = []
    if has_request_id(binding):
        headers.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "description": "Makes the call idempotent, like `request_id` (1..128 of"
                " A-Za-z0-9._:-, a UUID recommended): a retry with the same key replays the"
                " first answer for 24 hours (with `Idempotent-Replayed: true`); the same key"
                " with another request is 400.",
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
            }
        )
    if etag_path(binding) is not None:
        headers.append(
            {
                "name": "If-Match",
                "in": "header",
                "description": "Apply only if the resource's current etag is this one (else"
                " 412); `*` for any. The same as sending `etag` in the request.",
                "schema": {"type": "string"},
            }
        )
    if binding.method == "GET" and returns_etag(binding):
        headers.append(
            {
                "name": "If-None-Match",
                "in": "header",
                "description": "Answer 304 without a body if the current etag is one of these.",
                "schema": {"type": "string"},
            }
        )
    return headers


_ETAG_HEADER: Json = {
    "description": "The resource's etag (weak), for If-Match and If-None-Match.",
    "schema": {"type": "string"},
}


def _response_headers(binding: Binding, status: int) -> Json:
    headers: Json = {
        "X-Request-Id": {
            "description": "The call's trace id (yours when you sent one).",
            "schema": {"type": "string"},
        }
    }
    if returns_etag(binding):
        headers["ETag"] = copy.deepcopy(_ETAG_HEADER)
    if status == HTTPStatus.CREATED:
        headers["Location"] = {
            "description": "The created resource's URL.",
            "schema": {"type": "string"},
        }
    if has_request_id(binding):
        headers["Idempotent-Replayed"] = {
            "description": "`true` when this answer replays an earlier call's.",
            "schema": {"type": "string", "enum": ["true"]},
        }
    return headers


def build_openapi(
    bindings: Sequence[Binding],
    *,
    title: str = "Invoicing API",
    version: str = "v1",
    comments: Mapping[str, str] | None = None,
    examples: Mapping[str, Json] | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1.0 document of `bindings`; descriptions from `comments` (load_comments),
    request body examples by rpc full name from `examples`."""
    document = _Document(comments or {}, examples or {})
    for binding in bindings:
        document.add(binding)
    return document.build(title, version)
