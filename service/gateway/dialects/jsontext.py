"""JSON text with exact decimal numbers: `loads` reads every fraction or exponent number as
a `Decimal` (from its text, never through a float) and `dumps` writes a `Decimal` as a JSON
number with exactly its digits ("1200.50" stays 1200.50, not 1200.5)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def loads(body: bytes) -> Any:
    return json.loads(body, parse_float=Decimal, parse_constant=_no_constant)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def dumps(value: Any) -> bytes:
    return _text(value).encode()


def _text(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{_encode(str(k))}:{_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_text(v) for v in value) + "]"
    return _encode(value)
