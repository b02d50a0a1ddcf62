"""OpenAPI component schemas from protobuf descriptors, describing the gateway's JSON:
proto field names, zero values printed, int64 as strings, enums by name, well-known
types in their proto3 JSON form; `google.api.field_behavior` gives `required`,
`readOnly` and `writeOnly`."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

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
ERROR_REF: Json = {"$ref": "#/components/schemas/Error"}
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]

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


def below(paths: frozenset[str], field: str) -> frozenset[str]:
    """The paths under `field`, relative to it: {"invoice.id", "x"} below "invoice" -> {"id"}."""
    return frozenset(p.removeprefix(f"{field}.") for p in paths if p.startswith(f"{field}."))


def resolve(message: Descriptor, path: str) -> FieldDescriptor:
    """The field at a dotted path ("invoice.id") of a message."""
    head, _, rest = path.partition(".")
    field = message.fields_by_name.get(head)
    if field is None:
        raise ValueError(f"{message.full_name} has no field {head!r}")
    if not rest:
        return field
    if field.message_type is None:
        raise ValueError(f"{field.full_name} is not a message: cannot resolve {rest!r}")
    return resolve(field.message_type, rest)


# ---- schemas ---------------------------------------------------------------------------------


class Schemas:
    """Component schemas: messages and enums are described when first referenced."""

    def __init__(self, comments: Mapping[str, str]) -> None:
        self.comments = comments
        self.components: dict[str, Json] = {"Error": _error_schema()}
        self._todo: dict[str, Descriptor | EnumDescriptor] = {}
        self._pruned: dict[tuple[str, frozenset[str], bool], str] = {}

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

    def object_ref(
        self, message: Descriptor, exclude: frozenset[str], base: str, *, partial: bool = False
    ) -> Json:
        """The message's schema; without the `exclude` field paths (or, `partial`, without
        its top-level `required`: a patch), a dedicated component."""
        if not exclude and not partial:
            return self.message_ref(message)
        key = (base, exclude, partial)
        if key not in self._pruned:
            taken = sum(1 for b, *_ in self._pruned if b == base)
            name = self._pruned[key] = base if taken == 0 else f"{base}_{taken}"
            schema = self.message_schema(message, exclude, name)
            if partial:
                schema.pop("required", None)
            self.components[name] = schema
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
            nested = below(exclude, field.name)
            properties[field.name] = self.property_schema(field, nested, f"{name}.{field.name}")
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
        field = resolve(request, field_path)
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
