"""JSON text with exact decimal numbers: `loads` reads every fraction or exponent number as
a `Decimal` (from its text, never through a float) and `dumps` writes a `Decimal` as a JSON
number with exactly its digits ("1200.50" stays 1200.50, not 1200.5)."""

from __future__ import annotations

import json
import secrets
from decimal import Decimal
from typing import Any


def loads(body: bytes) -> Any:
    return json.loads(body, parse_float=Decimal, parse_constant=_no_constant)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Decimals are written by the C encoder as strings between two markers, then the markers
# and the quotes around them are cut (two C-level replaces): no recursive Python encoder,
# no regex. The markers are random per process (2^32 values, never shown): a stored string
# would have to spell one exactly, and even then it would only turn itself into a number.
_TOKEN = secrets.token_hex(4)
_OPEN, _CLOSE = f"#n{_TOKEN}<", f">{_TOKEN}n#"
_QUOTED_OPEN, _QUOTED_CLOSE = f'"{_OPEN}', f'{_CLOSE}"'


def number(text: str) -> str:
    """A decimal's text (`-?digits[.digits]`, already checked) that `dumps` writes as a
    JSON number: the writers' fast path, no Decimal made."""
    return _OPEN + text + _CLOSE


def _decimal(value: Any) -> str:
    if isinstance(value, Decimal):
        return _OPEN + format(value, "f") + _CLOSE
    raise TypeError(f"{type(value).__name__} is not JSON")


_encode_marked = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), default=_decimal
).encode


def dumps(value: Any) -> bytes:
    text = _encode_marked(value)
    if _OPEN in text:
        text = text.replace(_QUOTED_OPEN, "").replace(_QUOTED_CLOSE, "")
    return text.encode()
