"""Money and decimals: ISO 4217 currencies, strict decimal parsing, rounding, formatting.

Never a float. Amounts are `decimal.Decimal`, exchanged as plain decimal strings and rounded
to the currency's ISO 4217 minor unit with ROUND_HALF_UP (DESIGN.md section 4). Arithmetic
runs under a local decimal context, never the thread's default one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from types import MappingProxyType

from service.kit.errors import DomainError, invalid

_ZERO_DIGIT_CODES = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE_DIGIT_CODES = "BHD IQD JOD KWD LYD OMR TND"
_FOUR_DIGIT_CODES = "CLF UYW"
_TWO_DIGIT_CODES = (
    "AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP "
    "BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB "
    "EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS "
    "KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN "
    "MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD "
    "SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS "
    "UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG"
)

CURRENCY_EXPONENTS: Mapping[str, int] = MappingProxyType(
    {
        code: places
        for codes, places in (
            (_ZERO_DIGIT_CODES, 0),
            (_TWO_DIGIT_CODES, 2),
            (_THREE_DIGIT_CODES, 3),
            (_FOUR_DIGIT_CODES, 4),
        )
        for code in codes.split()
    }
)
"""Active ISO 4217 codes (list one) with a minor unit -> that unit's exponent.

Left out: codes without a minor unit (precious metals, SDR, bond-market units, XSU, XUA, XTS,
XXX) and codes withdrawn after a replacement (HRK by EUR, ANG by XCG, ZWL by ZWG, SLL by SLE).
"""

MAX_INTEGER_DIGITS = 15
"""Every parsed decimal has a magnitude below 10**15."""

_PRECISION = 60
_QUANTA = {places: Decimal((0, (1,), -places)) for places in range(5)}
_DECIMAL_SHAPE = re.compile(r"-?([0-9]+)(?:\.([0-9]+))?")


def _context(precision: int = _PRECISION) -> Context:
    """A fresh local context: exact enough for money, trapping every silent loss."""
    return Context(
        prec=precision,
        rounding=ROUND_HALF_UP,
        traps=[InvalidOperation, DivisionByZero, Overflow],
    )


# Shared, read-only use: operations only set flags on it, which nothing reads.
_EXACT = Context(
    prec=_PRECISION,
    rounding=ROUND_HALF_UP,
    traps=[InvalidOperation, DivisionByZero, Overflow, Inexact],
)


def _without_negative_zero(value: Decimal) -> Decimal:
    return value.copy_abs() if value.is_zero() else value


def _require_finite(value: Decimal) -> None:
    if not value.is_finite():
        raise ValueError(f"{value!r} is not a finite decimal")


def parse_currency(text: str, field_path: str) -> str:
    """An ISO 4217 code in any letter case ("eur") -> its canonical form ("EUR")."""
    code = text.upper() if text.isascii() else ""
    if code not in CURRENCY_EXPONENTS:
        raise invalid(
            field_path, "must be an active ISO 4217 currency code", reason="INVALID_CURRENCY"
        )
    return code


def exponent(currency: str) -> int:
    """The minor unit exponent of a canonical currency code (EUR 2, JPY 0, BHD 3)."""
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise ValueError(f"unknown currency {currency!r}") from None


def quantum(currency: str) -> Decimal:
    """The currency's minor unit: Decimal("0.01") for EUR, Decimal("1") for JPY."""
    return _QUANTA[exponent(currency)]


def parse_decimal(
    text: str,
    field_path: str,
    *,
    max_places: int,
    minimum: Decimal | None = None,
    maximum: Decimal | None = None,
    exclusive_minimum: bool = False,
    empty: Decimal | None = None,
) -> Decimal:
    """A strict plain decimal string (`-?D{1,15}(.D{1,max_places})?`) -> Decimal."""
    if text == "":
        if empty is not None:
            return empty
        raise invalid(field_path, "is required", reason="REQUIRED")
    value = _parse_shape(text, field_path, max_places)
    _check_range(value, field_path, minimum, maximum, exclusive_minimum)
    return value


def _parse_shape(text: str, field_path: str, max_places: int) -> Decimal:
    match = _DECIMAL_SHAPE.fullmatch(text)
    if match is None:
        raise invalid(
            field_path, "must be a plain decimal string like 1234.56", reason="INVALID_DECIMAL"
        )
    integer, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > max_places:
        raise invalid(
            field_path,
            f"must have at most {max_places} decimal places",
            reason="TOO_MANY_DECIMAL_PLACES",
            maxPlaces=str(max_places),
        )
    if len(integer) > MAX_INTEGER_DIGITS:
        raise invalid(
            field_path,
            f"must have at most {MAX_INTEGER_DIGITS} integer digits",
            reason="OUT_OF_RANGE",
        )
    return _without_negative_zero(Decimal(text))


def _check_range(
    value: Decimal,
    field_path: str,
    minimum: Decimal | None,
    maximum: Decimal | None,
    exclusive_minimum: bool,
) -> None:
    if minimum is not None and (value <= minimum if exclusive_minimum else value < minimum):
        word = "greater than" if exclusive_minimum else "at least"
        raise _out_of_range(
            field_path, f"must be {word} {format_decimal(minimum)}", minimum=minimum
        )
    if maximum is not None and value > maximum:
        raise _out_of_range(
            field_path, f"must be at most {format_decimal(maximum)}", maximum=maximum
        )


def _out_of_range(field_path: str, description: str, **bounds: Decimal) -> DomainError:
    metadata = {name: format_decimal(bound) for name, bound in bounds.items()}
    return invalid(field_path, description, reason="OUT_OF_RANGE", **metadata)


def parse_money(
    text: str,
    currency: str,
    field_path: str,
    *,
    minimum: Decimal | None = Decimal(0),
    empty: Decimal | None = None,
) -> Decimal:
    """An amount in `currency`: at most its minor unit's places, returned at exactly that scale."""
    value = parse_decimal(
        text, field_path, max_places=exponent(currency), minimum=minimum, empty=empty
    )
    return value.quantize(quantum(currency), context=_context())


def round_half_up(value: Decimal, currency: str) -> Decimal:
    """`value` at the currency's minor unit, halves away from zero (2.5 -> 3, -2.5 -> -3)."""
    _require_finite(value)
    rounded = value.quantize(quantum(currency), rounding=ROUND_HALF_UP, context=_context())
    return _without_negative_zero(rounded)


def format_money(value: Decimal, currency: str) -> str:
    """Plain notation with exactly the currency's places ("1200.00", "1200", "1.250").

    A value that is not exact to the minor unit is a programming error: ValueError.
    """
    _require_finite(value)
    try:
        exact = value.quantize(quantum(currency), context=_exact_context())
    except (InvalidOperation, Inexact) as error:
        raise ValueError(f"{value!r} is not an exact {currency} amount") from error
    return format(_without_negative_zero(exact), "f")


def _exact_context() -> Context:
    return _EXACT


def format_decimal(value: Decimal) -> str:
    """Plain notation, trailing zeros stripped: Decimal("1.500") -> "1.5", 1E+2 -> "100"."""
    _require_finite(value)
    if value.is_zero():
        return "0"
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def money_multiply(a: Decimal, b: Decimal) -> Decimal:
    """The exact product `a * b`, computed under a local context of at least 60 digits."""
    digits = len(a.as_tuple().digits) + len(b.as_tuple().digits)
    context = _context(max(_PRECISION, digits))
    context.traps[Inexact] = True
    return context.multiply(a, b)
