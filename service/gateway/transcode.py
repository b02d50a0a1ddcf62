"""HTTP request -> gRPC request message, gRPC response -> JSON (google.api.http rules).

Fields come from three places, as http.proto says: path variables, the body (`*` or
one field), and the query string for everything else. Unknown query parameters and
unknown body fields are errors naming them (grpc-gateway ignores them silently; its
users complain).
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from google.api import field_behavior_pb2
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from service.gateway import jsonout
from service.gateway.bindings import Binding

_FIELD_BEHAVIOR: Any = field_behavior_pb2.field_behavior
_NOT_UPDATABLE = frozenset({field_behavior_pb2.OUTPUT_ONLY, field_behavior_pb2.IDENTIFIER})

F = FieldDescriptor


class BadRequest(Exception):
    """A request the gateway cannot turn into a gRPC message; names the culprit."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def field_named(descriptor: Any, name: str) -> FieldDescriptor | None:
    """A field by proto name or lowerCamel JSON name."""
    found: FieldDescriptor | None = descriptor.fields_by_name.get(name)
    if found is None:
        found = next((f for f in descriptor.fields if f.json_name == name), None)
    return found


def _resolve(descriptor: Any, path: str) -> list[FieldDescriptor]:
    """Field descriptors along a dotted path, or BadRequest naming it."""
    chain: list[FieldDescriptor] = []
    current: Any = descriptor
    for part in path.split("."):
        field = field_named(current, part) if current is not None else None
        if field is None:
            raise BadRequest(f"unknown field {path!r}", field=path)
        chain.append(field)
        current = field.message_type
    return chain


def _scalar(field: FieldDescriptor, raw: str, name: str) -> Any:
    """A query/path string as the JSON value json_format expects for this field."""
    t = field.type
    if t == F.TYPE_BOOL:
        if raw.lower() in ("true", "1"):
            return True
        if raw.lower() in ("false", "0"):
            return False
        raise BadRequest(f"{name}: expected true or false", field=name)
    if t == F.TYPE_ENUM:
        return int(raw) if raw.lstrip("-").isdigit() else raw
    if t in (F.TYPE_INT32, F.TYPE_SINT32, F.TYPE_SFIXED32, F.TYPE_UINT32, F.TYPE_FIXED32):
        try:
            return int(raw)
        except ValueError as exc:
            raise BadRequest(f"{name}: expected an integer", field=name) from exc
    if t in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        try:
            return float(raw)
        except ValueError as exc:
            raise BadRequest(f"{name}: expected a number", field=name) from exc
    if t == F.TYPE_BYTES:
        return raw if _is_base64(raw) else base64.b64encode(raw.encode()).decode()
    if field.message_type is not None and field.message_type.full_name == _FIELD_MASK:
        return _field_mask(raw)
    return raw  # strings, 64-bit ints (JSON strings), well-known types as strings


def _is_base64(raw: str) -> bool:
    try:
        base64.b64decode(raw, validate=True)
    except ValueError:
        return False
    return True


_FIELD_MASK = "google.protobuf.FieldMask"
_WKT_FROM_STRING = frozenset(
    {
        "google.protobuf.Timestamp",
        "google.protobuf.Duration",
        "google.protobuf.FieldMask",
        "google.protobuf.StringValue",
        "google.protobuf.Int64Value",
        "google.protobuf.Int32Value",
        "google.protobuf.BoolValue",
    }
)


def _field_mask(raw: str) -> str:
    """FieldMask JSON wants lowerCamel paths; accept proto names too (grpc-gateway does)."""
    return ",".join(
        ".".join(_camel(part) for part in path.strip().split(".")) for path in raw.split(",")
    )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _leaf_ok(field: FieldDescriptor) -> bool:
    if field.message_type is None:
        return True
    return field.message_type.full_name in _WKT_FROM_STRING


def _put(tree: dict[str, Any], chain: list[FieldDescriptor], value: Any, name: str) -> None:
    node = tree
    for field in chain[:-1]:
        if field.is_repeated:
            raise BadRequest(f"{name}: cannot address inside a repeated field", field=name)
        node = node.setdefault(field.name, {})
        if not isinstance(node, dict):
            raise BadRequest(f"{name}: conflicts with another parameter", field=name)
    last = chain[-1]
    if last.is_repeated:
        node.setdefault(last.name, []).append(value)
    elif last.name in node:
        raise BadRequest(f"{name}: given more than once", field=name)
    else:
        node[last.name] = value


_PARSE_FIELD = re.compile(r"(?:Failed to parse|Message type \S+ has no field named) (\w+)")


def _parse_into(message: Message, tree: Mapping[str, Any], what: str) -> None:
    try:
        json_format.ParseDict(dict(tree), message, ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        found = _PARSE_FIELD.search(str(exc))
        raise BadRequest(f"invalid {what}: {exc}", field=found.group(1) if found else "") from exc


def query_fields(
    binding: Binding,
    message: Message,
    query: str,
    *,
    bound: Iterable[str],
    adapt: Callable[[Binding, list[tuple[str, str]]], list[tuple[str, str]]] | None = None,
) -> None:
    """Set the fields named in the query string (leaf fields only, dotted names); `adapt`
    (a dialect's) respells the pairs first."""
    pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=False) if query else []
    if adapt is not None:
        pairs = adapt(binding, pairs)
    if not pairs:
        return
    if pairs and binding.body == "*":
        raise BadRequest(
            f"query parameter {pairs[0][0]!r} not allowed: the body carries the whole request",
            field=pairs[0][0],
        )
    taken = set(bound)
    tree: dict[str, Any] = {}
    for name, raw in pairs:
        try:
            chain = _resolve(message.DESCRIPTOR, name)
        except BadRequest as exc:
            raise BadRequest(f"unknown query parameter {name!r}", field=name) from exc
        proto_path = ".".join(f.name for f in chain)
        if proto_path in taken or chain[0].name == binding.body:
            raise BadRequest(f"{name}: already set by the path or the body", field=name)
        if not _leaf_ok(chain[-1]):
            raise BadRequest(f"{name}: use dotted names for message fields", field=name)
        _put(tree, chain, _scalar(chain[-1], raw, name), name)
    _parse_into(message, tree, "query parameters")


def path_fields(message: Message, variables: Mapping[str, str]) -> list[str]:
    """Set the path-bound fields; returns their proto paths."""
    tree: dict[str, Any] = {}
    paths = []
    for name, raw in variables.items():
        chain = _resolve(message.DESCRIPTOR, name)
        _put(tree, chain, _scalar(chain[-1], raw, name), name)
        paths.append(".".join(f.name for f in chain))
    _parse_into(message, tree, "path")
    return paths


Adapt = Callable[[Binding, Any, Any], Any]


def body_fields(
    binding: Binding, message: Message, body: bytes, *, adapt: Adapt | None = None
) -> dict[str, Any] | None:
    """Parse the JSON body into the request (all of it, or the named field). `adapt` (a
    dialect's) turns the body into canonical JSON first; its numbers arrive as Decimals.

    Returns the decoded JSON object (the PATCH field mask is built from its keys)."""
    if not binding.body:
        return None
    if not body.strip():
        data: Any = {}
    else:
        try:
            if adapt is None:
                data = json.loads(body, parse_constant=_no_constant, parse_float=_finite)
            else:
                data = json.loads(body, parse_constant=_no_constant, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"malformed JSON body: {exc}") from exc
        except RecursionError:
            raise BadRequest("malformed JSON body: nested too deeply") from None
    if not isinstance(data, dict):
        raise BadRequest("the JSON body must be an object")
    target = message if binding.body == "*" else getattr(message, binding.body, None)
    if target is None or not isinstance(target, Message):
        raise BadRequest(f"body field {binding.body!r} is not a message")  # pragma: no cover
    if adapt is not None:
        try:
            data = adapt(binding, target.DESCRIPTOR, data)
            if not isinstance(data, dict):  # pragma: no cover - dialects return objects
                raise BadRequest("the JSON body must be an object")
        except RecursionError:
            raise BadRequest("malformed JSON body: nested too deeply") from None
    _parse_into(target, data, "body")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:32]} is out of range")
    return value


def fill_update_mask(binding: Binding, message: Message, data: Mapping[str, Any] | None) -> None:
    """PATCH without an update mask: the mask is the body's keys (grpc-gateway's rule)."""
    if binding.method != "PATCH" or binding.body in ("", "*") or data is None:
        return
    masks = [
        f
        for f in message.DESCRIPTOR.fields
        if f.message_type is not None and f.message_type.full_name == "google.protobuf.FieldMask"
    ]
    if len(masks) != 1 or message.HasField(masks[0].name):
        return
    body_type = message.DESCRIPTOR.fields_by_name[binding.body].message_type
    paths = []
    for key in data:
        field = field_named(body_type, key)
        if field is not None and _updatable(field):
            paths.append(field.name)
    getattr(message, masks[0].name).paths.extend(paths)


def _updatable(field: FieldDescriptor) -> bool:
    """Body keys that name a change: not `etag` (AIP-154 precondition), not OUTPUT_ONLY
    or IDENTIFIER fields (an echoed id or status is not an edit)."""
    if field.name == "etag":
        return False
    behaviors = field.GetOptions().Extensions[_FIELD_BEHAVIOR]
    return not any(b in _NOT_UPDATABLE for b in behaviors)


def to_json(message: Message, binding: Binding) -> bytes:
    """The response as JSON: proto field names, zero values printed, int64 as strings."""
    target = getattr(message, binding.response_body) if binding.response_body else message
    data = jsonout.to_dict(target)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
