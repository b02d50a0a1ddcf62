"""Golden tests for service.gateway.routes: the google.api.http path templates of the real
descriptors, and synthetic ones for the corners (escaping, verbs, precedence, 404/405).
Pure: no server, no database."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from invoicing.v1 import (
    allocations_pb2,
    connections_pb2,
    invoices_pb2,
    provenance_pb2,
    records_pb2,
)

from service.gateway.bindings import Binding, bindings_from_services
from service.gateway.routes import (
    MethodNotAllowed,
    RouteNotFound,
    Router,
    Segment,
    Template,
    TemplateError,
    Variable,
    parse_template,
)

MODULES = (invoices_pb2, allocations_pb2, connections_pb2, provenance_pb2, records_pb2)
BINDINGS = bindings_from_services(
    service for module in MODULES for service in module.DESCRIPTOR.services_by_name.values()
)
ROUTER = Router(BINDINGS)
RPC = invoices_pb2.DESCRIPTOR.services_by_name["InvoiceService"].methods_by_name["GetInvoice"]
PKG = "/invoicing.v1."


def synthetic(*routes: tuple[str, str]) -> Router:
    return Router(Binding(method, template, "", "", RPC) for method, template in routes)


def resolve(method: str, path: str, router: Router = ROUTER) -> tuple[str, dict[str, str]]:
    """(full gRPC method, variables) of a real route."""
    match = router.match(method, path)
    return match.binding.full_method, match.variables


def resolve_template(router: Router, method: str, path: str) -> tuple[str, dict[str, str]]:
    """(template, variables) of a synthetic route."""
    match = router.match(method, path)
    return match.binding.template, match.variables


def allowed(method: str, path: str, router: Router = ROUTER) -> tuple[str, ...]:
    with pytest.raises(MethodNotAllowed) as caught:
        router.match(method, path)
    return caught.value.allowed


# ---- every real binding, through a path built from its own template ---------------------


def sample_path(template: Template, value: str) -> tuple[str, dict[str, str]]:
    """A path for `template` with `value` in each single-segment variable."""
    parts: list[str] = []
    expected: dict[str, str] = {}
    for segment in template.segments:
        if isinstance(segment, Variable) and segment.single_segment:
            parts.append(quote(value, safe=""))
            expected[segment.field_path] = value
        elif isinstance(segment, Variable):
            pieces = [_filler(sub) for sub in segment.segments]
            parts.extend(pieces)
            expected[segment.field_path] = "/".join(pieces)
        else:
            parts.append(_filler(segment))
    verb = f":{template.verb}" if template.verb else ""
    return "/" + "/".join(parts) + verb, expected


def _filler(segment: Segment) -> str:
    return {"*": "x", "**": "y/z"}.get(segment.kind, segment.text)


@pytest.mark.parametrize("value", ["inv_0123", "64b2e4d19ab7e72a4fb4ac20", "inv 1/é:x%", "a:issue"])
@pytest.mark.parametrize("binding", BINDINGS, ids=lambda b: f"{b.method} {b.template}")
def test_every_real_binding_resolves_from_its_own_template(binding: Binding, value: str) -> None:
    path, expected = sample_path(parse_template(binding.template), value)
    match = ROUTER.match(binding.method, path)
    assert match.binding is binding
    assert match.variables == expected


def test_real_bindings_all_parse_and_are_many() -> None:
    assert len(BINDINGS) >= 45
    assert all(parse_template(b.template).segments for b in BINDINGS)


# ---- the seed paths, verbatim ------------------------------------------------------------

CONNECTION = "/invoice-connections/64b2e4d19ab7e72a4fb4ac20"
CONNECTION_ID = {"id": "64b2e4d19ab7e72a4fb4ac20"}


@pytest.mark.parametrize(
    ("method", "path", "rpc", "variables"),
    [
        ("GET", "/api/v1/finance/invoices", "InvoiceService/ListInvoices", {}),
        ("POST", "/api/v1/finance/invoices", "InvoiceService/CreateInvoice", {}),
        ("GET", "/invoice-connections", "ConnectionService/ListConnections", {}),
        ("POST", "/invoice-connections", "ConnectionService/CreateConnection", {}),
        ("GET", CONNECTION, "ConnectionService/GetConnection", CONNECTION_ID),
        ("PATCH", CONNECTION, "ConnectionService/UpdateConnection", CONNECTION_ID),
        ("DELETE", CONNECTION, "ConnectionService/DeleteConnection", CONNECTION_ID),
        ("GET", "/v1" + CONNECTION, "ConnectionService/GetConnection", CONNECTION_ID),
        ("GET", "/v1/invoice-transactions", "AllocationService/ListAllocations", {}),
        ("POST", "/v1/invoice-transactions", "AllocationService/CreateAllocation", {}),
        (
            "GET",
            "/v1/invoice-workspace-connectors/{id}",
            "ProvenanceService/GetInvoiceProvenance",
            {"id": "{id}"},
        ),
        (
            "DELETE",
            "/v1/invoice-workspace-connectors/prov_01",
            "ProvenanceService/DeleteInvoiceProvenance",
            {"id": "prov_01"},
        ),
        ("POST", "/v1/records/query", "RecordsService/QueryRecords", {}),
        ("GET", "/v1/workspace-settings", "AllocationService/GetWorkspaceSettings", {}),
    ],
)
def test_seed_paths(method: str, path: str, rpc: str, variables: dict[str, str]) -> None:
    assert resolve(method, path) == (PKG + rpc, variables)


# ---- custom verbs and ":" in ids ---------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "rpc", "variables"),
    [
        ("POST", "/v1/invoices/inv_X:issue", "IssueInvoice", {"id": "inv_X"}),
        ("POST", "/v1/invoices/inv_X:void", "VoidInvoice", {"id": "inv_X"}),
        ("POST", "/v1/invoices/inv_X:pay", "PayInvoice", {"id": "inv_X"}),
        ("POST", "/v1/invoices/inv_X:undelete", "UndeleteInvoice", {"id": "inv_X"}),
        ("POST", "/api/v1/finance/invoices/inv_X:issue", "IssueInvoice", {"id": "inv_X"}),
        ("POST", "/api/v1/finance/invoices/inv_X:pay", "PayInvoice", {"id": "inv_X"}),
        ("GET", "/v1/invoices/inv_X", "GetInvoice", {"id": "inv_X"}),
        ("DELETE", "/v1/invoices/inv_X", "DeleteInvoice", {"id": "inv_X"}),
        # the verb is after the LAST ":"; what precedes it stays in the id
        ("POST", "/v1/invoices/a:b:issue", "IssueInvoice", {"id": "a:b"}),
        # no template declares ":b" or ":", so ":" is part of the id
        ("GET", "/v1/invoices/a:b", "GetInvoice", {"id": "a:b"}),
        ("GET", "/v1/invoices/a:b:c", "GetInvoice", {"id": "a:b:c"}),
        ("GET", "/v1/invoices/inv_X:", "GetInvoice", {"id": "inv_X:"}),
        ("GET", "/v1/invoices/:issue", "GetInvoice", {"id": ":issue"}),  # empty stem
        # an encoded ":" is data, never a verb separator
        ("GET", "/v1/invoices/a%3Aissue", "GetInvoice", {"id": "a:issue"}),
        ("GET", "/v1/invoices/a%3aissue", "GetInvoice", {"id": "a:issue"}),
        ("POST", "/v1/invoices/a%3Avoid:issue", "IssueInvoice", {"id": "a:void"}),
        # the verb text is decoded like a literal
        ("POST", "/v1/invoices/inv_X:%69ssue", "IssueInvoice", {"id": "inv_X"}),
    ],
)
def test_verbs_and_colons(method: str, path: str, rpc: str, variables: dict[str, str]) -> None:
    assert resolve(method, path) == (PKG + "InvoiceService/" + rpc, variables)


def test_a_declared_verb_is_a_verb_for_every_method() -> None:
    assert allowed("GET", "/v1/invoices/inv_X:issue") == ("POST",)
    assert allowed("POST", "/v1/invoices/inv_X") == ("DELETE", "GET", "PATCH")


def test_a_verb_counts_only_where_a_template_of_that_shape_declares_it() -> None:
    expected = (PKG + "AllocationService/GetTransaction", {"id": "tx_1:issue"})
    assert resolve("GET", "/v1/transactions/tx_1:issue") == expected


def test_an_unknown_verb_on_a_verb_only_route_is_not_found() -> None:
    router = synthetic(("POST", "/v1/things:batchGet"))
    assert resolve_template(router, "POST", "/v1/things:batchGet") == ("/v1/things:batchGet", {})
    for path in ("/v1/things", "/v1/things:batchget", "/v1/things:other", "/v1/things%3AbatchGet"):
        with pytest.raises(RouteNotFound):
            router.match("POST", path)


# ---- percent-decoding --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("/v1/invoices/a%2Fb", "a/b"),
        ("/v1/invoices/a%2fb", "a/b"),
        ("/v1/invoices/%2F", "/"),
        ("/v1/invoices/inv%20X", "inv X"),
        ("/v1/invoices/caf%C3%A9", "café"),
        ("/v1/invoices/%E2%82%AC%F0%9F%A7%BE", "€🧾"),
        ("/v1/invoices/100%25", "100%"),
        ("/v1/invoices/a+b", "a+b"),  # "+" is not a space in a path
        ("/v1/invoices/bad%zz", "bad%zz"),  # not an escape: kept
    ],
)
def test_single_segment_variable_decodes_everything(path: str, value: str) -> None:
    assert resolve("GET", path) == (PKG + "InvoiceService/GetInvoice", {"id": value})


def test_literals_compare_decoded() -> None:
    assert resolve("GET", "/v1/%69nvoices") == (PKG + "InvoiceService/ListInvoices", {})


def test_undecodable_utf8_matches_nothing() -> None:
    for path in ("/v1/invoices/%FF", "/v1/invoices/%C3", "/v1/invoices/%C3%2F"):
        with pytest.raises(RouteNotFound):
            ROUTER.match("GET", path)


FILES = synthetic(("GET", "/v1/files/{path=**}"), ("GET", "/v1/files/{name}"))
DEEP = synthetic(("GET", "/v1/files/{path=**}"))


@pytest.mark.parametrize(
    ("path", "variables"),
    [
        ("/v1/files/a%2Fb/c%20d", {"path": "a%2Fb/c d"}),
        ("/v1/files/a%2fb", {"path": "a%2fb"}),  # kept as sent, case included
        ("/v1/files/dir/caf%C3%A9", {"path": "dir/café"}),
        ("/v1/files/a/b/c", {"path": "a/b/c"}),
        ("/v1/files", {"path": ""}),  # "**" matches zero segments
    ],
)
def test_multi_segment_variable_keeps_encoded_slashes(path: str, variables: dict[str, str]) -> None:
    assert resolve_template(DEEP, "GET", path) == ("/v1/files/{path=**}", variables)


def test_double_star_never_takes_an_empty_segment() -> None:
    for path in ("/v1/files/", "/v1/files/a//b", "/v1/files/a/", "/v1/files//"):
        with pytest.raises(RouteNotFound):
            FILES.match("GET", path)


# ---- precedence --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "order", [("/v1/things/{id}", "/v1/things/special"), ("/v1/things/special", "/v1/things/{id}")]
)
def test_literal_beats_variable_in_any_order(order: tuple[str, str]) -> None:
    router = synthetic(*(("GET", template) for template in order))
    assert resolve_template(router, "GET", "/v1/things/special") == ("/v1/things/special", {})
    expected = ("/v1/things/{id}", {"id": "other"})
    assert resolve_template(router, "GET", "/v1/things/other") == expected


def test_star_beats_double_star() -> None:
    assert resolve_template(FILES, "GET", "/v1/files/a") == ("/v1/files/{name}", {"name": "a"})
    router = synthetic(("GET", "/v1/{rest=**}"), ("GET", "/v1/{a}/{b}"))
    assert resolve_template(router, "GET", "/v1/x/y") == ("/v1/{a}/{b}", {"a": "x", "b": "y"})
    expected = ("/v1/{rest=**}", {"rest": "x/y/z"})
    assert resolve_template(router, "GET", "/v1/x/y/z") == expected


def test_more_literals_beat_fewer_wildcards() -> None:
    router = synthetic(("GET", "/v1/{a}/{b}"), ("GET", "/v1/x/{rest=**}"))
    assert resolve_template(router, "GET", "/v1/x/y") == ("/v1/x/{rest=**}", {"rest": "y"})
    assert resolve_template(router, "GET", "/v1/w/y") == ("/v1/{a}/{b}", {"a": "w", "b": "y"})


def test_declaration_order_breaks_ties() -> None:
    first = synthetic(("GET", "/v1/{a}/x"), ("GET", "/v1/x/{b}"))
    second = synthetic(("GET", "/v1/x/{b}"), ("GET", "/v1/{a}/x"))
    assert resolve_template(first, "GET", "/v1/x/x") == ("/v1/{a}/x", {"a": "x"})
    assert resolve_template(second, "GET", "/v1/x/x") == ("/v1/x/{b}", {"b": "x"})
    duplicate = Router(
        [Binding("GET", "/v1/{id}", "", "", RPC), Binding("GET", "/v1/{name}", "x", "", RPC)]
    )
    assert duplicate.match("GET", "/v1/a").binding.body == ""


def test_a_recognised_verb_beats_more_literals() -> None:
    router = synthetic(("GET", "/v1/x/{id}"), ("GET", "/v1/{a}/{b}:do"))
    expected = ("/v1/{a}/{b}:do", {"a": "x", "b": "y"})
    assert resolve_template(router, "GET", "/v1/x/y:do") == expected
    assert resolve_template(router, "GET", "/v1/x/y") == ("/v1/x/{id}", {"id": "y"})


def test_only_the_request_method_competes() -> None:
    router = synthetic(("GET", "/v1/things/special"), ("DELETE", "/v1/things/{id}"))
    expected = ("/v1/things/{id}", {"id": "special"})
    assert resolve_template(router, "DELETE", "/v1/things/special") == expected
    assert allowed("PUT", "/v1/things/special", router) == ("DELETE", "GET")
    assert allowed("GET", "/v1/things/other", router) == ("DELETE",)


# ---- 405 and 404 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "methods"),
    [
        ("PUT", "/v1/invoices/inv_X", ("DELETE", "GET", "PATCH")),
        ("POST", "/api/v1/finance/invoices/inv_X", ("DELETE", "GET", "PATCH")),
        ("HEAD", "/v1/invoices", ("GET", "POST")),  # HEAD is not special
        ("OPTIONS", "/invoice-connections", ("GET", "POST")),
        ("get", "/v1/invoices", ("GET", "POST")),  # methods are case-sensitive
        ("GET", "/v1/records/query", ("POST",)),
        ("DELETE", "/v1/workspace-settings", ("GET", "PATCH")),
        ("PUT", "/v1/invoices/inv_X:void", ("POST",)),
    ],
)
def test_method_not_allowed_lists_sorted_methods(
    method: str, path: str, methods: tuple[str, ...]
) -> None:
    assert allowed(method, path) == methods


@pytest.mark.parametrize(
    "path",
    [
        "/v1/invoices/",  # trailing slash
        "/v1/invoices/inv_X/",
        "/v1//invoices",  # empty segments
        "//v1/invoices",
        "/v1/invoices//",
        "/v1/invoices//:issue",
        "/v1/unknown",
        "/V1/invoices",  # literals are case-sensitive
        "/v1/invoices/inv_X/extra",
        "/v1/invoices/inv_X:issue/x",
        "/v1",
        "/",
        "",
        "v1/invoices",
        "*",
    ],
)
def test_not_found(path: str) -> None:
    for method in ("GET", "POST"):
        with pytest.raises(RouteNotFound):
            ROUTER.match(method, path)


# ---- nested field paths and sub-templates ------------------------------------------------


def test_nested_field_path() -> None:
    rpc = PKG + "InvoiceService/UpdateInvoice"
    assert resolve("PATCH", "/v1/invoices/inv_X") == (rpc, {"invoice.id": "inv_X"})
    assert resolve("PATCH", "/api/v1/finance/invoices/a%2Fb") == (rpc, {"invoice.id": "a/b"})


BOOKS = "/v1/{name=shelves/*/books/*}"


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/shelves/s1/books/b1", "shelves/s1/books/b1"),
        ("/v1/shelves/s1/books/b%2F1", "shelves/s1/books/b%2F1"),
        ("/v1/shelves/s%201/books/caf%C3%A9", "shelves/s 1/books/café"),
    ],
)
def test_sub_template_variable(path: str, name: str) -> None:
    assert resolve_template(synthetic(("GET", BOOKS)), "GET", path) == (BOOKS, {"name": name})


@pytest.mark.parametrize(
    "path",
    [
        "/v1/shelves/s1/books",
        "/v1/shelves/s1/books/b1/x",
        "/v1/shelves/s1/cars/c1",
        "/v1/shelves//books/b1",
        "/v1/shelves/s1/books/",
    ],
)
def test_sub_template_variable_not_found(path: str) -> None:
    with pytest.raises(RouteNotFound):
        synthetic(("GET", BOOKS)).match("GET", path)


def test_variable_then_variable() -> None:
    template = "/v1/{shelf=shelves/*}/books/{book}"
    expected = (template, {"shelf": "shelves/s1", "book": "b/1"})
    assert resolve_template(synthetic(("GET", template)), "GET", "/v1/shelves/s1/books/b%2F1") == (
        expected
    )


def test_double_star_sub_template_with_verb() -> None:
    template = "/v1/{name=shelves/*/books/**}:cancel"
    router = synthetic(("POST", template))
    expected = (template, {"name": "shelves/s1/books/a/b%2Fc"})
    assert resolve_template(router, "POST", "/v1/shelves/s1/books/a/b%2Fc:cancel") == expected
    expected = (template, {"name": "shelves/s1/books"})
    assert resolve_template(router, "POST", "/v1/shelves/s1/books:cancel") == expected
    with pytest.raises(RouteNotFound):
        router.match("POST", "/v1/shelves/s1/books/a")


def test_plain_wildcards_bind_nothing() -> None:
    router = synthetic(("GET", "/v1/*/items/{id}"), ("GET", "/v2/**"))
    assert resolve_template(router, "GET", "/v1/x/items/7") == ("/v1/*/items/{id}", {"id": "7"})
    assert resolve_template(router, "GET", "/v2/a/b") == ("/v2/**", {})
    assert resolve_template(router, "GET", "/v2") == ("/v2/**", {})


# ---- parse_template ----------------------------------------------------------------------

STAR = Segment("*", "*")


def test_parse_template_structure() -> None:
    name = Variable(
        "name",
        (Segment("literal", "shelves"), STAR, Segment("literal", "books"), Segment("**", "**")),
    )
    assert parse_template("/v1/{name=shelves/*/books/**}:cancel") == Template(
        (Segment("literal", "v1"), name), "cancel", (name,)
    )
    invoice_id = Variable("invoice.id")
    assert parse_template("/v1/invoices/{invoice.id}") == Template(
        (Segment("literal", "v1"), Segment("literal", "invoices"), invoice_id), None, (invoice_id,)
    )
    assert invoice_id.segments == (STAR,)
    assert invoice_id.single_segment
    assert not name.single_segment
    assert not Variable("p", (Segment("**", "**"),)).single_segment
    assert parse_template("/v1/things:batchGet").verb == "batchGet"
    assert parse_template("/v1/{id=*}:issue").variables == (Variable("id"),)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("v1/invoices", "must start with '/'"),
        ("", "must start with '/'"),
        ("/", "empty segment"),
        ("/v1//x", "empty segment"),
        ("/v1/x/", "empty segment"),
        ("/v1/**/x", "'**' must be the last segment"),
        ("/v1/{name=**}/x", "'**' must be the last segment"),
        ("/v1/**/**", "'**' must be the last segment"),
        ("/v1/{a={b}}", "nested braces"),
        ("/v1/{a=x/{b}}", "nested braces"),
        ("/v1/{}", "empty field path"),
        ("/v1/{=*}", "empty field path"),
        ("/v1/{a.}", "invalid field path 'a.'"),
        ("/v1/{.a}", "invalid field path"),
        ("/v1/{1a}", "invalid field path"),
        ("/v1/{a b}", "invalid field path"),
        ("/v1/{a:b}", "invalid field path"),
        ("/v1/{a", "'{' without a matching '}'"),
        ("/v1/a}", "'}' without a matching '{'"),
        ("/v1/a{b}", "a variable must be a whole segment"),
        ("/v1/{a}b", "a variable must be a whole segment"),
        ("/v1/{a}{b}", "a variable must be a whole segment"),
        ("/v1/{a=}", "empty template after '='"),
        ("/v1/{a=x//y}", "empty segment"),
        ("/v1/{id}/{id}", "'id' is bound twice"),
        ("/v1/x:", "verb"),
        ("/v1/{id}:", "verb"),
        ("/v1/x:a/b", "verb"),
        ("/v1/x:a:b", "verb"),
        ("/v1/x:{id}", "verb"),
        ("/v1/a*b", "literal segment 'a*b'"),
        ("/v1/a%20b", "literal segment"),
        ("/v1/a?b", "literal segment"),
        ("/v1/a b", "literal segment"),
    ],
)
def test_parse_template_errors(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(message)) as caught:
        parse_template(template)
    assert repr(template) in str(caught.value)


def test_router_names_the_rpc_of_a_bad_template() -> None:
    with pytest.raises(TemplateError, match=r"invoicing\.v1\.InvoiceService\.GetInvoice \(GET\)"):
        synthetic(("GET", "/v1/{id"))


# ---- properties --------------------------------------------------------------------------

SOUP = st.sampled_from(
    [
        *("v1", "api", "finance", "invoices", "invoice-connections", "records", "query"),
        *("files", "shelves", "books", "inv_X", "a:b", ":issue", "x:pay", "x:%69ssue", ":"),
        *("", "%2F", "%2f", "%", "%FF", "%C3%A9", "%C3", "%3A", "é", "*", "**", "{id}", ".."),
    ]
)
PATHS = st.one_of(
    st.text(),
    st.lists(SOUP, max_size=8).map(lambda parts: "/" + "/".join(parts)),
    st.lists(st.text(), max_size=6).map(lambda parts: "/" + "/".join(parts)),
)
METHODS = st.one_of(
    st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]), st.text()
)
EVERYTHING = Router(
    [
        *BINDINGS,
        *(
            Binding(method, template, "", "", RPC)
            for method, template in [
                ("GET", "/v1/files/{path=**}"),
                ("POST", "/v1/{name=shelves/*/books/**}:cancel"),
                ("GET", "/v1/{name=shelves/*/books/*}"),
                ("PUT", "/**:pay"),
                ("GET", "/{a}/{b}/{c}/{d}"),
            ]
        ),
    ]
)


@given(METHODS, PATHS)
def test_match_only_raises_routing_errors(method: str, path: str) -> None:
    try:
        match = EVERYTHING.match(method, path)
    except RouteNotFound:
        return
    except MethodNotAllowed as error:
        assert error.allowed
        assert error.allowed == tuple(sorted(set(error.allowed)))
        assert method not in error.allowed
        return
    assert match.binding.method == method
    assert all(isinstance(value, str) for value in match.variables.values())


SEGMENT_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="/"), min_size=1)


@given(SEGMENT_TEXT)
def test_single_segment_values_round_trip(value: str) -> None:
    encoded = quote(value, safe="")
    assert resolve("GET", f"/v1/invoices/{encoded}") == (
        PKG + "InvoiceService/GetInvoice",
        {"id": value},
    )
    assert resolve("POST", f"/v1/invoices/{encoded}:issue") == (
        PKG + "InvoiceService/IssueInvoice",
        {"id": value},
    )


@given(st.lists(st.text(st.characters(codec="utf-8"), min_size=1), max_size=5))
def test_multi_segment_values_keep_encoded_slashes(segments: list[str]) -> None:
    path = "/v1/files" + "".join("/" + quote(segment, safe="") for segment in segments)
    expected = "/".join(segment.replace("/", "%2F") for segment in segments)
    assert DEEP.match("GET", path).variables == {"path": expected}
