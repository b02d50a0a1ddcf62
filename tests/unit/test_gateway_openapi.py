"""Unit tests for service.gateway.openapi: the OpenAPI 3.1 document built from the real
`google.api.http` bindings and proto comments, the mapping rules (protoc-gen-openapiv3's,
with the gateway's JSON conventions), and the local-only Swagger UI page. No server."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, timestamp_pb2
from google.type import date_pb2
from invoicing.v1 import (
    allocations_pb2,
    connections_pb2,
    invoices_pb2,
    provenance_pb2,
    records_pb2,
)
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from openapi_spec_validator import validate

from service.gateway.bindings import Binding, bindings_from_services, success_status
from service.gateway.openapi import (
    build_openapi,
    docs_html,
    expand_template,
    load_comments,
    static_dir,
)

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTOR_SET = ROOT / "generated" / "invoicing_v1.binpb"
MODULES = (invoices_pb2, allocations_pb2, connections_pb2, provenance_pb2, records_pb2)
VERBS = ("get", "put", "post", "delete", "patch")
Json = dict[str, Any]


@pytest.fixture(scope="module")
def bindings() -> list[Binding]:
    services = (s for m in MODULES for s in m.DESCRIPTOR.services_by_name.values())
    return bindings_from_services(services)


@pytest.fixture(scope="module")
def comments() -> dict[str, str]:
    return load_comments(DESCRIPTOR_SET)


@pytest.fixture(scope="module")
def doc(bindings: list[Binding], comments: dict[str, str]) -> Json:
    examples = json.loads((ROOT / "protos/invoicing/v1/openapi-examples.json").read_text())
    return build_openapi(bindings, comments=comments, examples=examples)


def operations(doc: Json) -> list[tuple[str, str, Json]]:
    return [(p, v, op) for p, item in doc["paths"].items() for v, op in item.items()]


def operation(doc: Json, operation_id: str) -> Json:
    found = [op for _, _, op in operations(doc) if op["operationId"] == operation_id]
    assert len(found) == 1, operation_id
    return found[0]


def resolve(doc: Json, schema: Json) -> Json:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].removeprefix("#/components/schemas/")]
    return schema


def component(doc: Json, name: str) -> Json:
    schema: Json = doc["components"]["schemas"][name]
    return schema


def body_schema(doc: Json, op: Json) -> Json:
    return resolve(doc, op["requestBody"]["content"]["application/json"]["schema"])


def validator(doc: Json, name: str) -> Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def to_json(message: Any) -> Json:
    """The gateway's JSON rendering of a message."""
    rendered: Json = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return rendered


# ---- the document as a whole --------------------------------------------------------------


def test_document_validates_as_openapi_3_1(doc: Json) -> None:
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    assert doc["servers"] == [{"url": "/"}]
    assert doc["info"]["title"] == "Invoicing API" and doc["info"]["version"] == "v1"


def test_every_binding_is_one_operation_with_a_unique_id(
    doc: Json, bindings: list[Binding]
) -> None:
    ops = operations(doc)
    assert len(ops) == len(bindings)
    ids = [op["operationId"] for _, _, op in ops]
    assert len(set(ids)) == len(ids)
    shapes = {re.sub(r"\{[^}]*\}", "{}", p): p for p in doc["paths"]}
    for binding in bindings:
        path, _ = expand_template(binding.template)
        op = doc["paths"][shapes[re.sub(r"\{[^}]*\}", "{}", path)]][binding.method.lower()]
        service = binding.rpc.containing_service.name
        suffix = r"_alias(_\d+)?" if binding.alias else ""
        assert re.fullmatch(rf"{service}_{binding.rpc.name}{suffix}", op["operationId"])
        assert op["tags"] == (["Aliases"] if binding.alias else [service])


def test_additional_bindings_are_marked_as_aliases(doc: Json) -> None:
    assert doc["paths"]["/v1/invoices"]["post"]["operationId"] == "InvoiceService_CreateInvoice"
    extra = doc["paths"]["/api/v1/finance/invoices"]["post"]
    assert extra["operationId"] == "InvoiceService_CreateInvoice_alias"
    assert extra["x-alias-of"] == "InvoiceService_CreateInvoice"
    assert extra["description"].startswith("Alias of `POST /v1/invoices`")
    assert extra["summary"].endswith("(alias)") and extra["tags"] == ["Aliases"]
    get = doc["paths"]["/invoice-connections/{id}"]["get"]
    assert get["operationId"] == "ConnectionService_GetConnection_alias"
    assert get["x-alias-of"] == "ConnectionService_GetConnection"
    primary = doc["paths"]["/v1/invoice-connections/{id}"]["get"]
    assert "x-alias-of" not in primary and primary["tags"] == ["ConnectionService"]


def test_tags_are_the_services_with_their_comments(doc: Json) -> None:
    tags = {t["name"]: t for t in doc["tags"]}
    assert set(tags) == {
        "InvoiceService",
        "AllocationService",
        "ConnectionService",
        "ProvenanceService",
        "RecordsService",
        "Aliases",
    }
    assert tags["InvoiceService"]["description"].startswith("Accounts receivable and payable")


# ---- paths and parameters -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "path", "variables"),
    [
        ("/v1/invoices/{id}", "/v1/invoices/{id}", [("id", "id")]),
        ("/v1/invoices/{id}:issue", "/v1/invoices/{id}:issue", [("id", "id")]),
        ("/v1/invoices/{invoice.id}", "/v1/invoices/{invoice.id}", [("invoice.id", "invoice.id")]),
        ("/v1/{name=shelves/*}", "/v1/shelves/{name}", [("name", "name")]),
        (
            "/v1/{name=shelves/*/books/*}:read",
            "/v1/shelves/{name}/books/{name_1}:read",
            [("name", "name"), ("name_1", "name")],
        ),
        ("/v1/{path=files/**}", "/v1/files/{path}", [("path", "path")]),
        ("/v1/invoices", "/v1/invoices", []),
    ],
)
def test_templates_expand_like_openapiv3(
    template: str, path: str, variables: list[tuple[str, str]]
) -> None:
    assert expand_template(template) == (path, variables)


def test_custom_verbs_and_nested_fields_stay_in_the_path(doc: Json) -> None:
    assert "post" in doc["paths"]["/v1/invoices/{id}:issue"]
    assert "post" in doc["paths"]["/api/v1/finance/invoices/{id}:void"]
    # `{invoice.id}` shares its path with GET/DELETE `{id}` (OpenAPI forbids two
    # templated paths differing only in names); the parameter is still `invoice.id`.
    assert "/v1/invoices/{invoice.id}" not in doc["paths"]
    update = doc["paths"]["/v1/invoices/{id}"]["patch"]
    path_params = [p for p in update["parameters"] if p["in"] == "path"]
    assert [p["name"] for p in path_params] == ["id"]
    assert "invoice" in path_params[0].get("description", "").lower() or path_params[0]


def test_path_parameters_are_required_strings(doc: Json) -> None:
    for path, _, op in operations(doc):
        declared = re.findall(r"\{([^}]+)\}", path)
        params = [p for p in op.get("parameters", []) if p["in"] == "path"]
        assert [p["name"] for p in params] == declared, path
        for param in params:
            assert param["required"] is True
            assert param["schema"] == {"type": "string"}


def test_list_invoices_query_parameters(doc: Json) -> None:
    op = doc["paths"]["/v1/invoices"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert all(p["in"] == "query" for p in params.values())
    assert {name: p["schema"] for name, p in params.items()} == {
        "limit": {"type": "integer", "format": "int32"},
        "cursor": {"type": "string"},
        "order_by": {"type": "string"},
        "direction": {"type": "string"},
        "filter": {"type": "string"},
        "show_deleted": {"type": "boolean"},
        "include_total": {"type": "boolean"},
    }
    assert "requestBody" not in op
    assert params["limit"]["description"].startswith("Page size, 1..200")


def test_no_query_parameters_with_body_star(doc: Json, bindings: list[Binding]) -> None:
    for binding in bindings:
        if binding.body == "*":
            path, _ = expand_template(binding.template)
            op = doc["paths"][path][binding.method.lower()]
            assert all(p["in"] in ("path", "header") for p in op.get("parameters", [])), path


def test_body_field_and_path_fields_are_not_query_parameters(doc: Json) -> None:
    create = doc["paths"]["/v1/invoices"]["post"]
    query = [p["name"] for p in create["parameters"] if p["in"] == "query"]
    assert query == ["request_id"]
    update = doc["paths"]["/v1/invoices/{id}"]["patch"]
    query = {p["name"]: p["schema"] for p in update["parameters"] if p["in"] == "query"}
    assert list(query) == ["update_mask"]
    assert query["update_mask"]["type"] == "string"  # a FieldMask: comma-separated paths
    get = doc["paths"]["/v1/invoices/{id}"]["get"]
    assert [p["in"] for p in get["parameters"]] == ["path", "header"]  # If-None-Match


def _synthetic_pool() -> descriptor_pool.DescriptorPool:
    """A service whose request has repeated scalars, an enum, a nested message and a map."""
    pool = descriptor_pool.DescriptorPool()
    wkt = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(wkt)
    pool.Add(wkt)
    proto = descriptor_pb2.FileDescriptorProto(
        name="t/v1/shelf.proto",
        package="t.v1",
        syntax="proto3",
        dependency=["google/protobuf/timestamp.proto"],
    )
    proto.enum_type.add(name="Color").value.add(name="COLOR_UNSPECIFIED", number=0)
    proto.enum_type[0].value.add(name="COLOR_RED", number=1)
    _add_message(proto, "Range", [("low", "TYPE_INT64", ""), ("high", "TYPE_UINT32", "")])
    _add_message(
        proto,
        "ListBooksRequest",
        [
            ("name", "TYPE_STRING", ""),
            ("tags", "TYPE_STRING", "repeated"),
            ("color", "TYPE_ENUM", ".t.v1.Color"),
            ("range", "TYPE_MESSAGE", ".t.v1.Range"),
            ("since", "TYPE_MESSAGE", ".google.protobuf.Timestamp"),
            ("ratio", "TYPE_DOUBLE", ""),
            ("blob", "TYPE_BYTES", ""),
        ],
    )
    _add_message(proto, "ListBooksResponse", [("next", "TYPE_STRING", "")])
    service = proto.service.add(name="ShelfService")
    service.method.add(
        name="ListBooks", input_type=".t.v1.ListBooksRequest", output_type=".t.v1.ListBooksResponse"
    )
    pool.Add(proto)
    return pool


def _add_message(
    proto: descriptor_pb2.FileDescriptorProto, name: str, fields: list[tuple[str, str, str]]
) -> None:
    message = proto.message_type.add(name=name)
    for number, (field_name, kind, extra) in enumerate(fields, start=1):
        field = message.field.add(name=field_name, number=number)
        field.type = descriptor_pb2.FieldDescriptorProto.Type.Value(kind)
        repeated = extra == "repeated"
        field.label = field.LABEL_REPEATED if repeated else field.LABEL_OPTIONAL
        if extra.startswith("."):
            field.type_name = extra


def test_query_parameters_repeated_enum_nested_and_wkt() -> None:
    pool = _synthetic_pool()
    rpc = pool.FindServiceByName("t.v1.ShelfService").methods_by_name["ListBooks"]
    binding = Binding("GET", "/v1/{name=shelves/*}/books", "", "", rpc)
    doc = build_openapi([binding])
    validate(doc)
    op = doc["paths"]["/v1/shelves/{name}/books"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert list(params) == [
        "name",
        "tags",
        "color",
        "range.low",
        "range.high",
        "since",
        "ratio",
        "blob",
    ]
    assert params["tags"]["schema"] == {"type": "array", "items": {"type": "string"}}
    assert params["tags"]["style"] == "form" and params["tags"]["explode"] is True
    color = resolve(doc, params["color"]["schema"])
    assert color == {"type": "string", "enum": ["COLOR_UNSPECIFIED", "COLOR_RED"]}
    assert params["range.low"]["schema"]["type"] == "string"
    assert params["range.low"]["schema"]["format"] == "int64"
    assert params["range.high"]["schema"]["type"] == "integer"
    assert params["range.high"]["schema"]["minimum"] == 0
    assert params["since"]["schema"] == {"type": "string", "format": "date-time"}
    assert params["ratio"]["schema"]["type"] == "number"
    assert params["blob"]["schema"] == {"type": "string", "contentEncoding": "base64"}
    assert "description" not in op  # no comments given


# ---- request bodies -----------------------------------------------------------------------


def test_path_bound_fields_are_never_in_request_bodies(doc: Json, bindings: list[Binding]) -> None:
    checked = 0
    shapes = {re.sub(r"\{[^}]*\}", "{}", p): p for p in doc["paths"]}
    for binding in bindings:
        path, variables = expand_template(binding.template)
        if not binding.body or not variables:
            continue
        documented = shapes[re.sub(r"\{[^}]*\}", "{}", path)]
        schema = body_schema(doc, doc["paths"][documented][binding.method.lower()])
        prefix = "" if binding.body == "*" else f"{binding.body}."
        for _, field_path in variables:
            if field_path.startswith(prefix):
                relative = field_path.removeprefix(prefix)
                assert relative not in schema["properties"], (path, relative)
                assert relative not in schema.get("required", []), (path, relative)
                checked += 1
    assert checked >= 10


def test_update_invoice_body_is_the_invoice_without_its_id(doc: Json) -> None:
    body = body_schema(doc, doc["paths"]["/v1/invoices/{id}"]["patch"])
    invoice = component(doc, "invoicing.v1.Invoice")
    assert "id" not in body["properties"]
    assert set(invoice["properties"]) - set(body["properties"]) == {"id"}
    assert "id" in invoice["properties"]  # the shared Invoice schema is untouched


def test_issue_invoice_body_has_no_id(doc: Json) -> None:
    op = doc["paths"]["/v1/invoices/{id}:issue"]["post"]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("invoicing.v1.InvoiceService.IssueInvoice.Body")
    body = body_schema(doc, op)
    assert set(body["properties"]) == {"etag", "request_id"}
    assert "required" not in body
    # Seed 001's path documents its own dialect's body, also without the path's id.
    extra = doc["paths"]["/api/v1/finance/invoices/{id}:issue"]["post"]
    assert extra["x-dialect"] == "seed-001"
    seed_body = extra["requestBody"]["content"]["application/json"]["schema"]
    assert set(seed_body["properties"]) == {"etag", "request_id"}


def test_body_field_maps_to_that_fields_schema(doc: Json) -> None:
    create = doc["paths"]["/v1/invoices"]["post"]
    schema = create["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/invoicing.v1.Invoice"}
    assert create["requestBody"]["required"] is True
    assert create["requestBody"]["description"] == "The draft to create."


def test_body_star_without_path_fields_is_the_request_message(doc: Json) -> None:
    query = doc["paths"]["/v1/records/query"]["post"]  # seed 003's path: its dialect
    schema = query["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/seed-003.invoicing.v1.QueryRecordsRequest"}
    fields = component(doc, "seed-003.invoicing.v1.QueryRecordsRequest")["properties"]
    assert {"root", "where_clause", "order_by", "limit", "cursor"} <= set(fields)


def test_update_connection_body_drops_the_required_path_id(doc: Json) -> None:
    body = body_schema(doc, doc["paths"]["/v1/invoice-connections/{id}"]["patch"])
    assert "id" not in body["properties"]
    assert "required" not in body
    assert set(body["properties"]) == {
        "api_key",
        "webhook_secret",
        "active",
        "endpoint_url",
        "update_mask",
        "etag",
    }


# ---- schemas ------------------------------------------------------------------------------


def test_field_behavior_read_only_and_write_only(doc: Json) -> None:
    invoice = component(doc, "invoicing.v1.Invoice")["properties"]
    assert invoice["status"]["readOnly"] is True
    assert invoice["id"]["readOnly"] is True
    assert invoice["created_at"]["readOnly"] is True
    for writable in ("total", "subtotal", "currency", "line_items", "etag"):
        assert "readOnly" not in invoice[writable], writable
    create = component(doc, "invoicing.v1.CreateConnectionRequest")["properties"]
    assert create["api_key"]["writeOnly"] is True
    assert "writeOnly" not in create["provider"]
    line = component(doc, "invoicing.v1.LineItem")["properties"]
    assert line["amount"]["readOnly"] is True and "readOnly" not in line["quantity"]


def test_required_comes_from_field_behavior(doc: Json) -> None:
    assert component(doc, "invoicing.v1.CreateConnectionRequest")["required"] == [
        "provider",
        "api_key",
    ]
    assert component(doc, "invoicing.v1.QueryRecordsRequest")["required"] == ["root"]
    assert component(doc, "invoicing.v1.RecordsOrderBy")["required"] == ["field"]
    assert component(doc, "invoicing.v1.LineItem")["required"] == ["quantity", "unit_price"]
    assert component(doc, "invoicing.v1.Invoice")["required"] == ["type", "currency"]
    # A patch names only what changes: its body has no `required`.
    patch = doc["paths"]["/v1/invoices/{id}"]["patch"]["requestBody"]
    ref = patch["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "required" not in component(doc, ref)


def test_scalar_types(doc: Json) -> None:
    invoice = component(doc, "invoicing.v1.Invoice")["properties"]
    assert invoice["order_id"]["type"] == "string"
    assert invoice["order_id"]["format"] == "int64"
    assert invoice["project_sequence_id"]["type"] == "integer"
    assert invoice["project_sequence_id"]["format"] == "int32"
    assert invoice["is_deleted"]["type"] == "boolean"
    assert invoice["tags"]["type"] == "array" and invoice["tags"]["items"] == {"type": "string"}
    assert invoice["line_items"]["items"] == {"$ref": "#/components/schemas/invoicing.v1.LineItem"}


def test_enums_are_string_enums_of_value_names(doc: Json) -> None:
    invoice = component(doc, "invoicing.v1.Invoice")["properties"]
    for field, enum in (("status", invoices_pb2.InvoiceStatus), ("type", invoices_pb2.InvoiceType)):
        schema = resolve(doc, invoice[field])
        assert schema["type"] == "string"
        assert schema["enum"] == list(enum.keys())
    assert "INVOICE_STATUS_DRAFT`: Editable" in resolve(doc, invoice["status"])["description"]


def test_well_known_types(doc: Json) -> None:
    invoice = component(doc, "invoicing.v1.Invoice")["properties"]
    assert invoice["paid_at"]["type"] == "string" and invoice["paid_at"]["format"] == "date-time"
    date = resolve(doc, invoice["issue_date"])
    assert date["type"] == "object"
    for part in ("year", "month", "day"):
        assert date["properties"][part]["type"] == "integer"
    query = component(doc, "invoicing.v1.QueryRecordsRequest")["properties"]
    assert query["where_clause"]["type"] == "object"
    records = component(doc, "invoicing.v1.QueryRecordsResponse")["properties"]
    assert records["data"]["items"]["type"] == "object"
    update = component(doc, "invoicing.v1.ConnectionService.UpdateConnection.Body")
    assert update["properties"]["update_mask"]["type"] == "string"


def test_component_names_are_full_proto_names(doc: Json) -> None:
    names = set(doc["components"]["schemas"])
    assert {"invoicing.v1.Invoice", "invoicing.v1.LineItem", "google.type.Date", "Error"} <= names
    assert all(re.fullmatch(r"[a-zA-Z0-9.\-_]+", name) for name in names)
    assert "google.protobuf.Timestamp" not in names  # inlined as an RFC 3339 string


def test_real_proto_json_matches_the_schemas(doc: Json) -> None:
    invoice = invoices_pb2.Invoice(
        id="inv_01JD6N8Q6Z7T3M3Y5C4V8R2K1P",
        type=invoices_pb2.INVOICE_TYPE_CUSTOMER,
        status=invoices_pb2.INVOICE_STATUS_ISSUED,
        issue_date=date_pb2.Date(year=2026, month=4, day=28),
        order_id=9_007_199_254_740_993,
        line_items=[invoices_pb2.LineItem(quantity="1.5", unit_price="100.00")],
        tax_breakdown=[invoices_pb2.TaxBreakdown(tax_rate="0.20")],
        tags=["urgent"],
        total="150.00",
    )
    invoice.created_at.FromJsonString("2026-04-28T10:00:00Z")
    rendered = to_json(invoice)
    assert rendered["order_id"] == "9007199254740993"
    validator(doc, "invoicing.v1.Invoice").validate(rendered)
    page = invoices_pb2.ListInvoicesResponse(data=[invoice], total=1)
    validator(doc, "invoicing.v1.ListInvoicesResponse").validate(to_json(page))
    validator(doc, "invoicing.v1.Connection").validate(to_json(connections_pb2.Connection()))
    assert not validator(doc, "invoicing.v1.Invoice").is_valid({"order_id": 12})
    assert not validator(doc, "invoicing.v1.Invoice").is_valid({"status": 2})


# ---- responses and security ---------------------------------------------------------------


def test_success_statuses(doc: Json, bindings: list[Binding]) -> None:
    shapes = {re.sub(r"\{[^}]*\}", "{}", p): p for p in doc["paths"]}
    for binding in bindings:
        path, _ = expand_template(binding.template)
        op = doc["paths"][shapes[re.sub(r"\{[^}]*\}", "{}", path)]][binding.method.lower()]
        status = success_status(binding)
        success = [code for code in op["responses"] if code.startswith("2")]
        assert success == [str(status)], op["operationId"]
        assert ("content" in op["responses"][str(status)]) == (status != 204)
    assert "201" in operation(doc, "InvoiceService_CreateInvoice")["responses"]
    assert "201" in operation(doc, "ConnectionService_CreateConnection_alias")["responses"]
    deleted = operation(doc, "ConnectionService_DeleteConnection")["responses"]
    assert deleted["204"]["description"] == "No Content" and "content" not in deleted["204"]
    got = operation(doc, "InvoiceService_GetInvoice")["responses"]["200"]
    assert got["content"]["application/json"]["schema"]["$ref"].endswith("invoicing.v1.Invoice")


def test_every_operation_has_the_error_default_and_bearer_security(doc: Json) -> None:
    scheme = doc["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert doc["security"] == [{"bearerAuth": []}]
    for _, _, op in operations(doc):
        default = op["responses"]["default"]["content"]["application/json"]["schema"]
        jsonapi = op.get("x-dialect") in ("seed-000", "seed-003")  # the seeds' error shape
        error = f"{op['x-dialect']}.Error" if jsonapi else "Error"
        assert default == {"$ref": f"#/components/schemas/{error}"}
        assert op["security"] == [{"bearerAuth": []}]


def test_error_schema_is_the_gateway_error_body(doc: Json) -> None:
    error = component(doc, "Error")
    assert set(error["required"]) == {"code", "status", "title", "message", "details", "meta"}
    check = validator(doc, "Error")
    body = {
        "code": "NOT_FOUND",
        "status": 404,
        "title": "Not Found",
        "message": "invoice not found",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "NOT_FOUND"}],
        "meta": {"trace_id": "4bf92f3577b34da6"},
    }
    check.validate(body)
    for code in ("BAD_REQUEST", "METHOD_NOT_ALLOWED", "PAYLOAD_TOO_LARGE", "UNAVAILABLE"):
        check.validate({**body, "code": code})
    assert not check.is_valid({**body, "code": 5})
    assert not check.is_valid({**body, "details": [{"reason": "X"}]})


# ---- comments -----------------------------------------------------------------------------


def test_load_comments_keys_every_kind_of_element(comments: dict[str, str]) -> None:
    assert comments["invoicing.v1.Invoice"].startswith("An invoice issued by or to the tenant")
    assert comments["invoicing.v1.Invoice.status"] == "Lifecycle status."
    assert comments["invoicing.v1.InvoiceStatus"] == "Lifecycle: DRAFT -> ISSUED -> VOID."
    assert comments["invoicing.v1.InvoiceStatus.INVOICE_STATUS_VOID"] == "Cancelled after issue."
    assert comments["invoicing.v1.ConnectionService"].startswith("Connections to external")
    method = comments["invoicing.v1.InvoiceService.CreateInvoice"]
    assert method.startswith("Creates a draft invoice. Totals are computed by the server;")
    assert "\n total" not in method  # the comment's leading space is removed per line
    assert "google.type.Date" in comments


def test_descriptions_come_from_proto_comments(doc: Json) -> None:
    create = operation(doc, "InvoiceService_CreateInvoice")
    assert create["summary"] == "Creates a draft invoice."
    listed = operation(doc, "ProvenanceService_ListInvoiceProvenances")["summary"]
    assert listed.endswith("(e.g. by invoice_id, connection_id, direction).")
    assert "ALREADY_EXISTS (supplier number already" in create["description"]
    invoice = component(doc, "invoicing.v1.Invoice")
    assert invoice["description"].startswith("An invoice issued by or to the tenant")
    assert invoice["properties"]["order_id"]["description"].startswith("Optional external order")
    get = operation(doc, "InvoiceService_GetInvoice")
    assert get["parameters"][0]["description"] == "The invoice id."


def test_without_comments_there_are_no_descriptions(bindings: list[Binding]) -> None:
    bare = build_openapi(bindings, title="T", version="9")
    validate(bare)
    assert bare["info"]["title"] == "T" and bare["info"]["version"] == "9"
    assert "summary" not in operation(bare, "InvoiceService_CreateInvoice")
    assert "description" not in component(bare, "invoicing.v1.Invoice")


# ---- docs page ----------------------------------------------------------------------------


def test_docs_html_loads_only_local_assets() -> None:
    page = docs_html()
    assert "http://" not in page and "https://" not in page
    assets = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert assets and all(a.startswith("/docs/static/") for a in assets)
    for name in ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"):
        assert f"/docs/static/{name}" in assets
    assert '"url": "/openapi.json"' in page
    assert '"validatorUrl": null' in page  # no call to the public validator


def test_docs_html_custom_urls_are_escaped() -> None:
    page = docs_html("/api/openapi.json", "/assets/")
    assert "/assets/swagger-ui-bundle.js" in page and '"url": "/api/openapi.json"' in page
    hostile = docs_html('/x</script><script>alert(1)//"', '/s"><b')
    assert "</script><script>alert" not in hostile
    assert '/s"><b' not in hostile


def test_static_dir_has_the_swagger_ui_assets() -> None:
    directory = static_dir()
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js"):
        assert (directory / name).is_file(), name
    for asset in re.findall(r'(?:src|href)="/docs/static/([^"]*)"', docs_html()):
        assert (directory / asset).is_file(), asset


def test_no_two_paths_differ_only_in_parameter_names(doc: Json) -> None:
    shapes = [re.sub(r"\{[^}]*\}", "{}", path) for path in doc["paths"]]
    assert len(shapes) == len(set(shapes))


def test_conditional_and_idempotency_headers_are_documented(doc: Json) -> None:
    create = doc["paths"]["/v1/invoices"]["post"]
    headers = {p["name"] for p in create["parameters"] if p["in"] == "header"}
    assert headers == {"Idempotency-Key"}
    created = create["responses"]["201"]["headers"]
    assert {"Location", "ETag", "Idempotent-Replayed", "X-Request-Id"} <= set(created)
    patch = doc["paths"]["/v1/invoices/{id}"]["patch"]
    assert "If-Match" in {p["name"] for p in patch["parameters"] if p["in"] == "header"}
    assert "412" in patch["responses"]
    get = doc["paths"]["/v1/invoices/{id}"]["get"]
    assert "If-None-Match" in {p["name"] for p in get["parameters"] if p["in"] == "header"}
    assert "304" in get["responses"] and "412" not in get["responses"]
    listed = doc["paths"]["/v1/invoices"]["get"]
    assert "304" not in listed["responses"]


def test_create_and_update_bodies_have_examples(doc: Json) -> None:
    create = doc["paths"]["/v1/invoices"]["post"]["requestBody"]["content"]["application/json"]
    assert create["example"]["type"] == "INVOICE_TYPE_CUSTOMER"
    patch = doc["paths"]["/v1/invoices/{id}"]["patch"]["requestBody"]["content"]
    assert patch["application/json"]["example"] == {"notes": "Paid by bank transfer"}
