"""The OpenAPI (JSON Schema 2020-12) of what a dialect really speaks, from the same
descriptors and the same `Style` rules that write it: the seed paths are documented in
their seed's format, not the canonical one. Message schemas are components named
`<dialect>.<message>` (`seed-004.invoicing.v1.Connection`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from service.gateway.bindings import Binding
from service.gateway.dialects.base import Dialect, JsonApi, Plain, Resource, _descriptor, list_field
from service.gateway.dialects.style import Style, short_values

Json = dict[str, Any]
F = FieldDescriptor
_NULL: Json = {"type": "null"}
_INT64: Json = {"type": "string", "pattern": r"^-?[0-9]+$"}
_SCALARS: dict[int, Json] = {
    F.TYPE_DOUBLE: {"type": "number"},
    F.TYPE_FLOAT: {"type": "number"},
    F.TYPE_INT32: {"type": "integer"},
    F.TYPE_SINT32: {"type": "integer"},
    F.TYPE_SFIXED32: {"type": "integer"},
    F.TYPE_UINT32: {"type": "integer", "minimum": 0},
    F.TYPE_FIXED32: {"type": "integer", "minimum": 0},
    F.TYPE_INT64: _INT64,
    F.TYPE_SINT64: _INT64,
    F.TYPE_SFIXED64: _INT64,
    F.TYPE_UINT64: _INT64,
    F.TYPE_FIXED64: _INT64,
    F.TYPE_BOOL: {"type": "boolean"},
    F.TYPE_STRING: {"type": "string"},
    F.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}
_WKT: dict[str, Json] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
}


def _nullable(schema: Json) -> Json:
    return {"anyOf": [schema, _NULL]}


class DialectSchemas:
    """Builds a dialect's schemas into `components` (the document's component table)."""

    def __init__(self, components: dict[str, Json]) -> None:
        self.components = components

    # -- messages in a style ---------------------------------------------------------------

    def message(
        self,
        dialect: Dialect,
        style: Style,
        message: Any,
        suffix: str = "",
        exclude: frozenset[str] = frozenset(),
    ) -> Json:
        """The message's schema (a component); without the `exclude` field paths (the ones
        a request's path binds), an inline schema."""
        if exclude:
            return self._object(dialect, style, message, suffix, exclude)
        name = f"{dialect.name}.{message.full_name}{suffix}"
        if name not in self.components:
            self.components[name] = {}  # reserved first: recursive messages end here
            self.components[name] = self._object(dialect, style, message, suffix)
        return {"$ref": f"#/components/schemas/{name}"}

    def _object(
        self,
        dialect: Dialect,
        style: Style,
        message: Any,
        suffix: str,
        exclude: frozenset[str] = frozenset(),
    ) -> Json:
        properties: Json = {}
        for f in message.fields:
            if f.name in style.hidden or f.name in exclude:
                continue
            nested = frozenset(
                p.removeprefix(f"{f.name}.") for p in exclude if p.startswith(f"{f.name}.")
            )
            if nested and f.message_type is not None and not f.is_repeated:
                schema = self._object(dialect, style, f.message_type, suffix, nested)
            else:
                schema = self._field(dialect, style, f, suffix)
            unset = not f.is_repeated and (f.message_type is not None or f.has_presence)
            money = f.name in style.numbers and f.type == F.TYPE_STRING
            blank = f.name in style.blank_null and f.type == F.TYPE_STRING
            if (style.nulls and unset and f.name not in style.keep_unset) or money or blank:
                schema = _nullable(schema)
            properties[style.key(f)] = schema
        return {"type": "object", "properties": properties}

    def _field(self, dialect: Dialect, style: Style, f: FieldDescriptor, suffix: str) -> Json:
        entry = f.message_type
        if entry is not None and entry.GetOptions().map_entry:
            value = self._value(dialect, style, entry.fields_by_name["value"], suffix)
            return {"type": "object", "additionalProperties": value}
        item = self._value(dialect, style, f, suffix)
        return {"type": "array", "items": item} if f.is_repeated else item

    def _value(self, dialect: Dialect, style: Style, f: FieldDescriptor, suffix: str) -> Json:
        if f.message_type is not None:
            name = f.message_type.full_name
            if name == "google.type.Date" and style.iso_dates:
                return {"type": "string", "format": "date"}
            if name.startswith("google.protobuf."):
                return dict(_WKT.get(name, {}))
            return self.message(dialect, style, f.message_type, suffix)
        if f.enum_type is not None:
            if style.short_enums:
                return {"anyOf": [{"type": "string", "enum": short_values(f.enum_type)}, _NULL]}
            return {"type": "string", "enum": [v.name for v in f.enum_type.values]}
        if f.name in style.numbers and f.type == F.TYPE_STRING:
            return {
                "type": ["number", "string"],
                "description": "A decimal: written as a JSON number with its exact digits; "
                "read from a JSON number or a string, never through a float.",
            }
        if style.int64_numbers and _SCALARS[f.type] is _INT64:
            return {"type": "integer"}
        return dict(_SCALARS[f.type])

    # -- JSON:API ----------------------------------------------------------------------------

    def resource_object(self, dialect: JsonApi, resource: Resource) -> Json:
        name = f"{dialect.name}.{resource.type}"
        if name not in self.components:
            message = _descriptor(resource.message)
            assert message is not None, resource.message
            style = dialect.attributes_style(resource)
            relationships = {
                rel.name: {
                    "type": "object",
                    "properties": {"data": _nullable(_identifier(rel.type))},
                }
                for rel in resource.relationships
            }
            self.components[name] = {
                "type": "object",
                "required": ["type", "id", "attributes"],
                "properties": {
                    "type": {"const": resource.type},
                    "id": {"type": "string"},
                    "attributes": self.message(dialect, style, message, ".attributes"),
                    "relationships": {"type": "object", "properties": relationships},
                },
            }
        return {"$ref": f"#/components/schemas/{name}"}

    def error(self, dialect: Dialect) -> Json | None:
        if not isinstance(dialect, JsonApi):
            return None
        name = f"{dialect.name}.Error"
        self.components.setdefault(
            name,
            {
                "type": "object",
                "required": ["code", "status", "title", "message", "meta"],
                "properties": {
                    "code": {"type": "string", "description": "BAD_REQUEST, UNAUTHORIZED, ..."},
                    "status": {"type": "integer"},
                    "title": {"type": "string"},
                    "message": {"type": "string"},
                    "errors": {"type": "array", "items": {"type": "object"}},
                    "details": {"type": "array", "items": {"type": "object"}},
                    "meta": {
                        "type": "object",
                        "required": ["trace_id", "log_id"],
                        "properties": {
                            "trace_id": {"type": "string"},
                            "log_id": {"type": "string"},
                            "grpc_code": {"type": "string"},
                        },
                    },
                },
            },
        )
        return {"$ref": f"#/components/schemas/{name}"}

    # -- operations --------------------------------------------------------------------------

    def response(self, dialect: Dialect, binding: Binding) -> Json:
        output: Any = binding.rpc.output_type
        if binding.response_body:
            output = output.fields_by_name[binding.response_body].message_type
        data = list_field(output)
        if isinstance(dialect, JsonApi):
            resource = dialect.resource(output.full_name)
            if resource is not None:
                ref = self.resource_object(dialect, resource)
                return {"type": "object", "required": ["data"], "properties": {"data": ref}}
            if data is not None and data.message_type is not None:
                found = dialect.resource(data.message_type.full_name)
                if found is not None:
                    item = self.resource_object(dialect, found)
                else:  # records: the root's resource objects
                    items = [
                        self.resource_object(dialect, r)
                        for _, m in dialect.roots
                        if (r := dialect.resource(m)) is not None
                    ]
                    item = {"anyOf": [*items, {"type": "object", "required": ["type", "id"]}]}
                return _list_document(item)
        if isinstance(dialect, Plain) and dialect.bare_list and data is not None:
            assert data.message_type is not None
            return {
                "type": "array",
                "items": self.message(dialect, dialect.style, data.message_type),
            }
        return self.message(dialect, dialect.style, output)

    def request(
        self, dialect: Dialect, binding: Binding, target: Any, exclude: frozenset[str]
    ) -> Json:
        canonical_form = self.message(dialect, dialect.style, target, exclude=exclude)
        if isinstance(dialect, JsonApi) and (resource := dialect.resource(target.full_name)):
            document = {
                "type": "object",
                "required": ["data"],
                "properties": {
                    "data": {
                        "type": "object",
                        "properties": {
                            "type": {"const": resource.type},
                            "attributes": self.message(
                                dialect, dialect.attributes_style(resource), target, ".attributes"
                            ),
                            "relationships": {"type": "object"},
                        },
                    }
                },
            }
            return {"anyOf": [document, canonical_form]}
        return canonical_form


def _identifier(kind: str) -> Json:
    return {
        "type": "object",
        "required": ["type", "id"],
        "properties": {"type": {"const": kind}, "id": {"type": "string"}},
    }


def _list_document(item: Json) -> Json:
    return {
        "type": "object",
        "required": ["data", "meta", "links"],
        "properties": {
            "data": {"type": "array", "items": item},
            "meta": {
                "type": "object",
                "properties": {"total": {"type": "integer"}, "count": {"type": "integer"}},
            },
            "links": {
                "type": "object",
                "properties": {
                    "next": {
                        "anyOf": [{"type": "string"}, _NULL],
                        "description": "The cursor of the next page, or null.",
                    }
                },
            },
        },
    }


def example(dialect: Dialect, target: Any, canonical: Any) -> Any:
    """A canonical request example in the dialect's spelling: keys, short enums and (for
    JSON:API) a resource document; money stays a string, which the dialect also reads."""
    if not isinstance(canonical, dict):
        return canonical
    style = replace(dialect.style, nulls=False, numbers=frozenset())
    if isinstance(dialect, JsonApi) and (resource := dialect.resource(target.full_name)):
        attributes = replace(dialect.attributes_style(resource), nulls=False, numbers=frozenset())
        relationships = {
            rel.name: {"data": {"type": rel.type, "id": canonical[rel.field]}}
            for rel in resource.relationships
            if canonical.get(rel.field)
        }
        node: Json = {"type": resource.type, "attributes": attributes.write(target, canonical)}
        if relationships:
            node["relationships"] = relationships
        return {"data": node}
    return style.write(target, canonical)
