"""The fast JSON printer equals json_format's output for every message it meets."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st
from invoicing.v1 import allocations_pb2, connections_pb2, invoices_pb2, records_pb2

from service.gateway import jsonout

pb = invoices_pb2


def _reference(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _full_invoice() -> pb.Invoice:
    invoice = pb.Invoice(
        id="inv_x",
        type=pb.INVOICE_TYPE_SUPPLIER,
        currency="EUR",
        total="1.00",
        tags=["a", "b"],
        order_id=2**62,
        project_sequence_id=3,
        notes="é",
        line_items=[pb.LineItem(quantity="1", unit_price="2.50")],
        tax_breakdown=[pb.TaxBreakdown(tax_rate="0.2")],
    )
    invoice.created_at.FromSeconds(1_795_240_185)
    invoice.created_at.nanos = 123_000_000
    invoice.issue_date.year, invoice.issue_date.month, invoice.issue_date.day = 2026, 11, 21
    return invoice


@pytest.mark.parametrize(
    "message",
    [
        pb.Invoice(),
        _full_invoice(),
        pb.ListInvoicesResponse(data=[_full_invoice(), pb.Invoice()], next_cursor="c", total=0),
        pb.ListInvoicesResponse(),
        pb.UpdateInvoiceRequest(invoice=_full_invoice()),
        records_pb2.QueryRecordsResponse(data=[struct_pb2.Struct()]),
        allocations_pb2.Allocation(),
        connections_pb2.Connection(),
    ],
    ids=lambda m: type(m).__name__,
)
def test_to_dict_equals_json_format(message: Message) -> None:
    assert jsonout.to_dict(message) == _reference(message)


def test_unknown_enum_number_prints_the_number_like_json_format() -> None:
    message = pb.Invoice(status=99)  # type: ignore[arg-type]
    assert jsonout.to_dict(message) == _reference(message)


@settings(max_examples=200, deadline=None)
@given(
    notes=st.text(),
    tags=st.lists(st.text(max_size=5), max_size=4),
    order_id=st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1),
    seconds=st.integers(min_value=0, max_value=253_402_300_799),
    nanos=st.integers(min_value=0, max_value=999_999_999),
    status=st.sampled_from(list(pb.InvoiceStatus.values())),
)
def test_to_dict_equals_json_format_for_generated_invoices(
    notes: str, tags: list[str], order_id: int | None, seconds: int, nanos: int, status: int
) -> None:
    message = pb.Invoice(notes=notes, tags=tags, status=status)  # type: ignore[arg-type]
    if order_id is not None:
        message.order_id = order_id
    message.updated_at.seconds, message.updated_at.nanos = seconds, nanos
    assert jsonout.to_dict(message) == _reference(message)
