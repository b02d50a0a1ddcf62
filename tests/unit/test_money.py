"""Unit tests for service.kit.money: currencies, strict parsing, rounding, formatting."""

from __future__ import annotations

import re
from decimal import Decimal, localcontext

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from service.kit.errors import DomainError
from service.kit.money import (
    CURRENCY_EXPONENTS,
    exponent,
    format_decimal,
    format_money,
    money_multiply,
    parse_currency,
    parse_decimal,
    parse_money,
    quantum,
    round_half_up,
)

FIELD = "invoice.line_items[2].unit_price"
CURRENCY_BY_EXPONENT = {0: "JPY", 1: None, 2: "EUR", 3: "BHD", 4: "CLF"}
EXPONENTS = [0, 2, 3, 4]
LIMIT = 10**15


def _reason(error: pytest.ExceptionInfo[DomainError]) -> str:
    assert error.value.violations[0].field == FIELD
    assert error.value.metadata["field"] == FIELD
    return error.value.reason


def _scaled(number: int, places: int) -> Decimal:
    """number * 10**-places, built exactly from digits."""
    digits = tuple(int(c) for c in str(abs(number)))
    return Decimal((1 if number < 0 else 0, digits, -places))


def _reference_round(number: int, places: int, target: int) -> int:
    """round(number * 10**-places) at `target` places, halves away from zero, in integers."""
    if places <= target:
        return number * int(10 ** (target - places))
    step = int(10 ** (places - target))
    quotient, remainder = divmod(abs(number), step)
    if 2 * remainder >= step:
        quotient += 1
    return -quotient if number < 0 else quotient


# --- currencies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "places"),
    [
        ("EUR USD GBP CHF CAD AUD CNY INR XCG ZWG SLE VED VES", 2),
        ("JPY KRW CLP VND ISK XAF XOF XPF BIF DJF GNF KMF PYG RWF UGX VUV UYI", 0),
        ("BHD IQD JOD KWD LYD OMR TND", 3),
        ("CLF UYW", 4),
    ],
)
def test_currency_exponents(codes: str, places: int) -> None:
    for code in codes.split():
        assert CURRENCY_EXPONENTS[code] == places, code
        assert exponent(code) == places


def test_currency_table_shape() -> None:
    assert len(CURRENCY_EXPONENTS) > 150
    assert all(re.fullmatch(r"[A-Z]{3}", code) for code in CURRENCY_EXPONENTS)
    assert set(CURRENCY_EXPONENTS.values()) == {0, 2, 3, 4}
    assert sum(1 for places in CURRENCY_EXPONENTS.values() if places == 0) == 17
    assert sum(1 for places in CURRENCY_EXPONENTS.values() if places == 3) == 7


EXCLUDED_CODES = "XAU XAG XPT XPD XDR XTS XXX XBA XBB XBC XBD XSU XUA HRK ANG ZWL SLL FRF DEM"


@pytest.mark.parametrize("code", EXCLUDED_CODES.split())
def test_currencies_without_minor_unit_or_withdrawn_are_excluded(code: str) -> None:
    assert code not in CURRENCY_EXPONENTS
    with pytest.raises(DomainError) as error:
        parse_currency(code, FIELD)
    assert _reason(error) == "INVALID_CURRENCY"


@pytest.mark.parametrize(("text", "code"), [("eur", "EUR"), ("EUR", "EUR"), ("jPy", "JPY")])
def test_parse_currency_normalizes_case(text: str, code: str) -> None:
    assert parse_currency(text, FIELD) == code


@pytest.mark.parametrize(
    "text",
    ["", "EU", "EURO", "E1R", "ZZZ", " EUR", "EUR ", "EUR\n", "€", "\uff25\uff35\uff32", "E-R"],
)
def test_parse_currency_rejects(text: str) -> None:
    with pytest.raises(DomainError) as error:
        parse_currency(text, FIELD)
    assert _reason(error) == "INVALID_CURRENCY"


@given(st.text())
def test_parse_currency_total_on_any_text(text: str) -> None:
    try:
        code = parse_currency(text, FIELD)
    except DomainError as error:
        assert error.reason == "INVALID_CURRENCY"
        assert error.violations[0].field == FIELD
    else:
        assert code in CURRENCY_EXPONENTS
        assert code == text.upper()


def test_exponent_of_unknown_currency_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown currency"):
        exponent("eur")


@pytest.mark.parametrize(
    ("code", "expected"),
    [("EUR", "0.01"), ("JPY", "1"), ("BHD", "0.001"), ("CLF", "0.0001")],
)
def test_quantum(code: str, expected: str) -> None:
    assert str(quantum(code)) == expected
    assert quantum(code).as_tuple() == Decimal(expected).as_tuple()


# --- rounding -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "code", "expected"),
    [
        ("2.5", "JPY", "3"),
        ("-2.5", "JPY", "-3"),
        ("3.5", "JPY", "4"),
        ("2.4999", "JPY", "2"),
        ("0.005", "EUR", "0.01"),
        ("-0.005", "EUR", "-0.01"),
        ("0.015", "EUR", "0.02"),
        ("0.025", "EUR", "0.03"),
        ("-0.004", "EUR", "0.00"),
        ("1.0005", "BHD", "1.001"),
        ("0.00005", "CLF", "0.0001"),
        ("12", "EUR", "12.00"),
        ("1E+3", "EUR", "1000.00"),
    ],
)
def test_round_half_up_examples(value: str, code: str, expected: str) -> None:
    rounded = round_half_up(Decimal(value), code)
    assert str(rounded) == expected


@pytest.mark.parametrize("places", EXPONENTS)
@given(number=st.integers(-(10**40), 10**40), scale=st.integers(0, 12))
@example(number=5, scale=1)
@example(number=-5, scale=1)
@example(number=-15, scale=3)
@example(number=-49999, scale=4)
def test_round_half_up_matches_integer_reference(places: int, number: int, scale: int) -> None:
    code = CURRENCY_BY_EXPONENT[places]
    assert code is not None
    rounded = round_half_up(_scaled(number, scale), code)
    expected = _reference_round(number, scale, places)
    assert rounded == _scaled(expected, places)
    assert rounded.as_tuple().exponent == -places
    assert not (rounded.is_zero() and rounded.is_signed())


def test_round_half_up_ignores_the_thread_context() -> None:
    with localcontext() as context:
        context.prec = 3
        assert round_half_up(Decimal("123456789.125"), "EUR") == Decimal("123456789.13")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_round_half_up_rejects_non_finite(value: str) -> None:
    with pytest.raises(ValueError, match="finite"):
        round_half_up(Decimal(value), "EUR")


# --- formatting -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "code", "expected"),
    [
        ("1200", "EUR", "1200.00"),
        ("1200.00", "EUR", "1200.00"),
        ("1.2E+3", "EUR", "1200.00"),
        ("1200", "JPY", "1200"),
        ("1.2E+3", "JPY", "1200"),
        ("1200.000", "JPY", "1200"),
        ("1.25", "BHD", "1.250"),
        ("1.2300", "EUR", "1.23"),
        ("-0", "EUR", "0.00"),
        ("-0.000", "EUR", "0.00"),
        ("-0E+5", "JPY", "0"),
        ("-12.5", "EUR", "-12.50"),
        ("0.0001", "CLF", "0.0001"),
        ("999999999999999.99", "EUR", "999999999999999.99"),
    ],
)
def test_format_money_examples(value: str, code: str, expected: str) -> None:
    assert format_money(Decimal(value), code) == expected


@pytest.mark.parametrize(
    ("value", "code"),
    [("1.005", "EUR"), ("0.5", "JPY"), ("1.0001", "BHD"), ("1E+100", "EUR"), ("NaN", "EUR")],
)
def test_format_money_rejects_inexact_values(value: str, code: str) -> None:
    with pytest.raises(ValueError):
        format_money(Decimal(value), code)


@pytest.mark.parametrize("places", EXPONENTS)
@given(number=st.integers(-(LIMIT * 10**4) + 1, LIMIT * 10**4 - 1))
@example(number=0)
@example(number=-1)
def test_format_money_round_trips_through_parse_money(places: int, number: int) -> None:
    code = CURRENCY_BY_EXPONENT[places]
    assert code is not None
    number = (abs(number) // 10 ** (4 - places)) * (-1 if number < 0 else 1)
    value = _scaled(number, places)
    text = format_money(value, code)
    shape = r"-?(0|[1-9][0-9]*)" + (rf"\.[0-9]{{{places}}}" if places else "")
    assert re.fullmatch(shape, text)
    assert not re.fullmatch(r"-0(\.0*)?", text)
    parsed = parse_money(text, code, FIELD, minimum=None)
    assert parsed == value
    assert format_money(parsed, code) == text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.500", "1.5"),
        ("2.000", "2"),
        ("0", "0"),
        ("-0.000", "0"),
        ("0E-7", "0"),
        ("1E+5", "100000"),
        ("1E-7", "0.0000001"),
        ("-12.3400", "-12.34"),
        ("100", "100"),
        ("0.19", "0.19"),
    ],
)
def test_format_decimal_examples(value: str, expected: str) -> None:
    assert format_decimal(Decimal(value)) == expected


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_format_decimal_is_plain_and_exact(value: Decimal) -> None:
    text = format_decimal(value)
    assert re.fullmatch(r"-?[0-9]+(\.[0-9]*[1-9])?", text)
    assert Decimal(text) == value
    assert text != "-0"


def test_format_decimal_rejects_non_finite() -> None:
    with pytest.raises(ValueError):
        format_decimal(Decimal("Infinity"))


# --- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "places", "expected"),
    [
        ("0", 2, "0"),
        ("-0", 2, "0"),
        ("-0.00", 2, "0.00"),
        ("1", 2, "1"),
        ("1.5", 2, "1.5"),
        ("1.50", 2, "1.50"),
        ("-12.345678", 6, "-12.345678"),
        ("007", 0, "7"),
        ("999999999999999.9999", 4, "999999999999999.9999"),
        ("-999999999999999", 0, "-999999999999999"),
    ],
)
def test_parse_decimal_accepts(text: str, places: int, expected: str) -> None:
    value = parse_decimal(text, FIELD, max_places=places)
    assert value.as_tuple() == Decimal(expected).as_tuple()


@pytest.mark.parametrize(
    "text",
    [
        "1e5",
        "1E5",
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "inf",
        " 1",
        "1 ",
        "+1",
        "1.",
        ".5",
        "-.5",
        "-",
        "--1",
        "1,5",
        "1_000",
        "1.2.3",
        "0x10",
        "1\n",
        "\n1",
        "\u0661\u0662",
        "\uff11",
        "1.\u0665",
        "\x00",
    ],
)
def test_parse_decimal_rejects_malformed(text: str) -> None:
    with pytest.raises(DomainError) as error:
        parse_decimal(text, FIELD, max_places=6)
    assert _reason(error) == "INVALID_DECIMAL"


@pytest.mark.parametrize(("text", "places"), [("1." + "1" * 30, 20), ("1.001", 2), ("1.5", 0)])
def test_parse_decimal_rejects_too_many_places(text: str, places: int) -> None:
    with pytest.raises(DomainError) as error:
        parse_decimal(text, FIELD, max_places=places)
    assert _reason(error) == "TOO_MANY_DECIMAL_PLACES"
    assert error.value.metadata["maxPlaces"] == str(places)


@pytest.mark.parametrize("text", ["1000000000000000", "-1000000000000000", "1" * 100])
def test_parse_decimal_rejects_sixteen_integer_digits(text: str) -> None:
    with pytest.raises(DomainError) as error:
        parse_decimal(text, FIELD, max_places=2)
    assert _reason(error) == "OUT_OF_RANGE"


def test_parse_decimal_empty() -> None:
    with pytest.raises(DomainError) as error:
        parse_decimal("", FIELD, max_places=2)
    assert _reason(error) == "REQUIRED"
    assert parse_decimal("", FIELD, max_places=2, empty=Decimal("1")) == Decimal("1")


@pytest.mark.parametrize(
    ("text", "minimum", "maximum", "exclusive", "ok"),
    [
        ("0", Decimal(0), None, False, True),
        ("-0.01", Decimal(0), None, False, False),
        ("0", Decimal(0), None, True, False),
        ("0.01", Decimal(0), None, True, True),
        ("100", None, Decimal(100), False, True),
        ("100.01", None, Decimal(100), False, False),
        ("-5", Decimal(-5), Decimal(5), False, True),
        ("5", Decimal(-5), Decimal(5), True, True),
    ],
)
def test_parse_decimal_bounds(
    text: str, minimum: Decimal | None, maximum: Decimal | None, exclusive: bool, ok: bool
) -> None:
    def parse() -> Decimal:
        return parse_decimal(
            text,
            FIELD,
            max_places=2,
            minimum=minimum,
            maximum=maximum,
            exclusive_minimum=exclusive,
        )

    if ok:
        assert parse() == Decimal(text)
        return
    with pytest.raises(DomainError) as error:
        parse()
    assert _reason(error) == "OUT_OF_RANGE"


def test_parse_decimal_out_of_range_names_the_bound() -> None:
    with pytest.raises(DomainError) as error:
        parse_decimal("1.5", FIELD, max_places=2, maximum=Decimal("1.00"))
    assert error.value.metadata["maximum"] == "1"


@given(st.text(), st.integers(0, 20))
@example("1." + "0" * 30, 2)
@example("1" * 10_000, 2)
def test_parse_decimal_only_raises_domain_errors(text: str, places: int) -> None:
    try:
        value = parse_decimal(text, FIELD, max_places=places)
    except DomainError as error:
        assert error.violations[0].field == FIELD
        assert error.reason in {
            "REQUIRED",
            "INVALID_DECIMAL",
            "TOO_MANY_DECIMAL_PLACES",
            "OUT_OF_RANGE",
        }
    else:
        pattern = rf"-?[0-9]{{1,15}}(\.[0-9]{{1,{places}}})?" if places else r"-?[0-9]{1,15}"
        assert re.fullmatch(pattern, text)
        assert value == Decimal(text)
        assert abs(value) < LIMIT


@given(st.decimals(min_value=-(LIMIT - 1), max_value=LIMIT - 1, places=6))
def test_parse_decimal_round_trips_format_decimal(value: Decimal) -> None:
    assert parse_decimal(format_decimal(value), FIELD, max_places=6) == value


def test_parse_decimal_ignores_the_thread_context() -> None:
    with localcontext() as context:
        context.prec = 2
        value = parse_decimal("123456789012345.6789", FIELD, max_places=4)
    assert str(value) == "123456789012345.6789"


# --- money ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code", "expected"),
    [
        ("10", "EUR", "10.00"),
        ("10.5", "EUR", "10.50"),
        ("10", "JPY", "10"),
        ("1.2", "BHD", "1.200"),
    ],
)
def test_parse_money_returns_minor_unit_scale(text: str, code: str, expected: str) -> None:
    assert str(parse_money(text, code, FIELD)) == expected


@pytest.mark.parametrize(("text", "code"), [("10.005", "EUR"), ("10.5", "JPY"), ("1.0001", "BHD")])
def test_parse_money_rejects_sub_minor_amounts(text: str, code: str) -> None:
    with pytest.raises(DomainError) as error:
        parse_money(text, code, FIELD)
    assert _reason(error) == "TOO_MANY_DECIMAL_PLACES"
    assert error.value.metadata["maxPlaces"] == str(exponent(code))


def test_parse_money_is_non_negative_by_default() -> None:
    with pytest.raises(DomainError) as error:
        parse_money("-0.01", "EUR", FIELD)
    assert _reason(error) == "OUT_OF_RANGE"
    assert parse_money("-0.01", "EUR", FIELD, minimum=None) == Decimal("-0.01")
    assert str(parse_money("-0", "EUR", FIELD)) == "0.00"


def test_parse_money_empty() -> None:
    with pytest.raises(DomainError) as error:
        parse_money("", "EUR", FIELD)
    assert _reason(error) == "REQUIRED"
    assert parse_money("", "EUR", FIELD, empty=Decimal(0)) == Decimal(0)


@pytest.mark.parametrize("text", ["1000000000000000", "1e3", "NaN", " 1", "+1"])
def test_parse_money_rejects_malformed_or_huge(text: str) -> None:
    with pytest.raises(DomainError) as error:
        parse_money(text, "EUR", FIELD)
    assert _reason(error) in {"OUT_OF_RANGE", "INVALID_DECIMAL"}


# --- multiplication -------------------------------------------------------------------------


decimal_operands = st.builds(_scaled, st.integers(-(10**30), 10**30), st.integers(0, 30))


@given(decimal_operands, decimal_operands)
def test_money_multiply_is_exact(a: Decimal, b: Decimal) -> None:
    with localcontext() as context:
        context.prec = 3
        product = money_multiply(a, b)
    a_sign, a_digits, a_exp = a.as_tuple()
    b_sign, b_digits, b_exp = b.as_tuple()
    assert isinstance(a_exp, int) and isinstance(b_exp, int)
    a_int = int("".join(map(str, a_digits))) * (-1 if a_sign else 1)
    b_int = int("".join(map(str, b_digits))) * (-1 if b_sign else 1)
    assert product == _scaled(a_int * b_int, -(a_exp + b_exp))


def test_money_multiply_examples() -> None:
    assert money_multiply(Decimal("3"), Decimal("19.99")) == Decimal("59.97")
    assert money_multiply(Decimal("1.5"), Decimal("0.2")) == Decimal("0.30")
    big = Decimal("123456789012345.678901234567890123")
    exact = 123456789012345678901234567890123**2
    assert money_multiply(big, big) == _scaled(exact, 36)
    assert len(money_multiply(big, big).as_tuple().digits) > 60
