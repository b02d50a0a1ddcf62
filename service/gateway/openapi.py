"""OpenAPI 3.1 for the REST gateway, built from the same `google.api.http` bindings it routes.

Mapping rules follow protoc-gen-openapiv3: path templates are expanded (`/v1/{name=shelves/*}`
-> `/v1/shelves/{name}`), body `*` excludes path-bound fields, `google.api.field_behavior`
gives `required` / `readOnly` / `writeOnly`, int64 is a string, enums are strings, and every
operation has a `default` error response. The schemas describe the gateway's JSON: proto
field names, zero values printed, int64 as strings, enums by name, well-known types in their
proto3 JSON form. Also here: a Swagger UI page that loads only local assets.
"""

from __future__ import annotations

import copy
import html
import importlib.util
import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import (
    Descriptor,
    EnumDescriptor,
    FieldDescriptor,
    MethodDescriptor,
    ServiceDescriptor,
)

from service.gateway.bindings import Binding, success_status

Json = dict[str, Any]

_F = FieldDescriptor
_INT32: Json = {"type": "integer", "format": "int32"}
_UINT32: Json = {"type": "integer", "minimum": 0, "maximum": 4_294_967_295}
_INT64: Json = {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"}
_UINT64: Json = {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"}
_BYTES: Json = {"type": "string", "contentEncoding": "base64"}
_SCALARS: dict[int, Json] = {
    _F.TYPE_DOUBLE: {"type": "number", "format": "double"},
    _F.TYPE_FLOAT: {"type": "number", "format": "float"},
    _F.TYPE_INT32: _INT32,
    _F.TYPE_SINT32: _INT32,
    _F.TYPE_SFIXED32: _INT32,
    _F.TYPE_UINT32: _UINT32,
    _F.TYPE_FIXED32: _UINT32,
    _F.TYPE_INT64: _INT64,
    _F.TYPE_SINT64: _INT64,
    _F.TYPE_SFIXED64: _INT64,
    _F.TYPE_UINT64: _UINT64,
    _F.TYPE_FIXED64: _UINT64,
    _F.TYPE_BOOL: {"type": "boolean"},
    _F.TYPE_STRING: {"type": "string"},
    _F.TYPE_BYTES: _BYTES,
}

# Well-known types, inlined in their proto3 JSON form (google.type.Date is a plain message).
_WKT: dict[str, Json] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    "google.protobuf.FieldMask": {"type": "string", "description": "Comma-separated paths."},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
        "additionalProperties": True,
    },
    "google.protobuf.DoubleValue": _SCALARS[_F.TYPE_DOUBLE],
    "google.protobuf.FloatValue": _SCALARS[_F.TYPE_FLOAT],
    "google.protobuf.Int32Value": _INT32,
    "google.protobuf.UInt32Value": _UINT32,
    "google.protobuf.Int64Value": _INT64,
    "google.protobuf.UInt64Value": _UINT64,
    "google.protobuf.BoolValue": {"type": "boolean"},
    "google.protobuf.StringValue": {"type": "string"},
    "google.protobuf.BytesValue": _BYTES,
}
# Well-known types that are one scalar in JSON, hence usable as query parameters.
_QUERY_WKT = frozenset(n for n, s in _WKT.items() if s.get("type") not in (None, "object", "array"))

_OPENAPI_VERBS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_REQUIRED = field_behavior_pb2.REQUIRED
_OUTPUT_ONLY = field_behavior_pb2.OUTPUT_ONLY
_INPUT_ONLY = field_behavior_pb2.INPUT_ONLY
_FIELD_BEHAVIOR: Any = field_behavior_pb2.field_behavior  # a plain FieldDescriptor in the stubs

_ERROR_CODES = (
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
    "BAD_REQUEST",
    "METHOD_NOT_ALLOWED",
    "PAYLOAD_TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
)
_ERROR_REF: Json = {"$ref": "#/components/schemas/Error"}
_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]
_CONVENTIONS = """\
JSON conventions: proto field names (snake_case) on output, snake_case or lowerCamelCase
accepted on input; fields without presence are always printed (zero values included),
unset proto3 `optional` fields and unset messages are omitted; 64-bit integers are strings;
enums are value names (numbers accepted on input); timestamps are RFC 3339 strings; field
masks are comma-separated strings. Errors carry the gRPC code name, the HTTP status, an
`ErrorInfo` in `details` and a trace id. Authentication: `Authorization: Bearer <JWT>`."""

_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)(?:=([^}]*))?\}")
_SENTENCE = re.compile(r"(.+?\.)(?=\s+[A-Z]|$)")  # "(e.g. by id)" does not end a sentence


# ---- comments ------------------------------------------------------------------------------


def load_comments(descriptor_set_path: Path) -> dict[str, str]:
    """Leading comments by full name (message, field, enum, service, method) from a descriptor
    set built with --include_source_info. Enum values are keyed `<enum full name>.<VALUE>`."""
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set_path.read_bytes())
    comments: dict[str, str] = {}
    for file in descriptor_set.file:
        located = {tuple(loc.path): loc.leading_comments for loc in file.source_code_info.location}
        for path, name in _file_elements(file):
            text = _clean_comment(located.get(path, ""))
            if text:
                comments[name] = text
    return comments


def _clean_comment(text: str) -> str:
    lines = [line.removeprefix(" ").rstrip() for line in text.splitlines()]
    return "\n".join(lines).strip()


_FILE = descriptor_pb2.FileDescriptorProto
_MESSAGE = descriptor_pb2.DescriptorProto
_ENUM = descriptor_pb2.EnumDescriptorProto
_SERVICE = descriptor_pb2.ServiceDescriptorProto
_Path = tuple[int, ...]


def _file_elements(file: descriptor_pb2.FileDescriptorProto) -> Iterator[tuple[_Path, str]]:
    """(source_code_info path, full name) of every described element of a file."""
    prefix = f"{file.package}." if file.package else ""
    for i, message in enumerate(file.message_type):
        yield from _message_elements(message, (_FILE.MESSAGE_TYPE_FIELD_NUMBER, i), prefix)
    for i, enum in enumerate(file.enum_type):
        yield from _enum_elements(enum, (_FILE.ENUM_TYPE_FIELD_NUMBER, i), prefix)
    for i, service in enumerate(file.service):
        path, name = (_FILE.SERVICE_FIELD_NUMBER, i), prefix + service.name
        yield path, name
        for j, method in enumerate(service.method):
            yield (*path, _SERVICE.METHOD_FIELD_NUMBER, j), f"{name}.{method.name}"


def _message_elements(
    message: descriptor_pb2.DescriptorProto, path: _Path, prefix: str
) -> Iterator[tuple[_Path, str]]:
    name = prefix + message.name
    yield path, name
    for i, field in enumerate(message.field):
        yield (*path, _MESSAGE.FIELD_FIELD_NUMBER, i), f"{name}.{field.name}"
    for i, nested in enumerate(message.nested_type):
        yield from _message_elements(
            nested, (*path, _MESSAGE.NESTED_TYPE_FIELD_NUMBER, i), name + "."
        )
    for i, enum in enumerate(message.enum_type):
        yield from _enum_elements(enum, (*path, _MESSAGE.ENUM_TYPE_FIELD_NUMBER, i), name + ".")


def _enum_elements(
    enum: descriptor_pb2.EnumDescriptorProto, path: _Path, prefix: str
) -> Iterator[tuple[_Path, str]]:
    name = prefix + enum.name
    yield path, name
    for i, value in enumerate(enum.value):
        yield (*path, _ENUM.VALUE_FIELD_NUMBER, i), f"{name}.{value.name}"


# ---- descriptor helpers ----------------------------------------------------------------------


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _behaviors(field: FieldDescriptor) -> set[int]:
    return set(field.GetOptions().Extensions[_FIELD_BEHAVIOR])


def _map_entry(field: FieldDescriptor) -> Descriptor | None:
    """The synthetic entry message of a map field; None for other fields."""
    message = field.message_type
    return message if message is not None and message.GetOptions().map_entry else None


def _is_query_leaf(field: FieldDescriptor) -> bool:
    return field.message_type is None or field.message_type.full_name in _QUERY_WKT


def _below(paths: frozenset[str], field: str) -> frozenset[str]:
    """The paths under `field`, relative to it: {"invoice.id", "x"} below "invoice" -> {"id"}."""
    return frozenset(p.removeprefix(f"{field}.") for p in paths if p.startswith(f"{field}."))


def _resolve(message: Descriptor, path: str) -> FieldDescriptor:
    """The field at a dotted path ("invoice.id") of a message."""
    head, _, rest = path.partition(".")
    field = message.fields_by_name.get(head)
    if field is None:
        raise ValueError(f"{message.full_name} has no field {head!r}")
    if not rest:
        return field
    if field.message_type is None:
        raise ValueError(f"{field.full_name} is not a message: cannot resolve {rest!r}")
    return _resolve(field.message_type, rest)


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


# ---- schemas ---------------------------------------------------------------------------------


class _Schemas:
    """Component schemas: messages and enums are described when first referenced."""

    def __init__(self, comments: Mapping[str, str]) -> None:
        self.comments = comments
        self.components: dict[str, Json] = {"Error": _error_schema()}
        self._todo: dict[str, Descriptor | EnumDescriptor] = {}
        self._pruned: dict[tuple[str, frozenset[str]], str] = {}

    def describe(self, full_name: str) -> Json:
        text = self.comments.get(full_name)
        return {"description": text} if text else {}

    def finish(self) -> dict[str, Json]:
        while self._todo:
            name, desc = self._todo.popitem()
            if name not in self.components:
                self.components[name] = self._build(desc)
        return dict(sorted(self.components.items()))

    def _build(self, desc: Descriptor | EnumDescriptor) -> Json:
        if isinstance(desc, EnumDescriptor):
            return self.enum_schema(desc)
        return self.message_schema(desc)

    def message_ref(self, message: Descriptor) -> Json:
        wkt = _WKT.get(message.full_name)
        if wkt is not None:
            return copy.deepcopy(wkt)
        if message.full_name not in self.components:
            self._todo[message.full_name] = message
        return _ref(message.full_name)

    def enum_ref(self, enum: EnumDescriptor) -> Json:
        if enum.full_name == "google.protobuf.NullValue":
            return {"type": "null"}
        if enum.full_name not in self.components:
            self._todo[enum.full_name] = enum
        return _ref(enum.full_name)

    def object_ref(self, message: Descriptor, exclude: frozenset[str], base: str) -> Json:
        """The message's schema; without the `exclude` field paths, a dedicated component."""
        if not exclude:
            return self.message_ref(message)
        key = (base, exclude)
        if key not in self._pruned:
            taken = sum(1 for b, _ in self._pruned if b == base)
            name = self._pruned[key] = base if taken == 0 else f"{base}_{taken}"
            self.components[name] = self.message_schema(message, exclude, name)
        return _ref(self._pruned[key])

    def enum_schema(self, enum: EnumDescriptor) -> Json:
        values = [v.name for v in enum.values]
        described_values = [(v, self.comments.get(f"{enum.full_name}.{v}")) for v in values]
        lines = [f"- `{v}`: {text}" for v, text in described_values if text]
        notes = [text for text in (self.comments.get(enum.full_name), "\n".join(lines)) if text]
        described = {"description": "\n\n".join(notes)} if notes else {}
        return {"type": "string", **described, "enum": values}

    def message_schema(
        self, message: Descriptor, exclude: frozenset[str] = frozenset(), name: str = ""
    ) -> Json:
        properties: Json = {}
        required: list[str] = []
        for field in message.fields:
            if field.name in exclude:
                continue
            below = _below(exclude, field.name)
            properties[field.name] = self.property_schema(field, below, f"{name}.{field.name}")
            if _REQUIRED in _behaviors(field):
                required.append(field.name)
        schema: Json = {"type": "object", **self.describe(message.full_name)}
        schema["properties"] = properties
        if required:
            schema["required"] = required
        return schema

    def property_schema(
        self, field: FieldDescriptor, exclude: frozenset[str] = frozenset(), name: str = ""
    ) -> Json:
        schema = {**self.field_schema(field, exclude, name), **self.describe(field.full_name)}
        behaviors = _behaviors(field)
        if _OUTPUT_ONLY in behaviors:
            schema["readOnly"] = True
        if _INPUT_ONLY in behaviors:
            schema["writeOnly"] = True
        if field.GetOptions().deprecated:
            schema["deprecated"] = True
        return schema

    def field_schema(
        self, field: FieldDescriptor, exclude: frozenset[str] = frozenset(), name: str = ""
    ) -> Json:
        entry = _map_entry(field)
        if entry is not None:
            value = self.value_schema(entry.fields_by_name["value"])
            return {"type": "object", "additionalProperties": value}
        item = self.value_schema(field, exclude, name)
        return {"type": "array", "items": item} if field.is_repeated else item

    def value_schema(
        self, field: FieldDescriptor, exclude: frozenset[str] = frozenset(), name: str = ""
    ) -> Json:
        if field.message_type is not None:
            return self.object_ref(field.message_type, exclude, name)
        if field.enum_type is not None:
            return self.enum_ref(field.enum_type)
        return dict(_SCALARS[field.type])

    def query_parameters(
        self,
        message: Descriptor,
        bound: frozenset[str],
        prefix: str = "",
        seen: frozenset[str] = frozenset(),
    ) -> Iterator[Json]:
        """Leaf fields not in `bound`, nested messages flattened with dotted names (maps,
        repeated messages and JSON-object well-known types cannot be query parameters)."""
        seen = seen | {message.full_name}
        for field in message.fields:
            path = prefix + field.name
            if path in bound or _map_entry(field) is not None:
                continue
            if _is_query_leaf(field):
                yield self.query_parameter(field, path)
            elif (nested := _flattenable(field, seen)) is not None:
                yield from self.query_parameters(nested, bound, f"{path}.", seen)

    def query_parameter(self, field: FieldDescriptor, path: str) -> Json:
        param: Json = {"name": path, "in": "query", **self.describe(field.full_name)}
        param["schema"] = self.field_schema(field)
        if field.is_repeated:
            param |= {"style": "form", "explode": True}
        if _REQUIRED in _behaviors(field):
            param["required"] = True
        if field.GetOptions().deprecated:
            param["deprecated"] = True
        return param

    def path_parameter(self, request: Descriptor, name: str, field_path: str) -> Json:
        field = _resolve(request, field_path)
        param: Json = {"name": name, "in": "path", "required": True}
        return {**param, **self.describe(field.full_name), "schema": {"type": "string"}}


def _flattenable(field: FieldDescriptor, seen: frozenset[str]) -> Descriptor | None:
    """The message of a singular message field whose leaves can be query parameters."""
    message = field.message_type
    if message is None or field.is_repeated or message.full_name in _WKT:
        return None
    return None if message.full_name in seen else message


def _error_schema() -> Json:
    detail: Json = {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
        "additionalProperties": True,
    }
    properties: Json = {
        "code": {"type": "string", "enum": list(_ERROR_CODES), "description": "gRPC code name."},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "title": {"type": "string", "description": "HTTP reason phrase."},
        "message": {"type": "string"},
        "details": {
            "type": "array",
            "items": detail,
            "description": "google.rpc.ErrorInfo, plus google.rpc.BadRequest for invalid fields.",
        },
        "meta": {
            "type": "object",
            "properties": {"trace_id": {"type": "string"}},
            "required": ["trace_id"],
        },
    }
    return {
        "type": "object",
        "description": "Every non-2xx response: the google.rpc.Status, HTTP-shaped.",
        "properties": properties,
        "required": list(properties),
    }


# ---- operations ------------------------------------------------------------------------------


_PARAM = re.compile(r"\{([^}]*)\}")


class _Document:
    """Paths, operations and tags, with the component schemas they reference."""

    def __init__(self, comments: Mapping[str, str]) -> None:
        self.schemas = _Schemas(comments)
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
        op["security"] = copy.deepcopy(_SECURITY)
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
            field = _resolve(request, binding.body)
            schema = self.schemas.field_schema(field, _below(bound, field.name), base)
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
            "content": {"application/json": {"schema": _ERROR_REF}},
        }
        return {str(status): success, "default": copy.deepcopy(error)}

    def response_schema(self, binding: Binding) -> Json:
        output = binding.rpc.output_type
        if binding.response_body:
            return self.schemas.field_schema(_resolve(output, binding.response_body))
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
            "security": copy.deepcopy(_SECURITY),
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


# ---- docs page -------------------------------------------------------------------------------


def static_dir() -> Path:
    """Swagger UI 5 assets shipped by swagger-ui-py (located without importing the package)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or spec.origin is None:
        raise RuntimeError("swagger-ui-py is not installed")
    return Path(spec.origin).parent / "static"


def docs_html(openapi_url: str = "/openapi.json", static_prefix: str = "/docs/static") -> str:
    """A Swagger UI page for `openapi_url` whose assets all come from `static_prefix`."""
    prefix = html.escape(static_prefix.rstrip("/"), quote=True)
    config = {"url": openapi_url, "dom_id": "#swagger-ui", "deepLinking": True}
    config |= {"validatorUrl": None, "persistAuthorization": True}
    config_js = json.dumps(config).replace("<", "\\u003c").replace(">", "\\u003e")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>API documentation</title>
  <link rel="stylesheet" href="{prefix}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{prefix}/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{prefix}/swagger-ui-bundle.js"></script>
  <script src="{prefix}/swagger-ui-standalone-preset.js"></script>
  <script>
    const config = {config_js};
    config.presets = [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset];
    config.layout = "StandaloneLayout";
    window.ui = SwaggerUIBundle(config);
  </script>
</body>
</html>
"""
