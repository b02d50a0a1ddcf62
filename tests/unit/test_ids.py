"""Unit tests for service.kit.ids: UUIDv7, prefixed Crockford base32 ids, external uuids."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from service.kit import ids
from service.kit.errors import DomainError
from service.kit.ids import (
    PREFIXES,
    decode_id,
    encode_id,
    new_id,
    new_uuid7,
    parse_uuid,
)

FIELD = "allocations[0].invoice_id"
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MAX_128 = (1 << 128) - 1
VALID_BODY = "01JD6N8Q6Z7T3M3Y5C4V8R2K1P"
u128 = st.integers(0, MAX_128)


def _reference_encode(number: int) -> str:
    """Crockford base32 the slow way: 130 bits as text, cut into 26 groups of 5."""
    bits = format(number, "0130b")
    return "".join(ALPHABET[int(bits[i : i + 5], 2)] for i in range(0, 130, 5))


def _timestamp_ms(value: uuid.UUID) -> int:
    return value.int >> 80


def _assert_invalid_id(text: str, prefix: str = "inv") -> DomainError:
    with pytest.raises(DomainError) as error:
        decode_id(text, prefix, FIELD)
    assert error.value.reason == "INVALID_ID"
    assert error.value.violations[0].field == FIELD
    assert error.value.metadata["expectedPrefix"] == prefix
    assert error.value.metadata["field"] == FIELD
    return error.value


# --- prefixes and encoding ------------------------------------------------------------------


def test_prefixes() -> None:
    assert dict(PREFIXES) == {
        "invoice": "inv",
        "allocation": "alc",
        "transaction": "txn",
        "exchange_rate": "fxr",
        "connection": "con",
        "provenance": "prv",
    }


@pytest.mark.parametrize(
    ("number", "body"),
    [
        (0, "0" * 26),
        (1, "0" * 25 + "1"),
        (31, "0" * 25 + "Z"),
        (32, "0" * 24 + "10"),
        (MAX_128, "7" + "Z" * 25),
    ],
)
def test_encode_id_examples(number: int, body: str) -> None:
    assert encode_id("inv", uuid.UUID(int=number)) == f"inv_{body}"
    assert decode_id(f"inv_{body}", "inv", FIELD) == uuid.UUID(int=number)


def test_encode_id_rejects_bad_prefixes() -> None:
    for prefix in ["", "INV", "in v", "inv_", "1nv"]:
        with pytest.raises(ValueError, match="prefix"):
            encode_id(prefix, uuid.UUID(int=0))


@given(u128, st.sampled_from(sorted(PREFIXES.values())))
@example(0, "inv")
@example(MAX_128, "txn")
def test_encode_decode_round_trip(number: int, prefix: str) -> None:
    value = uuid.UUID(int=number)
    text = encode_id(prefix, value)
    assert re.fullmatch(rf"{prefix}_[0-7][{ALPHABET}]{{25}}", text)
    assert text == f"{prefix}_{_reference_encode(number)}"
    assert decode_id(text, prefix, FIELD) == value
    assert decode_id(text.lower(), prefix, FIELD) == value


@given(u128, u128)
def test_encoding_preserves_order(a: int, b: int) -> None:
    left, right = encode_id("inv", uuid.UUID(int=a)), encode_id("inv", uuid.UUID(int=b))
    assert (left < right) == (a < b)
    assert (left == right) == (a == b)


# --- uuid7 ----------------------------------------------------------------------------------


def test_new_uuid7_layout() -> None:
    before = time.time_ns() // 1_000_000
    value = new_uuid7()
    after = time.time_ns() // 1_000_000
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert before <= _timestamp_ms(value) <= after + 1


@given(st.integers(0, (1 << 48) - 1))
@example(0)
@example((1 << 48) - 1)
def test_new_uuid7_with_explicit_time(now_ms: int) -> None:
    value = new_uuid7(now_ms)
    assert _timestamp_ms(value) == now_ms
    assert value.version == 7
    assert value.variant == uuid.RFC_4122


@pytest.mark.parametrize("now_ms", [-1, 1 << 48])
def test_new_uuid7_rejects_timestamps_outside_48_bits(now_ms: int) -> None:
    with pytest.raises(ValueError, match="48 bits"):
        new_uuid7(now_ms)


def test_new_uuid7_random_bits_differ() -> None:
    values = {new_uuid7(1_700_000_000_000) for _ in range(1000)}
    assert len(values) == 1000


def test_uuid7_sequence_sorts_in_creation_order() -> None:
    values = [new_uuid7() for _ in range(5000)]
    assert values == sorted(values)
    assert len(set(values)) == len(values)
    encoded = [encode_id("inv", value) for value in values]
    assert encoded == sorted(encoded)
    assert all(value.version == 7 for value in values)


def test_new_id_sequence_sorts_in_creation_order() -> None:
    pairs = [new_id("alc") for _ in range(2000)]
    assert [text for _, text in pairs] == sorted(text for _, text in pairs)
    for value, text in pairs:
        assert decode_id(text, "alc", FIELD) == value
        assert text.startswith("alc_")
        assert value.version == 7


def test_uuid7_stays_ordered_when_the_clock_goes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([1_700_000_000_500, 1_700_000_000_000, 1_699_999_999_000, 1_700_000_000_500])
    monkeypatch.setattr(ids, "_STATE", ids._Monotonic())
    monkeypatch.setattr(ids, "_now_ms", lambda: next(clock))
    values = [new_uuid7() for _ in range(4)]
    assert values == sorted(values)
    assert len(set(values)) == 4
    assert {_timestamp_ms(value) for value in values} == {1_700_000_000_500}


def test_uuid7_moves_to_the_next_ms_when_random_bits_run_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ids, "_STATE", ids._Monotonic())
    monkeypatch.setattr(ids, "_now_ms", lambda: 1_700_000_000_000)
    monkeypatch.setattr(ids, "_random_field", lambda: (1 << 74) - 1)
    values = [new_uuid7() for _ in range(3)]
    assert values == sorted(values)
    assert [_timestamp_ms(value) for value in values] == [
        1_700_000_000_000,
        1_700_000_000_001,
        1_700_000_000_002,
    ]
    assert all(value.version == 7 and value.variant == uuid.RFC_4122 for value in values)


@given(st.integers(0, (1 << 48) - 2), st.integers(1, 10**6))
def test_uuid7_orders_by_time_across_milliseconds(earlier: int, gap: int) -> None:
    later = min(earlier + gap, (1 << 48) - 1)
    first, second = new_uuid7(earlier), new_uuid7(later)
    assert first < second
    assert encode_id("txn", first) < encode_id("txn", second)


# --- malformed ids --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param(VALID_BODY, id="missing-prefix"),
        pytest.param(f"_{VALID_BODY}", id="empty-prefix"),
        pytest.param(f"alc_{VALID_BODY}", id="wrong-prefix"),
        pytest.param(f"inv{VALID_BODY}", id="no-separator"),
        pytest.param(f"inv-{VALID_BODY}", id="dash-separator"),
        pytest.param(f"INV_{VALID_BODY}", id="uppercase-prefix"),
        pytest.param(f" inv_{VALID_BODY}", id="leading-space"),
        pytest.param(f"inv_{VALID_BODY} ", id="trailing-space"),
        pytest.param(f"inv_{VALID_BODY}\n", id="trailing-newline"),
        pytest.param("inv_", id="prefix-only"),
        pytest.param(f"inv_{VALID_BODY[:-1]}", id="too-short"),
        pytest.param(f"inv_{VALID_BODY}0", id="too-long"),
        pytest.param(f"inv_{VALID_BODY * 1000}", id="very-long"),
        pytest.param("inv_0123456789ABCDEFGHJKMNPQRI", id="letter-I"),
        pytest.param("inv_0123456789ABCDEFGHJKMNPQRL", id="letter-L"),
        pytest.param("inv_0123456789ABCDEFGHJKMNPQRO", id="letter-O"),
        pytest.param("inv_0123456789ABCDEFGHJKMNPQRU", id="letter-U"),
        pytest.param("inv_0123456789abcdefghjkmnpqri", id="lower-i"),
        pytest.param("inv_0123456789abcdefghjkmnpqru", id="lower-u"),
        pytest.param("inv_0123456789ABCDEFGHJKMNPQR-", id="punctuation"),
        pytest.param("inv_0123456789ABCDEFGHJKMNPQR\u017f", id="long-s-uppercases-to-S"),
        pytest.param("inv_0123456789ABCDEFGHJKMNPQR\u0661", id="arabic-digit"),
        pytest.param("8" + "0" * 25, id="overflow-without-prefix"),
        pytest.param("inv_8" + "0" * 25, id="overflow-8"),
        pytest.param("inv_Z" + "Z" * 25, id="overflow-Z"),
        pytest.param("inv_z" + "0" * 25, id="overflow-lowercase"),
        pytest.param(f"inv_inv_{VALID_BODY}", id="double-prefix"),
        pytest.param("00000000-0000-7000-8000-000000000000", id="raw-uuid"),
    ],
)
def test_malformed_ids_are_invalid(text: str) -> None:
    _assert_invalid_id(text)


def test_invalid_id_message_names_the_field_not_the_input() -> None:
    error = _assert_invalid_id(f"alc_{VALID_BODY}")
    assert error.message.startswith(f"{FIELD}: ")
    assert VALID_BODY not in error.message


def test_decode_id_accepts_any_letter_case_in_the_body() -> None:
    upper = decode_id(f"inv_{VALID_BODY}", "inv", FIELD)
    assert decode_id(f"inv_{VALID_BODY.lower()}", "inv", FIELD) == upper
    assert decode_id(f"inv_{VALID_BODY[:13]}{VALID_BODY[13:].lower()}", "inv", FIELD) == upper


@given(st.text())
@example("inv_" + "0" * 26)
@example("inv_" + "7" + "z" * 25)
def test_decode_id_only_raises_invalid_id(text: str) -> None:
    try:
        value = decode_id(text, "inv", FIELD)
    except DomainError as error:
        assert error.reason == "INVALID_ID"
        assert error.violations[0].field == FIELD
    else:
        assert encode_id("inv", value) == text.upper().replace("INV_", "inv_", 1)


@given(st.text(alphabet=ALPHABET + ALPHABET.lower() + "ILOUilou!_ ", min_size=0, max_size=30))
def test_decode_id_body_alphabet(body: str) -> None:
    text = f"inv_{body}"
    valid = (
        len(body) == 26 and all(char.upper() in ALPHABET for char in body) and body[0] in "01234567"
    )
    if valid:
        assert encode_id("inv", decode_id(text, "inv", FIELD)) == f"inv_{body.upper()}"
    else:
        _assert_invalid_id(text)


# --- external uuids -------------------------------------------------------------------------


@given(st.uuids())
def test_parse_uuid_round_trip(value: uuid.UUID) -> None:
    assert parse_uuid(str(value), FIELD) == value
    assert parse_uuid(str(value).upper(), FIELD) == value


def test_parse_uuid_empty() -> None:
    assert parse_uuid("", FIELD) is None
    with pytest.raises(DomainError) as error:
        parse_uuid("", FIELD, empty_ok=False)
    assert error.value.reason == "REQUIRED"
    assert error.value.violations[0].field == FIELD


@pytest.mark.parametrize(
    "text",
    [
        "123e4567e89b12d3a456426614174000",
        "{123e4567-e89b-12d3-a456-426614174000}",
        "urn:uuid:123e4567-e89b-12d3-a456-426614174000",
        "123e4567-e89b-12d3-a456-42661417400",
        "123e4567-e89b-12d3-a456-4266141740000",
        "123e4567-e89b-12d3-a456-42661417400g",
        "123e4567-e89b12d3-a456-426614174000-",
        " 123e4567-e89b-12d3-a456-426614174000",
        "123e4567-e89b-12d3-a456-426614174000\n",
        "123e4567-e89b-12d3-a456-42661417400\u0661",
        f"inv_{VALID_BODY}",
        " ",
    ],
)
def test_parse_uuid_rejects_non_canonical(text: str) -> None:
    with pytest.raises(DomainError) as error:
        parse_uuid(text, FIELD)
    assert error.value.reason == "INVALID_UUID"
    assert error.value.violations[0].field == FIELD


@given(st.text())
def test_parse_uuid_only_raises_domain_errors(text: str) -> None:
    try:
        value = parse_uuid(text, FIELD)
    except DomainError as error:
        assert error.reason == "INVALID_UUID"
    else:
        assert value is None if text == "" else str(value) == text.lower()
