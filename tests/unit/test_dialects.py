"""The seed dialects (service/gateway/dialects): what a dialect writes, the same dialect reads
back unchanged (hypothesis, over every field of the seed paths' messages); money keeps every
digit through a JSON-number round trip; short enum spellings; JSON:API documents pass the
official JSON:API 1.0 schema; the dialect table; and the OpenAPI document describes what the
dialects really write. No server, no database."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from google.protobuf import json_format, message_factory, struct_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message
from google.type import date_pb2
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from invoicing.v1 import (
    allocations_pb2,
    common_pb2,
    connections_pb2,
    invoices_pb2,
    provenance_pb2,
    records_pb2,
)
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from service.gateway import jsonout
from service.gateway.bindings import (
    Binding,
    bindings_from_services,
    generated_services,
    success_status,
)
from service.gateway.dialects import (
    DIALECTS,
    SEED_000,
    SEED_001,
    SEED_002,
    SEED_003,
    SEED_004,
    Dialect,
    for_binding,
    jsontext,
)
from service.gateway.dialects.base import JsonApi, Plain, dialect_for
from service.gateway.dialects.style import Style
from service.gateway.openapi.document import build_openapi, expand_template
from service.gateway.transcode import BadRequest

ROOT = Path(__file__).resolve().parents[2]
JSONAPI_SCHEMA = ROOT / "tests" / "fixtures" / "jsonapi-1.0.schema.json"
BINDINGS = bindings_from_services(generated_services())
F = FieldDescriptor
Json = dict[str, Any]

ParseError = json_format.ParseError
ParseDict = json_format.ParseDict

# Every decimal-string field some dialect writes as a JSON number: generated as the service
# stores money (kit/money.format_money: plain digits, no leading zeros, no negative zero).
MONEY = frozenset(SEED_001.style.numbers | SEED_003.style.numbers)
_INT_RANGES = {
    F.TYPE_INT32: (-(2**31), 2**31 - 1),
    F.TYPE_SINT32: (-(2**31), 2**31 - 1),
    F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    F.TYPE_UINT32: (0, 2**32 - 1),
    F.TYPE_FIXED32: (0, 2**32 - 1),
    F.TYPE_INT64: (-(2**63), 2**63 - 1),
    F.TYPE_SINT64: (-(2**63), 2**63 - 1),
    F.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    F.TYPE_UINT64: (0, 2**64 - 1),
    F.TYPE_FIXED64: (0, 2**64 - 1),
}
# Timestamp range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z; year 1000 for seed 004 (see
# test_seed_004_writes_timestamps_before_year_1000_as_rfc3339).
_SECONDS_MIN, _SECONDS_YEAR_1000, _SECONDS_MAX = -62135596800, -30610224000, 253402300799
SLOW = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def binding(method: str, template: str) -> Binding:
    found = [b for b in BINDINGS if b.method == method and b.template == template]
    assert len(found) == 1, (method, template, found)
    return found[0]


def cls(descriptor: Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)


def wire(value: Any) -> Any:
    """The JSON text a dialect answers with, read back as the gateway reads a body."""
    return jsontext.loads(jsontext.dumps(value))


def client_view(value: Any) -> Any:
    """The same text as an ordinary JSON client reads it (floats), for schema validation."""
    return json.loads(jsontext.dumps(value))


# ---- hypothesis: messages with every field ------------------------------------------------


@st.composite
def money_text(draw: st.DrawFn) -> str:
    """ "-12.340": up to 15 integer digits, 0..6 fraction digits, as the service stores it."""
    integer = draw(st.integers(0, 10**15 - 1))
    places = draw(st.integers(0, 6))
    text = str(integer)
    if places:
        text += "." + str(draw(st.integers(0, 10**places - 1))).zfill(places)
    if draw(st.booleans()) and Decimal(text) != 0:
        text = "-" + text
    return text


@st.composite
def timestamps(draw: st.DrawFn, millis: bool = False) -> timestamp_pb2.Timestamp:
    low = _SECONDS_YEAR_1000 if millis else _SECONDS_MIN
    seconds = draw(
        st.one_of(st.integers(low, _SECONDS_MAX), st.integers(1_700_000_000, 1_900_000_000))
    )
    if millis:
        nanos = draw(st.integers(0, 999)) * 1_000_000
    else:
        nanos = draw(
            st.one_of(
                st.just(0),
                st.integers(0, 999).map(lambda m: m * 1_000_000),
                st.integers(0, 999_999).map(lambda u: u * 1_000),
                st.integers(0, 999_999_999),
            )
        )
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def dates() -> st.SearchStrategy[date_pb2.Date]:
    return st.dates().map(lambda d: date_pb2.Date(year=d.year, month=d.month, day=d.day))


def _enum_numbers(enum: EnumDescriptor) -> st.SearchStrategy[int]:
    known = [v.number for v in enum.values]
    return st.one_of(st.sampled_from(known), st.just(99))  # proto3 enums are open


def _scalars(f: FieldDescriptor) -> st.SearchStrategy[Any]:
    if f.enum_type is not None:
        return _enum_numbers(f.enum_type)
    if f.type == F.TYPE_STRING:
        if f.name in MONEY:
            return money_text()
        return st.text(max_size=12)
    if f.type == F.TYPE_BOOL:
        return st.booleans()
    if f.type in _INT_RANGES:
        low, high = _INT_RANGES[f.type]
        return st.integers(low, high)
    if f.type in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return st.floats(allow_nan=False, allow_infinity=False, width=32)
    if f.type == F.TYPE_BYTES:
        return st.binary(max_size=8)
    raise AssertionError(f"no strategy for {f.full_name}")


@st.composite
def messages(draw: st.DrawFn, descriptor: Descriptor, millis: bool = False, depth: int = 0) -> Any:
    """A random message of `descriptor`: scalars of every value (zero values and UNSPECIFIED
    included), optional and message fields set or not, repeated fields of 0..2 items."""
    if descriptor.full_name == "google.protobuf.Timestamp":
        return draw(timestamps(millis))
    if descriptor.full_name == "google.type.Date":
        return draw(dates())
    message = cls(descriptor)()
    for f in descriptor.fields:
        assert not (f.message_type is not None and f.message_type.GetOptions().map_entry)
        if f.message_type is not None:
            assert not f.message_type.full_name.startswith("google.protobuf.") or (
                f.message_type.full_name == "google.protobuf.Timestamp"
            ), f.full_name
            if depth >= 4:
                continue
            item = messages(f.message_type, millis, depth + 1)
            if f.is_repeated:
                for value in draw(st.lists(item, max_size=2)):
                    getattr(message, f.name).add().CopyFrom(value)
            elif draw(st.booleans()):
                getattr(message, f.name).CopyFrom(draw(item))
            continue
        if f.is_repeated:
            getattr(message, f.name).extend(draw(st.lists(_scalars(f), max_size=2)))
        elif not f.has_presence or draw(st.booleans()):
            setattr(message, f.name, draw(_scalars(f)))
    return message


def round_trip_style(style: Style, message: Message) -> Message:
    """write -> JSON text -> read -> ParseDict; both writers (from the message, as the
    gateway does, and from its canonical JSON, as records rows are) give the same text."""
    descriptor = message.DESCRIPTOR
    text = jsontext.dumps(style.write_message(message))
    assert text == jsontext.dumps(style.write(descriptor, jsonout.to_dict(message)))
    back = style.read(descriptor, jsontext.loads(text))
    return ParseDict(back, type(message)())


# ---- 1. round trips -------------------------------------------------------------------------


@SLOW
@given(messages(invoices_pb2.Invoice.DESCRIPTOR))
def test_seed_001_round_trips_invoices(invoice: invoices_pb2.Invoice) -> None:
    assert round_trip_style(SEED_001.style, invoice) == invoice


@SLOW
@given(messages(invoices_pb2.InvoiceDocument.DESCRIPTOR))
def test_seed_002_round_trips_invoice_documents(document: invoices_pb2.InvoiceDocument) -> None:
    assert round_trip_style(SEED_002.style, document) == document


@SLOW
@given(messages(connections_pb2.Connection.DESCRIPTOR, millis=True))
def test_seed_004_round_trips_connections(connection: connections_pb2.Connection) -> None:
    assert round_trip_style(SEED_004.style, connection) == connection


@pytest.mark.parametrize(
    ("style", "descriptor"),
    [
        (SEED_001.style, invoices_pb2.Invoice.DESCRIPTOR),
        (SEED_002.style, invoices_pb2.InvoiceDocument.DESCRIPTOR),
        (SEED_004.style, connections_pb2.Connection.DESCRIPTOR),
        (SEED_003.style, allocations_pb2.Allocation.DESCRIPTOR),
        (SEED_000.style, provenance_pb2.InvoiceProvenance.DESCRIPTOR),
    ],
    ids=["seed-001", "seed-002", "seed-004", "seed-003", "seed-000"],
)
@pytest.mark.parametrize("fill", ["every-field", "empty"])
def test_full_and_empty_messages_round_trip(
    style: Style, descriptor: Descriptor, fill: str
) -> None:
    message = _filled(descriptor) if fill == "every-field" else cls(descriptor)()
    assert round_trip_style(style, message) == message


def _json_api_round_trip(
    dialect: JsonApi, get: Binding, create: Binding, message: Message
) -> Message:
    request = cls(get.rpc.input_type)(id=getattr(message, "id", ""))
    written = dialect.write(get, request, message, get.template)
    assert written.headers == {}
    document = wire(written.body)
    node = document["data"]
    resource = dialect.resource(message.DESCRIPTOR.full_name)
    assert resource is not None
    assert node["type"] == resource.type
    assert node["id"] == getattr(message, "id")  # noqa: B009
    assert "id" not in node["attributes"]
    for rel in resource.relationships:
        value = getattr(message, rel.field)
        linkage = node["relationships"][rel.name]["data"]
        assert linkage == ({"type": rel.type, "id": value} if value else None)
        assert rel.field not in node["attributes"]
    del node["id"]  # ids are assigned by the server: a create document has none
    target = create.rpc.input_type.fields_by_name[create.body].message_type
    assert target is message.DESCRIPTOR
    back = dialect.read_body(create, target, document)
    return ParseDict(back, type(message)())


@SLOW
@given(messages(allocations_pb2.Allocation.DESCRIPTOR))
def test_seed_003_round_trips_allocations(allocation: allocations_pb2.Allocation) -> None:
    get = binding("GET", "/v1/invoice-transactions/{id}")
    create = binding("POST", "/v1/invoice-transactions")
    expected = allocations_pb2.Allocation()
    expected.CopyFrom(allocation)
    expected.ClearField("id")
    assert _json_api_round_trip(SEED_003, get, create, allocation) == expected


@SLOW
@given(messages(provenance_pb2.InvoiceProvenance.DESCRIPTOR))
def test_seed_000_round_trips_provenance(provenance: provenance_pb2.InvoiceProvenance) -> None:
    get = binding("GET", "/v1/invoice-workspace-connectors/{id}")
    create = binding("POST", "/v1/invoice-workspace-connectors")
    expected = provenance_pb2.InvoiceProvenance()
    expected.CopyFrom(provenance)
    expected.ClearField("id")
    assert _json_api_round_trip(SEED_000, get, create, provenance) == expected


@SLOW
@given(
    st.sampled_from([SEED_000.style, SEED_003.style, SEED_001.style]),
    messages(allocations_pb2.Allocation.DESCRIPTOR),
    messages(provenance_pb2.InvoiceProvenance.DESCRIPTOR),
)
def test_short_enum_styles_round_trip_other_messages(
    style: Style, allocation: Message, provenance: Message
) -> None:
    """The plain styles of the JSON:API dialects (ids included) are inverses as well."""
    assert round_trip_style(style, allocation) == allocation
    assert round_trip_style(style, provenance) == provenance


@SLOW
@given(
    st.lists(messages(connections_pb2.Connection.DESCRIPTOR, millis=True), max_size=3),
    st.text(min_size=0, max_size=12),
)
def test_seed_004_lists_are_bare_arrays_with_a_link_header(
    connections: list[connections_pb2.Connection], cursor: str
) -> None:
    listing = binding("GET", "/invoice-connections")
    response = connections_pb2.ListConnectionsResponse(data=connections, next_cursor=cursor)
    url = "/invoice-connections?limit=2&cursor=old&active=true"
    written = SEED_004.write(listing, connections_pb2.ListConnectionsRequest(), response, url)
    body = wire(written.body)
    assert isinstance(body, list)
    item_type = connections_pb2.Connection
    back = [ParseDict(SEED_004.style.read(item_type.DESCRIPTOR, i), item_type()) for i in body]
    assert back == connections
    if not cursor:
        assert written.headers == {}
        return
    link = written.headers["link"]
    assert link.startswith("<") and link.endswith('>; rel="next"')
    next_url = urlsplit(link[1 : -len('>; rel="next"')])
    assert next_url.path == "/invoice-connections"
    assert parse_qs(next_url.query, keep_blank_values=True) == {
        "limit": ["2"],
        "active": ["true"],
        "cursor": [cursor],
    }


def test_seed_004_spells_the_seed_example() -> None:
    connection = connections_pb2.Connection(
        id="con_1", tenant_id="ten_1", provider="yooz", active=True, has_credentials=True
    )
    connection.created_at.FromJsonString("2024-06-22T09:00:00Z")
    connection.updated_at.FromJsonString("2024-06-22T09:00:00.123456789Z")
    written = SEED_004.style.write(connection.DESCRIPTOR, jsonout.to_dict(connection))
    assert written["client"] == "ten_1"
    assert "tenant_id" not in written and "tenantId" not in written
    assert written["hasCredentials"] is True and written["hasWebhookSecret"] is False
    assert written["lastPolledAt"] is None
    assert written["createdAt"] == "2024-06-22T09:00:00.000Z"
    assert written["updatedAt"] == "2024-06-22T09:00:00.123Z"


def test_seed_004_writes_timestamps_before_year_1000_as_rfc3339() -> None:
    """Timestamp's range starts at 0001-01-01; RFC 3339 years have four digits."""
    connection = connections_pb2.Connection(id="con_1")
    connection.created_at.FromJsonString("0001-01-01T00:00:00Z")
    connection.updated_at.FromJsonString("0999-12-31T23:59:59.250Z")
    written = SEED_004.style.write(connection.DESCRIPTOR, jsonout.to_dict(connection))
    assert written["createdAt"] == "0001-01-01T00:00:00.000Z"
    assert written["updatedAt"] == "0999-12-31T23:59:59.250Z"
    assert round_trip_style(SEED_004.style, connection) == connection


def test_seed_002_writes_flex_transaction_id_only_when_set() -> None:
    document = invoices_pb2.InvoiceDocument(identifiers=invoices_pb2.DocumentIdentifiers(id="x"))
    written = SEED_002.style.write(document.DESCRIPTOR, jsonout.to_dict(document))
    identifiers = written["identifiers"]
    assert "flexTransactionId" not in identifiers
    assert identifiers["jobId"] is None and identifiers["orderId"] is None
    assert identifiers["isSupplierInvoice"] is False
    document.identifiers.flex_transaction_id = "ft_1"
    written = SEED_002.style.write(document.DESCRIPTOR, jsonout.to_dict(document))
    assert written["identifiers"]["flexTransactionId"] == "ft_1"


# ---- 2. money digits ------------------------------------------------------------------------


@st.composite
def decimals(draw: st.DrawFn) -> Decimal:
    """Finite decimals of 1..30 digits with exponents -30..30 (zeros of any sign included)."""
    digits = draw(st.lists(st.integers(0, 9), min_size=1, max_size=30))
    return Decimal((draw(st.integers(0, 1)), tuple(digits), draw(st.integers(-30, 30))))


@settings(max_examples=400, deadline=None)
@given(decimals())
def test_jsontext_writes_decimals_with_exactly_their_digits(value: Decimal) -> None:
    text = jsontext.dumps({"a": value}).decode()
    assert text == '{"a":' + format(value, "f") + "}"
    loaded = json.loads(text, parse_float=Decimal, parse_int=Decimal)["a"]
    assert loaded == value
    assert format(loaded, "f") == format(value, "f")
    assert jsontext.loads(text.encode())["a"] == value


@settings(max_examples=400, deadline=None)
@given(decimals())
def test_seed_001_reads_json_numbers_into_exact_money_text(value: Decimal) -> None:
    # A JSON "-0" is the integer 0; the service never stores a negative zero.
    value = value.copy_abs() if value.is_zero() else value
    assume(value.is_zero() or value.adjusted() <= 40)  # beyond: refused (tested below)
    text = b'{"total": ' + format(value, "f").encode() + b"}"
    canon = SEED_001.style.read(invoices_pb2.Invoice.DESCRIPTOR, jsontext.loads(text))
    assert canon == {"total": format(value, "f")}
    assert ParseDict(canon, invoices_pb2.Invoice()).total == format(value, "f")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1200.50", "1200.50"),
        ("1441.20", "1441.20"),
        ("12345678901234567.89", "12345678901234567.89"),  # a float says ...567.88
        ("0.1", "0.1"),
        ("-0.30", "-0.30"),
        ("0.000000000000000000000000001", "0.000000000000000000000000001"),
        ("1e2", "100"),
        ("1.50E+3", "1500"),
        ("2.5e-3", "0.0025"),
        ("1200", "1200"),
        ('"1200.50"', "1200.50"),  # strings accepted too, as they are
    ],
)
def test_seed_001_money_is_read_without_a_float(text: str, expected: str) -> None:
    body = f'{{"total": {text}, "line_items": [{{"unit_price": {text}}}]}}'.encode()
    canon = SEED_001.style.read(invoices_pb2.Invoice.DESCRIPTOR, jsontext.loads(body))
    assert canon["total"] == expected
    assert canon["line_items"] == [{"unit_price": expected}]
    invoice = ParseDict(canon, invoices_pb2.Invoice())
    assert invoice.total == expected and invoice.line_items[0].unit_price == expected


def test_seed_001_writes_money_as_numbers_with_every_digit() -> None:
    invoice = invoices_pb2.Invoice(
        total="12345678901234567.89",
        subtotal="1441.20",
        amount="0.000001",
        tax_amount="",
        line_items=[invoices_pb2.LineItem(quantity="10", unit_price="120.10")],
    )
    text = jsontext.dumps(SEED_001.style.write(invoice.DESCRIPTOR, jsonout.to_dict(invoice)))
    assert b'"total":12345678901234567.89,' in text
    assert b'"subtotal":1441.20,' in text
    assert b'"amount":0.000001,' in text
    assert b'"tax_amount":null,' in text  # unset money
    assert b'"quantity":10,"unit_price":120.10,' in text


@pytest.mark.parametrize(
    "number",
    [
        "1e999",
        "-1e999",
        "1e-999",
        "1e41",
        pytest.param("0." + "1" * 70, id="fraction-of-70-digits"),
        pytest.param("1." + "2" * 69, id="decimal-of-70-digits"),
        pytest.param("9" * 70, id="integer-of-70-digits"),
        pytest.param("-" + "9" * 70, id="negative-integer-of-70-digits"),
    ],
)
def test_seed_001_refuses_money_numbers_out_of_range(number: str) -> None:
    data = jsontext.loads(b'{"total": ' + number.encode() + b"}")
    with pytest.raises(BadRequest, match="out of range"):
        SEED_001.style.read(invoices_pb2.Invoice.DESCRIPTOR, data)


@pytest.mark.parametrize(("field", "number"), [("notes", "1e999"), ("currency", "-1e999")])
def test_numbers_out_of_float_range_in_other_fields_are_refused(field: str, number: str) -> None:
    data = jsontext.loads(f'{{"{field}": {number}}}'.encode())
    with pytest.raises(BadRequest, match="out of range"):
        SEED_001.style.read(invoices_pb2.Invoice.DESCRIPTOR, data)


_HUGE_INTEGER_FIELD = """
import sys, time
from decimal import Decimal
from google.protobuf import json_format
from invoicing.v1 import invoices_pb2
from service.gateway.dialects import SEED_001, jsontext
from service.gateway.transcode import BadRequest
data = jsontext.loads(b'{"schema_version": 1e10000000}')
try:
    canon = SEED_001.style.read(invoices_pb2.Invoice.DESCRIPTOR, data)
    json_format.ParseDict(canon, invoices_pb2.Invoice())
except BadRequest:
    print("BadRequest")
except json_format.ParseError:
    print("ParseError")
else:
    print("accepted")
"""


def test_a_huge_exponent_in_an_integer_field_is_refused_at_once() -> None:
    """`{"schema_version": 1e10000000}` (29 bytes) on a seed 001 body: refused in
    milliseconds, not turned into a ten-million-digit integer first."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "generated")])}
    try:
        done = subprocess.run(  # this interpreter, a fixed script
            [sys.executable, "-c", _HUGE_INTEGER_FIELD],
            capture_output=True,
            text=True,
            timeout=5,
            env=env,
            cwd=ROOT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("reading 1e10000000 into an int32 field took more than 5 s")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in ("BadRequest", "ParseError")


# ---- 3. short enums -------------------------------------------------------------------------

_ENUM_FIELDS = [
    (SEED_001.style, invoices_pb2.Invoice, "type", invoices_pb2.InvoiceType),
    (SEED_001.style, invoices_pb2.Invoice, "direction", invoices_pb2.InvoiceDirection),
    (SEED_001.style, invoices_pb2.Invoice, "status", invoices_pb2.InvoiceStatus),
    (SEED_001.style, invoices_pb2.Invoice, "payment_status", invoices_pb2.PaymentStatus),
    (SEED_001.style, invoices_pb2.Invoice, "source_type", common_pb2.SourceType),
    (SEED_003.style, allocations_pb2.Allocation, "allocation_type", allocations_pb2.AllocationType),
    (
        SEED_000.style,
        provenance_pb2.InvoiceProvenance,
        "direction",
        provenance_pb2.ProvenanceDirection,
    ),
]
_ENUM_VALUES = [
    pytest.param(style, message, field, value, id=value.name)
    for style, message, field, enum in _ENUM_FIELDS
    for value in enum.DESCRIPTOR.values
]


@pytest.mark.parametrize(("style", "message", "field", "value"), _ENUM_VALUES)
def test_short_enum_spellings_read_back(
    style: Style, message: type[Message], field: str, value: Any
) -> None:
    enum = value.type
    prefix = enum.values_by_number[0].name.removesuffix("UNSPECIFIED")
    short = value.name.removeprefix(prefix).lower()
    written = style.write(message.DESCRIPTOR, jsonout.to_dict(message(**{field: value.number})))
    if value.number == 0:
        assert written[field] is None
        spellings = [value.name]
    else:
        assert written[field] == short
        spellings = [short, short.upper(), value.name]
    for spelling in spellings:
        canon = style.read(message.DESCRIPTOR, {field: spelling})
        assert canon == {field: value.name}
        assert getattr(ParseDict(canon, message()), field) == value.number
    assert getattr(ParseDict(style.read(message.DESCRIPTOR, {field: None}), message()), field) == 0


def test_seed_001_spells_enums_as_the_seed() -> None:
    invoice = invoices_pb2.Invoice(
        type=invoices_pb2.INVOICE_TYPE_CUSTOMER,
        direction=invoices_pb2.INVOICE_DIRECTION_RECEIVABLE,
        status=invoices_pb2.INVOICE_STATUS_DRAFT,
        payment_status=invoices_pb2.PAYMENT_STATUS_PARTIALLY_PAID,
        source_type=common_pb2.SOURCE_TYPE_API,
    )
    written = SEED_001.style.write(invoice.DESCRIPTOR, jsonout.to_dict(invoice))
    assert (
        written["type"],
        written["direction"],
        written["status"],
        written["payment_status"],
        written["source_type"],
    ) == ("customer", "receivable", "draft", "partially_paid", "api")


@pytest.mark.parametrize(("style", "message", "field", "enum"), _ENUM_FIELDS)
@pytest.mark.parametrize("spelling", ["bogus", "unspecified", "UNSPECIFIED", "INVOICE_TYPE_BOGUS"])
def test_unknown_enum_spellings_are_left_for_parse_dict(
    style: Style, message: type[Message], field: str, enum: Any, spelling: str
) -> None:
    canon = style.read(message.DESCRIPTOR, {field: spelling})
    assert canon == {field: spelling}
    with pytest.raises(ParseError):
        ParseDict(canon, message())


# ---- 4. JSON:API documents ------------------------------------------------------------------


def _match_all_pattern(node: Any) -> int:
    """Respell `patternProperties: {"": ...}` as `{"^": ...}` (the same language: every
    name), in place; the number of places. jsonschema 4.26 drops an empty pattern when it
    looks for additional properties (python-jsonschema/jsonschema PR #1522), so the
    schema's `attributes` and `meta` (`"": true` with `additionalProperties: false`) would
    refuse every member."""
    count = 0
    if isinstance(node, dict):
        patterns = node.get("patternProperties")
        if isinstance(patterns, dict) and "" in patterns:
            patterns["^"] = patterns.pop("")
            count += 1
        count += sum(_match_all_pattern(v) for v in node.values())
    elif isinstance(node, list):
        count += sum(_match_all_pattern(v) for v in node)
    return count


@cache
def jsonapi_validator() -> Draft202012Validator:
    schema = json.loads(JSONAPI_SCHEMA.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert _match_all_pattern(schema) == 4  # attributes, meta, relationships(FromRequest)
    Draft202012Validator.check_schema(schema)
    resolver = Registry().with_resource(schema["$id"], Resource.from_contents(schema)).resolver()
    refs = set(re.findall(r'"\$ref": "([^"]+)"', JSONAPI_SCHEMA.read_text()))
    assert len(refs) > 20
    for ref in refs:  # every `#/definitions/...` resolves under 2020-12
        assert resolver.lookup(schema["$id"] + ref).contents is not None, ref
    return Draft202012Validator(schema)


def jsonapi_errors(document: Any) -> list[str]:
    """Every violation of the JSON:API 1.0 schema. The schema's draft-07 `dependencies`
    (data excludes errors; included needs data) is no 2020-12 keyword: checked here."""
    found = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonapi_validator().iter_errors(document)
    ]
    if isinstance(document, dict) and "data" in document and "errors" in document:
        found.append("data and errors together")
    if isinstance(document, dict) and "included" in document and "data" not in document:
        found.append("included without data")
    return found


def _allocation(n: int, **fields: Any) -> allocations_pb2.Allocation:
    allocation = allocations_pb2.Allocation(
        id=f"alc_{n}",
        invoice_transaction_id=f"alc_{n}",
        amount="1200.00",
        currency="USD",
        accounting_amount="1200.00",
        accounting_currency="USD",
        allocation_type=allocations_pb2.ALLOCATION_TYPE_FULL,
        invoice_id="inv_1",
        transaction_id="txn_1",
        **fields,
    )
    allocation.created_at.FromJsonString("2026-04-28T11:00:00Z")
    return allocation


def _provenance(n: int) -> provenance_pb2.InvoiceProvenance:
    provenance = provenance_pb2.InvoiceProvenance(
        id=f"prv_{n}",
        invoice_id="inv_1",
        connection_id="con_1",
        direction=provenance_pb2.PROVENANCE_DIRECTION_INPUT,
    )
    provenance.created_at.FromJsonString("2026-05-10T14:23:11Z")
    return provenance


def _rows(*allocations: Message) -> list[struct_pb2.Struct]:
    """Records-query rows, as the records servicer makes them (MessageToDict into Structs)."""
    out = []
    for allocation in allocations:
        row = struct_pb2.Struct()
        row.update(jsonout.to_dict(allocation))
        out.append(row)
    return out


def _list_cases() -> list[Any]:
    a_pb, p_pb, r_pb = allocations_pb2, provenance_pb2, records_pb2
    allocations = ("GET", "/v1/invoice-transactions", a_pb.ListAllocationsRequest())
    provenance = ("GET", "/v1/invoice-workspace-connectors", p_pb.ListInvoiceProvenancesRequest())
    query = ("POST", "/v1/records/query", r_pb.QueryRecordsRequest(root="invoice_transactions"))
    two_allocations = [_allocation(1), _allocation(2)]
    cases = [
        (
            "allocations-next",
            SEED_003,
            allocations,
            a_pb.ListAllocationsResponse(data=two_allocations, next_cursor="eyJwayI6MTI4N30"),
        ),
        ("allocations-empty", SEED_003, allocations, a_pb.ListAllocationsResponse()),
        (
            "allocations-total",
            SEED_003,
            allocations,
            a_pb.ListAllocationsResponse(data=[_allocation(3, subscription_id="sub_1")], total=1),
        ),
        ("allocations-empty-total", SEED_003, allocations, a_pb.ListAllocationsResponse(total=0)),
        (
            "allocations-unset",
            SEED_003,
            allocations,
            a_pb.ListAllocationsResponse(data=[a_pb.Allocation()]),
        ),
        (
            "provenance-next",
            SEED_000,
            provenance,
            p_pb.ListInvoiceProvenancesResponse(
                data=[_provenance(1), _provenance(2)], next_cursor="c2"
            ),
        ),
        ("provenance-empty", SEED_000, provenance, p_pb.ListInvoiceProvenancesResponse()),
        (
            "provenance-total",
            SEED_000,
            provenance,
            p_pb.ListInvoiceProvenancesResponse(data=[_provenance(3)], total=7),
        ),
        (
            "records-next",
            SEED_003,
            query,
            r_pb.QueryRecordsResponse(data=_rows(*two_allocations), next_cursor="n", total=2),
        ),
        ("records-empty", SEED_003, query, r_pb.QueryRecordsResponse(total=0)),
    ]
    return [
        pytest.param(dialect, binding(method, template), request, response, id=name)
        for name, dialect, (method, template, request), response in cases
    ]


@pytest.mark.parametrize(("dialect", "listing", "request_", "response"), _list_cases())
def test_json_api_lists_are_valid_documents(
    dialect: JsonApi, listing: Binding, request_: Message, response: Message
) -> None:
    written = dialect.write(listing, request_, response, listing.template)
    document = client_view(written.body)
    assert jsonapi_errors(document) == []
    canon = jsonout.to_dict(response)
    assert document["links"] == {"next": canon["next_cursor"] or None}
    count = len(canon["data"])
    assert document["meta"] == ({"total": canon["total"]} if "total" in canon else {}) | {
        "count": count
    }
    assert len(document["data"]) == count
    resource = dialect.resources[0]
    for node, item in zip(document["data"], canon["data"], strict=True):
        assert node["type"] == resource.type
        assert node["id"] == item.get("id", "")


@pytest.mark.parametrize(
    ("dialect", "template", "message"),
    [
        (SEED_003, "/v1/invoice-transactions/{id}", _allocation(1, subscription_id="sub_1")),
        (SEED_003, "/v1/invoice-transactions/{id}", allocations_pb2.Allocation(id="alc_0")),
        (SEED_000, "/v1/invoice-workspace-connectors/{id}", _provenance(1)),
        (SEED_000, "/v1/invoice-workspace-connectors/{id}", provenance_pb2.InvoiceProvenance()),
    ],
)
def test_json_api_resources_are_valid_documents(
    dialect: JsonApi, template: str, message: Message
) -> None:
    get = binding("GET", template)
    written = dialect.write(get, cls(get.rpc.input_type)(), message, template)
    document = client_view(written.body)
    assert jsonapi_errors(document) == []
    assert set(document) == {"data"}
    assert set(document["data"]) == {"type", "id", "attributes", "relationships"}


@SLOW
@given(
    messages(allocations_pb2.Allocation.DESCRIPTOR), messages(allocations_pb2.Allocation.DESCRIPTOR)
)
def test_json_api_documents_of_any_allocations_are_valid(a: Message, b: Message) -> None:
    a.id, b.id = "alc_a", "alc_b"  # distinct resources (uniqueItems)
    get = binding("GET", "/v1/invoice-transactions/{id}")
    single = SEED_003.write(get, allocations_pb2.GetAllocationRequest(), a, get.template)
    assert jsonapi_errors(client_view(single.body)) == []
    listing = binding("GET", "/v1/invoice-transactions")
    response = allocations_pb2.ListAllocationsResponse(data=[a, b], next_cursor="n", total=2)
    written = SEED_003.write(listing, allocations_pb2.ListAllocationsRequest(), response, "/")
    assert jsonapi_errors(client_view(written.body)) == []


def test_the_seed_examples_are_valid_json_api() -> None:
    """The schema accepts what seeds 000 and 003 show (so it judges the right thing)."""
    seed_000 = {
        "data": {
            "type": "invoice_workspace_connector",
            "id": "1047382",
            "attributes": {"direction": "input", "deleted_at": None},
            "relationships": {
                "invoice": {"data": {"type": "invoice", "id": "f3a1e2b4"}},
                "workspace_connector": {"data": {"type": "workspace_connector", "id": "a9"}},
            },
        }
    }
    seed_003 = {
        "data": [{"type": "invoice_transaction", "id": "e1", "attributes": {"amount": 1200}}],
        "meta": {"total": 1, "count": 1},
        "links": {"next": None},
    }
    assert jsonapi_errors(seed_000) == []
    assert jsonapi_errors(seed_003) == []


def _valid_document() -> Json:
    get = binding("GET", "/v1/invoice-transactions/{id}")
    written = SEED_003.write(get, allocations_pb2.GetAllocationRequest(), _allocation(1), "/")
    document: Json = client_view(written.body)
    assert jsonapi_errors(document) == []
    return document


def _without_type(d: Json) -> None:
    del d["data"]["type"]


def _id_in_attributes(d: Json) -> None:
    d["data"]["attributes"]["id"] = "alc_1"


def _numeric_id(d: Json) -> None:
    d["data"]["id"] = 1


def _bad_linkage(d: Json) -> None:
    d["data"]["relationships"]["invoice"]["data"] = {"id": "inv_1"}


def _bad_member_name(d: Json) -> None:
    d["data"]["attributes"]["_private"] = 1


def _unknown_top_level(d: Json) -> None:
    d["code"] = "BAD_REQUEST"


def _data_and_errors(d: Json) -> None:
    d["errors"] = [{"status": "400"}]


@pytest.mark.parametrize(
    "breakage",
    [
        _without_type,
        _id_in_attributes,
        _numeric_id,
        _bad_linkage,
        _bad_member_name,
        _unknown_top_level,
        _data_and_errors,
    ],
)
def test_the_json_api_validator_catches_broken_documents(breakage: Any) -> None:
    document = _valid_document()
    breakage(document)
    assert jsonapi_errors(document) != []


def test_json_api_create_documents_are_checked() -> None:
    create = binding("POST", "/v1/invoice-transactions")
    target = allocations_pb2.Allocation.DESCRIPTOR
    good = {
        "data": {
            "type": "invoice_transaction",
            "attributes": {"amount": Decimal("12.50"), "currency": "EUR"},
            "relationships": {
                "invoice": {"data": {"type": "invoice", "id": "inv_1"}},
                "transaction": {"data": {"id": "txn_1"}},
                "subscription": {"data": None},
            },
        }
    }
    assert SEED_003.read_body(create, target, good) == {
        "amount": "12.50",
        "currency": "EUR",
        "invoice_id": "inv_1",
        "transaction_id": "txn_1",
    }
    # a canonical (flat) body works on the seed path too
    flat = {"amount": "1", "invoice_id": "inv_1"}
    assert SEED_003.read_body(create, target, flat) == flat
    refused = [
        {"data": {"type": "invoice_transaction", "id": "alc_1"}},
        {"data": {"type": "invoice"}},
        {"data": []},
        {"data": {"type": "invoice_transaction", "links": {}}},
        {"data": {"type": "invoice_transaction", "attributes": ["amount"]}},
        {"data": {"type": "invoice_transaction", "relationships": {"nope": {"data": None}}}},
        {"data": {"relationships": {"invoice": {"data": {"type": "invoice", "id": 1}}}}},
        {"data": {"relationships": {"invoice": {"data": {"type": "bill", "id": "inv_1"}}}}},
    ]
    for document in refused:
        with pytest.raises(BadRequest):
            SEED_003.read_body(create, target, document)


@pytest.mark.parametrize("relationships", [["invoice"], "invoice", 1, True])
def test_json_api_create_refuses_relationships_that_are_not_an_object(
    relationships: Any,
) -> None:
    """A malformed body is a 400 (BadRequest), not an AttributeError (a 500)."""
    create = binding("POST", "/v1/invoice-transactions")
    document = {"data": {"type": "invoice_transaction", "relationships": relationships}}
    with pytest.raises(BadRequest, match="relationships"):
        SEED_003.read_body(create, allocations_pb2.Allocation.DESCRIPTOR, document)


# ---- 5. the dialect table -------------------------------------------------------------------

_SEED_PREFIXES = [
    ("/api/v1/finance/invoices", SEED_001),
    ("/v1/invoice-transactions", SEED_003),
    ("/v1/records/query", SEED_003),
    ("/v1/invoice-workspace-connectors", SEED_000),
    ("/invoice-connections", SEED_004),
    ("/v1/invoices/{id}/document", SEED_002),
]


def test_every_binding_gets_its_seed_dialect_or_none() -> None:
    seen: set[str] = set()
    for b in BINDINGS:
        expected = next((d for p, d in _SEED_PREFIXES if b.template.startswith(p)), None)
        assert for_binding(b) is expected, b.template
        if expected is not None:
            seen.add(expected.name)
    assert seen == {d.name for d in (SEED_000, SEED_001, SEED_002, SEED_003, SEED_004)}


@pytest.mark.parametrize(
    "template",
    [
        "/v1/invoices",
        "/v1/invoices/{id}",
        "/v1/invoices/{id}:issue",
        "/v1/invoices/{invoice_id}/deliveries",
        "/v1/allocations",
        "/v1/allocations/{id}",
        "/v1/invoice-connections",
        "/v1/invoice-connections/{id}:poll",
        "/v1/transactions",
        "/v1/exchange-rates",
        "/v1/counterparties",
        "/v1/workspace-settings",
    ],
)
def test_canonical_paths_have_no_dialect(template: str) -> None:
    assert dialect_for(DIALECTS, template) is None
    assert all(for_binding(b) is None for b in BINDINGS if b.template == template)
    assert any(b.template == template for b in BINDINGS)


def test_a_prefix_ends_at_a_slash_a_colon_or_the_end() -> None:
    short, long = Plain(name="short"), Plain(name="long")
    table: list[tuple[str, Dialect]] = [("/a", short), ("/a/b", long)]
    assert dialect_for(table, "/a") is short
    assert dialect_for(table, "/a/x") is short
    assert dialect_for(table, "/a:x") is short
    assert dialect_for(table, "/a/b") is long  # the longest prefix wins, in any order
    assert dialect_for(table[::-1], "/a/b/{id}") is long
    assert dialect_for(table, "/a/bc") is short
    assert dialect_for(table, "/ab") is None
    assert dialect_for(table, "/a-b") is None
    assert dialect_for(table, "/") is None
    assert dialect_for(DIALECTS, "/invoice-connections-x") is None
    assert dialect_for(DIALECTS, "/v1/invoice-transactionsx/{id}") is None
    assert dialect_for(DIALECTS, "/v1/invoices/{id}/documents") is None


# ---- 6. OpenAPI -----------------------------------------------------------------------------


@cache
def openapi() -> Json:
    return build_openapi(BINDINGS)


def _operation(doc: Json, b: Binding) -> tuple[str, Json]:
    path, _ = expand_template(b.template)
    shape = _shape(path)
    found = [p for p in doc["paths"] if _shape(p) == shape]
    assert len(found) == 1, (b.template, found)
    op = doc["paths"][found[0]][b.method.lower()]
    rpc = f"{b.rpc.containing_service.name}_{b.rpc.name}"
    assert op["operationId"].startswith(rpc), (op["operationId"], rpc)
    return found[0], op


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def _filled(descriptor: Descriptor, depth: int = 0) -> Any:
    """A message with every field set (enums to their last value, money to decimals)."""
    message = cls(descriptor)()
    for f in descriptor.fields:
        if f.message_type is not None:
            name = f.message_type.full_name
            if name == "google.protobuf.Timestamp":
                value: Any = timestamp_pb2.Timestamp()
                value.FromJsonString("2026-05-10T14:23:11.123Z")
            elif name == "google.type.Date":
                value = date_pb2.Date(year=2026, month=5, day=10)
            elif name == "google.protobuf.Struct":
                value = struct_pb2.Struct()
                value.update(jsonout.to_dict(_allocation(depth)))
            elif name.startswith("google.protobuf.") or depth >= 3:
                continue
            else:
                value = _filled(f.message_type, depth + 1)
            if f.is_repeated:
                getattr(message, f.name).add().CopyFrom(value)
            else:
                getattr(message, f.name).CopyFrom(value)
            continue
        if f.enum_type is not None:
            value = f.enum_type.values[-1].number
        elif f.type == F.TYPE_STRING:
            value = "1441.20" if f.name in MONEY else f"{f.name}-1"
        elif f.type == F.TYPE_BOOL:
            value = True
        elif f.type in _INT_RANGES:
            value = 2**40 if f.type in (F.TYPE_INT64, F.TYPE_UINT64) else 7
        else:
            raise AssertionError(f.full_name)
        if f.is_repeated:
            getattr(message, f.name).append(value)
        else:
            setattr(message, f.name, value)
    return message


def _samples(b: Binding) -> list[tuple[Message, Message]]:
    request_type = cls(b.rpc.input_type)
    request = (
        request_type(root="invoice_transactions")
        if b.rpc.name == "QueryRecords"
        else (request_type())
    )
    output = b.rpc.output_type
    return [(request, _filled(output)), (request, cls(output)())]


_SEED_BINDINGS = [b for b in BINDINGS if for_binding(b) is not None]


def test_openapi_marks_exactly_the_seed_paths_with_their_dialect() -> None:
    doc = openapi()
    marked: set[str] = set()
    for path, item in doc["paths"].items():
        expected = dialect_for(DIALECTS, path)
        for verb, op in item.items():
            if not isinstance(op, dict) or "operationId" not in op:
                continue
            assert op.get("x-dialect") == (expected.name if expected else None), (path, verb)
            if expected is not None:
                marked.add(expected.name)
    assert marked == {d.name for _, d in DIALECTS}


@pytest.mark.parametrize(
    "b", _SEED_BINDINGS, ids=[f"{b.method} {b.template}" for b in _SEED_BINDINGS]
)
def test_openapi_success_schemas_describe_what_the_dialect_writes(b: Binding) -> None:
    doc = openapi()
    dialect = for_binding(b)
    assert dialect is not None
    path, op = _operation(doc, b)
    assert op["x-dialect"] == dialect.name
    status = str(success_status(b))
    content = op["responses"][status].get("content")
    if status == "204":
        assert content is None
        return
    validator = _success_validator(doc, path, b)
    for request, response in _samples(b):
        written = dialect.write(b, request, response, b.template)
        body = client_view(written.body)
        errors = [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(body)
        ]
        assert errors == [], (b.template, body)


def _success_validator(doc: Json, path: str, b: Binding) -> Draft202012Validator:
    """The operation's documented success schema, its `$ref`s resolved in the document."""
    status = str(success_status(b))
    pointer = "/".join(
        s.replace("~", "~0").replace("/", "~1")
        for s in ("paths", path, b.method.lower(), "responses", status, "content")
    )
    registry = Registry().with_resource(
        "urn:openapi", Resource.from_contents(doc, default_specification=DRAFT202012)
    )
    return Draft202012Validator(
        {"$ref": f"urn:openapi#/{pointer}/application~1json/schema"}, registry=registry
    )


def test_openapi_success_schemas_refuse_the_canonical_spelling() -> None:
    """The schemas judge: a canonical body (full enum names, money as strings, a list
    object where seed 004 has an array, a bare resource where JSON:API has a document)
    fails the seed paths' schemas."""
    doc = openapi()
    invoice = _filled(invoices_pb2.Invoice.DESCRIPTOR)
    connections = connections_pb2.ListConnectionsResponse(data=[connections_pb2.Connection()])
    cases = [
        (binding("GET", "/api/v1/finance/invoices/{id}"), invoice),
        (binding("GET", "/invoice-connections"), connections),
        (binding("GET", "/v1/invoice-transactions/{id}"), _allocation(1)),
        (binding("GET", "/v1/invoice-workspace-connectors/{id}"), _provenance(1)),
    ]
    for b, message in cases:
        path, _ = _operation(doc, b)
        canonical = client_view(jsonout.to_dict(message))
        assert list(_success_validator(doc, path, b).iter_errors(canonical)) != [], b.template


def test_openapi_documents_seed_bodies_in_the_dialect() -> None:
    """A seed path's request body is its dialect's (`type: customer`, money as numbers)."""
    doc = openapi()
    _, op = _operation(doc, binding("POST", "/api/v1/finance/invoices"))
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    ref = schema["$ref"].removeprefix("#/components/schemas/")
    properties = doc["components"]["schemas"][ref]["properties"]
    assert properties["type"]["anyOf"][0]["enum"] == ["customer", "supplier"]
    assert properties["total"]["anyOf"][0]["type"] == ["number", "string"]  # read as both
    assert properties["issue_date"]["anyOf"][0] == {"type": "string", "format": "date"}


@pytest.mark.parametrize(
    ("stored", "written"),
    [
        ("1", "1"),
        ("-1.50", "-1.50"),
        ("-0.00", "-0.00"),
        ("0.000001", "0.000001"),
        ("", "null"),
        ("1.", '"1."'),
        (".5", '".5"'),
        ("1e5", '"1e5"'),
        ("--1", '"--1"'),
        ("1.2.3", '"1.2.3"'),
        ("-", '"-"'),
        ("\u0661\u0662", '"\u0661\u0662"'),  # Arabic-Indic digits: isdigit(), not JSON
        ("12345678901234567890.123456", "12345678901234567890.123456"),
    ],
)
def test_only_plain_ascii_decimals_are_written_as_json_numbers(stored: str, written: str) -> None:
    """The writer's fast check (str methods, no regex, no Decimal) marks exactly the texts
    that are valid JSON numbers; anything else stays a string, so the JSON stays valid."""
    message = invoices_pb2.Invoice(total=stored)
    text = jsontext.dumps(SEED_001.style.write_message(message)).decode()
    assert f'"total":{written},' in text, text
    assert json.loads(text)["total"] == json.loads(written)
