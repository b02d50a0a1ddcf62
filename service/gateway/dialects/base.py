"""A dialect: how one family of seed paths reads requests and writes responses, lists and
errors. `Plain` is a style over the canonical shapes (seed 001, 002, 004); `JsonApi` wraps
resources in JSON:API documents (seed 000, 003). The gateway calls a dialect at four
points only: the body, the query string, the response, the error."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any
from urllib.parse import parse_qsl, urlencode

from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from service.gateway import jsonout
from service.gateway.bindings import Binding
from service.gateway.dialects.style import Style
from service.gateway.transcode import BadRequest, field_named

Pairs = list[tuple[str, str]]


@dataclass(frozen=True)
class Written:
    """A response in the dialect: the JSON value and any headers it adds (Link)."""

    body: Any
    headers: Mapping[str, str]


class Dialect:
    """The canonical behaviour; subclasses override what their seed spells differently."""

    name = "canonical"
    seed = ""
    style = Style()
    describes = ""  # a sentence for the OpenAPI document

    def read_body(self, binding: Binding, target: Any, data: Any) -> Any:
        return self.style.read(target, data)

    def read_query(self, binding: Binding, pairs: Pairs) -> Pairs:
        """Short enum values in query parameters (`type=customer`) become full names."""
        if not self.style.short_enums:
            return pairs
        request = binding.rpc.input_type
        out = []
        for name, raw in pairs:
            f = field_named(request, name)
            if f is not None and f.enum_type is not None:
                raw = str(self.style.read(request, {name: raw}).get(f.name, raw))
            out.append((name, raw))
        return out

    def write(self, binding: Binding, request: Message, response: Message, url: str) -> Written:
        target = getattr(response, binding.response_body) if binding.response_body else response
        return Written(self.style.write_message(target), {})

    def read_response(self, binding: Binding, request: Message, body: Any) -> Any:
        """The canonical JSON of a response this dialect wrote (`write`'s inverse; for
        clients and tests: a round trip through both is the identity)."""
        target = _response_type(binding)
        return self.style.read(target, body)

    def error(self, body: dict[str, Any]) -> dict[str, Any]:
        return body


def _response_type(binding: Binding) -> Any:
    output = binding.rpc.output_type
    if binding.response_body:
        return output.fields_by_name[binding.response_body].message_type
    return output


def list_field(message: Any) -> FieldDescriptor | None:
    """The `data` of a list response (AIP-158 shape: data, next_cursor, total)."""
    data: FieldDescriptor | None = message.fields_by_name.get("data")
    if data is None or not data.is_repeated or "next_cursor" not in message.fields_by_name:
        return None
    return data


def next_link(url: str, cursor: str) -> str:
    """The request's own URL with `cursor` replaced: the next page, other parameters kept."""
    path, _, query = url.partition("?")
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "cursor"]
    return f"{path}?{urlencode([*pairs, ('cursor', cursor)])}"


@dataclass(frozen=True)
class Plain(Dialect):
    """The canonical shapes in the seed's spelling; `bare_list`: a list is a JSON array
    (seed 004), the next page in a `Link: <...>; rel="next"` header."""

    name: str = "plain"
    seed: str = ""
    style: Style = field(default_factory=Style)
    bare_list: bool = False
    field_filters: bool = False  # list by `?type=customer&status=draft` (equality, ANDed)
    describes: str = ""

    def read_query(self, binding: Binding, pairs: Pairs) -> Pairs:
        pairs = super().read_query(binding, pairs)
        request = binding.rpc.input_type
        data = list_field(binding.rpc.output_type)
        if not self.field_filters or "filter" not in request.fields_by_name or data is None:
            return pairs
        clauses: list[str] = []
        rest: Pairs = []
        for name, raw in pairs:
            item = field_named(data.message_type, name)
            if field_named(request, name) is not None or item is None:
                rest.append((name, raw))
                continue
            if '"' in raw and "'" in raw:
                raise BadRequest(f"{name}: a value cannot hold both quote characters", field=name)
            quote = "'" if '"' in raw else '"'
            clauses.append(f"{item.name} = {quote}{raw}{quote}")
        if not clauses:
            return pairs
        given = [raw for name, raw in rest if name == "filter" and raw.strip()]
        rest = [(name, raw) for name, raw in rest if name != "filter"]
        return [*rest, ("filter", " AND ".join([*(f"({g})" for g in given), *clauses]))]

    def write(self, binding: Binding, request: Message, response: Message, url: str) -> Written:
        target = getattr(response, binding.response_body) if binding.response_body else response
        data = list_field(target.DESCRIPTOR)
        if not self.bare_list or data is None or data.message_type is None:
            return super().write(binding, request, response, url)
        items = [self.style.write_message(item) for item in getattr(target, data.name)]
        cursor: str = getattr(target, "next_cursor")  # noqa: B009  (list_field checked it)
        headers = {"link": f'<{next_link(url, cursor)}>; rel="next"'} if cursor else {}
        return Written(items, headers)

    def read_response(self, binding: Binding, request: Message, body: Any) -> Any:
        data = list_field(_response_type(binding))
        if not self.bare_list or data is None or not isinstance(body, list):
            return super().read_response(binding, request, body)
        return {"data": [self.style.read(data.message_type, item) for item in body]}


_INCLUDE_TOTAL = frozenset({"include_total", "includeTotal"})
SEED_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    412: "PRECONDITION_FAILED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "TOO_MANY_REQUESTS",
    499: "CLIENT_CLOSED_REQUEST",
    500: "INTERNAL_SERVER_ERROR",
    501: "NOT_IMPLEMENTED",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}


@dataclass(frozen=True)
class Relationship:
    """A to-one relationship written from an id field: `invoice_id` -> `invoice`."""

    field: str
    name: str
    type: str


@dataclass(frozen=True)
class Resource:
    """A message as a JSON:API resource object."""

    message: str  # the message's full name: "invoicing.v1.Allocation"
    type: str  # "invoice_transaction"
    relationships: tuple[Relationship, ...] = ()


@dataclass(frozen=True)
class JsonApi(Dialect):
    """JSON:API 1.1 documents: `{data: {type, id, attributes, relationships}}`, lists with
    `meta.total`/`meta.count` and `links.next` (the cursor, or null), and errors with the
    seed's codes (`BAD_REQUEST`, ...), `meta.trace_id` and `meta.log_id`."""

    name: str = "jsonapi"
    seed: str = ""
    style: Style = field(default_factory=Style)
    resources: tuple[Resource, ...] = ()
    roots: tuple[tuple[str, str], ...] = ()  # records roots: (root, resource message)
    describes: str = ""

    def resource(self, message: str) -> Resource | None:
        return next((r for r in self.resources if r.message == message), None)

    def attributes_style(self, resource: Resource) -> Style:
        return _attributes_style(self.style, resource)

    # -- reading ---------------------------------------------------------------------------

    def read_body(self, binding: Binding, target: Any, data: Any) -> Any:
        resource = self.resource(target.full_name)
        if resource is None or not isinstance(data, dict) or "data" not in data:
            canon = super().read_body(binding, target, data)  # a canonical (flat) body
            if _counts(target) and isinstance(canon, dict) and "include_total" not in canon:
                canon["include_total"] = True  # a query body: meta.total, as lists have
            return canon
        return self.read_resource(resource, target, data)

    def read_resource(self, resource: Resource, target: Any, doc: dict[str, Any]) -> Any:
        node = doc["data"]
        if not isinstance(node, dict):
            raise BadRequest("data: expected a resource object", field="data")
        if node.get("type") not in (None, resource.type):
            raise BadRequest(f"data.type: expected {resource.type!r}", field="data.type")
        if node.get("id") is not None:
            raise BadRequest("data.id: ids are assigned by the server", field="data.id")
        unknown = sorted(set(node) - {"type", "id", "attributes", "relationships", "meta"})
        if unknown:
            raise BadRequest(
                f"data.{unknown[0]}: not a resource member", field=f"data.{unknown[0]}"
            )
        attributes = node.get("attributes", {})
        if not isinstance(attributes, dict):
            raise BadRequest("data.attributes: expected an object", field="data.attributes")
        canon = self.attributes_style(resource).read(target, attributes, "data.attributes.")
        links = node.get("relationships") or {}
        if not isinstance(links, dict):
            raise BadRequest("data.relationships: expected an object", field="data.relationships")
        for name, link in links.items():
            rel = next((r for r in resource.relationships if r.name == name), None)
            where = f"data.relationships.{name}"
            if rel is None:
                raise BadRequest(f"{where}: unknown relationship", field=where)
            if not isinstance(link, dict) or "data" not in link:
                raise BadRequest(f"{where}: expected {{data: {{type, id}}}}", field=where)
            linkage = link["data"]
            if linkage is None:
                continue
            if not isinstance(linkage, dict) or not isinstance(linkage.get("id"), str):
                raise BadRequest(f"{where}.data: expected {{type, id}}", field=f"{where}.data")
            if linkage.get("type") not in (None, rel.type):
                raise BadRequest(f"{where}.data.type: expected {rel.type!r}", field=where)
            canon[rel.field] = linkage["id"]
        return canon

    def read_query(self, binding: Binding, pairs: Pairs) -> Pairs:
        """`sort=-field` (JSON:API) as orderBy/direction; lists count their total."""
        pairs = super().read_query(binding, pairs)
        request = binding.rpc.input_type
        out: Pairs = []
        for name, raw in pairs:
            if name == "sort" and "sort" not in request.fields_by_name:
                field, descending = raw.removeprefix("-"), raw.startswith("-")
                out += [("order_by", field), ("direction", "desc" if descending else "asc")]
            else:
                out.append((name, raw))
        named = {n for n, _ in out}
        if _counts(request) and binding.body != "*" and not named & _INCLUDE_TOTAL:
            out.append(("include_total", "true"))
        return out

    # -- writing ---------------------------------------------------------------------------

    def write(self, binding: Binding, request: Message, response: Message, url: str) -> Written:
        descriptor = response.DESCRIPTOR
        resource = self.resource(descriptor.full_name)
        if resource is not None:
            return Written({"data": self.resource_object(resource, response)}, {})
        data = list_field(descriptor)
        if data is None:
            return super().write(binding, request, response, url)
        assert data.message_type is not None
        rows = getattr(response, data.name)
        if data.message_type.full_name.startswith("google.protobuf."):  # records: Structs
            root = getattr(request, "root", "")
            items = [self._record(root, jsonout.to_dict(row)) for row in rows]
        else:
            found = self.resource(data.message_type.full_name)
            if found is None:
                return super().write(binding, request, response, url)
            items = [self.resource_object(found, row) for row in rows]
        meta: dict[str, Any] = {"count": len(items)}
        if "total" in descriptor.fields_by_name and response.HasField("total"):
            meta = {"total": getattr(response, "total"), **meta}  # noqa: B009
        links = {"next": getattr(response, "next_cursor") or None}  # noqa: B009
        return Written({"data": items, "meta": meta, "links": links}, {})

    def read_response(self, binding: Binding, request: Message, body: Any) -> Any:
        descriptor = _response_type(binding)
        resource = self.resource(descriptor.full_name)
        if resource is not None:
            return self.read_object(resource, descriptor, body["data"])
        data = list_field(descriptor)
        if data is None or data.message_type is None:
            return super().read_response(binding, request, body)
        item_type = data.message_type
        found = self.resource(item_type.full_name)
        if found is not None:
            rows = [self.read_object(found, item_type, item) for item in body["data"]]
        else:
            message = dict(self.roots).get(getattr(request, "root", ""))
            resource = self.resource(message) if message else None
            descriptor = _descriptor(message) if message else None
            rows = [
                self.read_object(resource, descriptor, item)
                if resource is not None and descriptor is not None
                else {"id": item["id"], **item["attributes"]}
                for item in body["data"]
            ]
        canon: dict[str, Any] = {"data": rows, "next_cursor": body["links"]["next"] or ""}
        if "total" in body["meta"]:
            canon["total"] = body["meta"]["total"]
        return canon

    def read_object(self, resource: Resource, descriptor: Any, node: Any) -> dict[str, Any]:
        """A resource object back to the message's canonical JSON (id included)."""
        canon: dict[str, Any] = self.attributes_style(resource).read(
            descriptor, node.get("attributes") or {}
        )
        canon["id"] = node["id"]
        for rel in resource.relationships:
            linkage = (node.get("relationships") or {}).get(rel.name, {}).get("data")
            if linkage is not None:
                canon[rel.field] = linkage["id"]
        return canon

    def resource_object(self, resource: Resource, message: Message) -> dict[str, Any]:
        attributes = self.attributes_style(resource).write_message(message)
        return _resource_object(resource, str(getattr(message, "id", "")), message, attributes)

    def _object(
        self, resource: Resource, descriptor: Any, canon: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The same from a message's canonical JSON (records rows)."""
        attributes = self.attributes_style(resource).write(descriptor, canon)
        return _resource_object(resource, str(canon.get("id", "")), canon, attributes)

    def _record(self, root: str, row: Mapping[str, Any]) -> dict[str, Any]:
        """A records-query row: the root's resource when the dialect knows it."""
        message = dict(self.roots).get(root)
        resource = self.resource(message) if message else None
        descriptor = _descriptor(message) if message else None
        if resource is not None and descriptor is not None:
            return self._object(resource, descriptor, row)
        attributes = {k: v for k, v in row.items() if k != "id"}
        return {
            "type": root.removesuffix("s"),
            "id": str(row.get("id", "")),
            "attributes": attributes,
        }

    def error(self, body: dict[str, Any]) -> dict[str, Any]:
        status = int(body["status"])
        trace = body.get("meta", {}).get("trace_id", "")
        violations = [
            v
            for d in body.get("details", [])
            for v in d.get("field_violations", [])
            if isinstance(v, dict)
        ]
        reason = next((d.get("reason", "") for d in body.get("details", []) if "reason" in d), "")
        item: dict[str, Any] = {
            "status": str(status),
            "code": reason or body["code"],
            "title": body["title"],
            "detail": body["message"],
        }
        if violations:
            item["source"] = {
                "pointer": "/" + str(violations[0].get("field", "")).replace(".", "/")
            }
        return {
            "code": SEED_CODES.get(status, body["code"]),
            "status": status,
            "title": body["title"],
            "message": body["message"],
            "errors": [item],
            "details": body.get("details", []),
            "meta": {"trace_id": trace, "log_id": trace, "grpc_code": body["code"]},
        }


def _resource_object(
    resource: Resource, id_: str, source: Any, attributes: dict[str, Any]
) -> dict[str, Any]:
    """{type, id, attributes, relationships}; `source` is the message or its canonical JSON
    (the relationship ids are read from either)."""
    read = source.get if isinstance(source, Mapping) else (lambda name: getattr(source, name))
    obj: dict[str, Any] = {"type": resource.type, "id": id_, "attributes": attributes}
    if resource.relationships:
        obj["relationships"] = {
            r.name: {
                "data": {"type": r.type, "id": related} if (related := read(r.field)) else None
            }
            for r in resource.relationships
        }
    return obj


@cache
def _attributes_style(style: Style, resource: Resource) -> Style:
    """The style of a resource's attributes: without its id and relationship fields (one
    per style and resource, so its compiled plans are kept)."""
    hidden = frozenset({"id", *(r.field for r in resource.relationships)})
    return replace(style, hidden=hidden | style.hidden)


def _counts(request: Any) -> bool:
    """A list or query request that can count its total (`meta.total`)."""
    f = request.fields_by_name.get("include_total")
    return f is not None and f.type == FieldDescriptor.TYPE_BOOL


def _descriptor(full_name: str) -> Descriptor | None:
    try:
        found: Descriptor = descriptor_pool.Default().FindMessageTypeByName(full_name)
    except KeyError:
        return None
    return found


def dialect_for(table: Sequence[tuple[str, Dialect]], template: str) -> Dialect | None:
    """The dialect of the longest path prefix in `table` that `template` starts with (a
    prefix ends at a "/", a ":" or the end: "/invoice-connections" is not
    "/invoice-connections-x")."""
    best: tuple[int, Dialect] | None = None
    for prefix, dialect in table:
        rest = template[len(prefix) :]
        fits = template.startswith(prefix) and (not rest or rest[0] in "/:")
        if fits and (best is None or len(prefix) > best[0]):
            best = (len(prefix), dialect)
    return best[1] if best else None
