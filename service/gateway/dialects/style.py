"""How a dialect spells a message in JSON, both ways: keys, enum values, money, dates,
timestamps and nulls. `write` turns the canonical JSON of a message (`jsonout.to_dict`:
proto names, full enum names, money as decimal strings) into the dialect's; `read` turns
the dialect's back into canonical JSON for `json_format.ParseDict`. They are inverses: what
`write` produces, `read` takes back unchanged (tests/unit/test_dialects.py, hypothesis).

Money goes out as JSON numbers with exactly the digits the service stored (`Decimal`
values, written by `jsontext.dumps` as their text) and comes in from the JSON text through
`Decimal` (`jsontext.loads`), never through a float.
"""

from __future__ import annotations

import base64
import datetime as dt
import keyword
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from service.gateway import jsonout
from service.gateway.dialects import jsontext
from service.gateway.transcode import BadRequest

F = FieldDescriptor
Convert = Callable[[Any], Any]
_PASS_THROUGH = frozenset(
    {
        "google.protobuf.Struct",
        "google.protobuf.Value",
        "google.protobuf.ListValue",
        "google.protobuf.Duration",
        "google.protobuf.FieldMask",
    }
)
_TIMESTAMP = "google.protobuf.Timestamp"
_DATE = "google.type.Date"
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[Tt ].*)?")
_INT64 = frozenset({F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64, F.TYPE_UINT64, F.TYPE_FIXED64})
_INTEGERS = frozenset(
    {
        F.TYPE_INT32,
        F.TYPE_SINT32,
        F.TYPE_SFIXED32,
        F.TYPE_UINT32,
        F.TYPE_FIXED32,
        F.TYPE_INT64,
        F.TYPE_SINT64,
        F.TYPE_SFIXED64,
        F.TYPE_UINT64,
        F.TYPE_FIXED64,
    }
)


@dataclass(frozen=True)
class Style:
    """The spelling rules of one dialect (hashable: plans are cached per style)."""

    camel: bool = False  # keys are the lowerCamel JSON names (`hasCredentials`)
    short_enums: bool = False  # INVOICE_TYPE_CUSTOMER <-> "customer"; *_UNSPECIFIED <-> null
    numbers: frozenset[str] = frozenset()  # decimal-string fields written as JSON numbers
    iso_dates: bool = False  # google.type.Date <-> "2026-05-10"
    millis: bool = False  # timestamps with exactly three fraction digits, UTC "Z"
    nulls: bool = False  # unset message and optional fields are written as null
    keep_unset: frozenset[str] = frozenset()  # ... except these, which are left out
    rename: tuple[tuple[str, str], ...] = ()  # (proto name, key) pairs: ("tenant_id", "client")
    hidden: frozenset[str] = field(default=frozenset())  # never written (relationships)
    blank_null: frozenset[str] = frozenset()  # string fields written null when empty
    int64_numbers: bool = False  # 64-bit integers as JSON numbers (not strings)
    _plans: dict[str, Any] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )
    _message_writers: dict[str, Any] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def key(self, f: FieldDescriptor) -> str:
        renamed = dict(self.rename).get(f.name)
        if renamed is not None:
            return renamed
        return f.json_name if self.camel else f.name

    # -- writing ---------------------------------------------------------------------------

    def write(self, message: Any, canon: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, key, convert, null in self._plan(message):
            value = canon.get(name)
            if value is None:
                if null:
                    out[key] = None
                continue
            out[key] = value if convert is None else convert(value)
        return out

    def write_message(self, message: Message) -> dict[str, Any]:
        """`write(descriptor, jsonout.to_dict(message))` in one pass over the message, with
        no canonical dict in between (the hot path: every response on a seed path)."""
        writer = self._message_writers.get(message.DESCRIPTOR.full_name)
        if writer is None:
            writer = self._compile(message.DESCRIPTOR)
        result: dict[str, Any] = writer(message)
        return result

    def _compile(self, message: Any) -> Convert:
        """A function writing one message type, generated once per style and type (straight
        line code: an attribute read and at most one converter call per field, no loop).
        Only descriptor names go into the source, and keys only as `repr` literals."""
        namespace: dict[str, Any] = {}
        lines = ["def write(m):", "    out = {}"]
        for i, f in enumerate(_fields(message)):
            if f.name in self.hidden:
                continue
            key = repr(self.key(f))
            read = f"getattr(m, {f.name!r})" if keyword.iskeyword(f.name) else f"m.{f.name}"
            convert = self._raw_field_converter(f)
            if convert is not _same:
                namespace[f"c{i}"] = convert
                read = f"c{i}({read})"
            if f.has_presence and not f.is_repeated:
                lines += [f"    if m.HasField({f.name!r}):", f"        out[{key}] = {read}"]
                if self.nulls and _nullable(f) and f.name not in self.keep_unset:
                    lines += ["    else:", f"        out[{key}] = None"]
            else:
                lines.append(f"    out[{key}] = {read}")
        lines.append("    return out")
        exec("\n".join(lines), namespace)  # noqa: S102  (source built from descriptors only)
        writer: Convert = namespace["write"]
        self._message_writers[message.full_name] = writer
        return writer

    def _raw_field_converter(self, f: FieldDescriptor) -> Convert:
        entry = _map_entry(f)
        if entry is not None:
            key_is_bool = entry.fields_by_name["key"].type == F.TYPE_BOOL
            item = self._raw_value_converter(entry.fields_by_name["value"])

            def convert_map(mapping: Any) -> dict[str, Any]:
                return {
                    (("true" if k else "false") if key_is_bool else str(k)): item(v)
                    for k, v in mapping.items()
                }

            return convert_map
        one = self._raw_value_converter(f)
        if f.is_repeated:
            return list if one is _same else (lambda values: [one(v) for v in values])
        return one

    def _raw_value_converter(self, f: FieldDescriptor) -> Convert:
        """A proto value (not its canonical JSON) to the dialect's JSON value."""
        if f.message_type is not None:
            name = f.message_type.full_name
            if name == _TIMESTAMP:
                return _millis_of if self.millis else _json_string
            if name == _DATE:
                return _iso_date_of if self.iso_dates else _date_dict
            if name in ("google.protobuf.Duration", "google.protobuf.FieldMask"):
                return _json_string
            if name.startswith("google.protobuf."):
                return jsonout.to_dict
            return self.write_message
        if f.enum_type is not None:
            names = _short_names(f.enum_type) if self.short_enums else None
            by_number = {
                v.number: (names[v.name] if names is not None else v.name)
                for v in f.enum_type.values
            }
            return lambda n: by_number.get(n, n)
        if f.type in _INT64:
            return int if self.int64_numbers else str
        if f.type in (F.TYPE_FLOAT, F.TYPE_DOUBLE):
            return jsonout.float_value
        if f.type == F.TYPE_BYTES:
            return _base64
        if f.type == F.TYPE_STRING and f.name in self.numbers:
            return _number
        if f.type == F.TYPE_STRING and f.name in self.blank_null:
            return _blank_null
        return _same

    def _plan(self, message: Any) -> list[tuple[str, str, Convert | None, bool]]:
        """(field, key, converter or None, write null when unset), compiled once per message
        type (the write path is per response and per list item)."""
        plan = self._plans.get(message.full_name)
        if plan is None:
            plan = [
                (
                    f.name,
                    self.key(f),
                    self._field_converter(f),
                    self.nulls and _nullable(f) and f.name not in self.keep_unset,
                )
                for f in _fields(message)
                if f.name not in self.hidden
            ]
            self._plans[message.full_name] = plan
        return plan

    def _field_converter(self, f: FieldDescriptor) -> Convert | None:
        entry = _map_entry(f)
        if entry is not None:
            item = self._value_converter(entry.fields_by_name["value"])
            if item is None:
                return None
            return lambda value: {k: item(v) for k, v in value.items()}
        convert = self._value_converter(f)
        if f.is_repeated and convert is not None:
            one = convert
            return lambda values: [one(v) for v in values]
        return convert

    def _value_converter(self, f: FieldDescriptor) -> Convert | None:
        if f.message_type is not None:
            message = f.message_type
            name = message.full_name
            if name == _TIMESTAMP:
                return _millis if self.millis else None
            if name == _DATE and self.iso_dates:
                return _iso_date
            if name.startswith("google.protobuf."):
                return None
            return lambda value: self.write(message, value)
        if f.enum_type is not None and self.short_enums:
            names = _short_names(f.enum_type)
            return lambda value: names.get(value, value)
        if f.name in self.numbers and f.type == F.TYPE_STRING:
            return _number
        if f.name in self.blank_null and f.type == F.TYPE_STRING:
            return _blank_null
        if self.int64_numbers and f.type in _INT64:
            return _int
        return None

    # -- reading ---------------------------------------------------------------------------

    def read(self, message: Any, data: Any, where: str = "") -> Any:
        """Canonical JSON for ParseDict; what it cannot place it leaves for ParseDict to
        name (an unknown key, a string where a message goes)."""
        if not isinstance(data, dict):
            return _plain(data)
        keys = _keys(self, message)
        out: dict[str, Any] = {}
        for key, value in data.items():
            f = keys.get(key)
            if f is None:
                out[key] = _plain(value)
                continue
            if f.name in out:
                raise BadRequest(f"{where}{key}: given twice (as two spellings)", field=key)
            # null is unset: ParseDict clears the field, and a PATCH names it in its mask,
            # so `{"notes": null}` clears the notes as a seed client means it to.
            out[f.name] = None if value is None else self._read_field(f, value, f"{where}{key}.")
        return out

    def _read_field(self, f: FieldDescriptor, value: Any, where: str) -> Any:
        entry = _map_entry(f)
        if entry is not None and isinstance(value, dict):
            item = entry.fields_by_name["value"]
            return {k: self._read_value(item, v, where) for k, v in value.items()}
        if f.is_repeated and isinstance(value, list):
            return [self._read_value(f, v, where) for v in value]
        return self._read_value(f, value, where)

    def _read_value(self, f: FieldDescriptor, value: Any, where: str) -> Any:
        if f.message_type is not None:
            name = f.message_type.full_name
            if name == _DATE and isinstance(value, str):
                found = _date_object(value)
                if found is None:
                    key = where.rstrip(".")
                    raise BadRequest(f"{key}: expected a date, YYYY-MM-DD", field=key)
                return found
            if name in ("google.protobuf.Struct", "google.protobuf.Value"):
                return _exact_strings(value)
            if name.startswith("google.protobuf."):
                return _plain(value)
            return self.read(f.message_type, value, where)
        if f.enum_type is not None and isinstance(value, str):
            return _long_names(f.enum_type).get(value, value) if self.short_enums else value
        if isinstance(value, Decimal | int) and not isinstance(value, bool):
            if f.type == F.TYPE_STRING and f.name in self.numbers:
                return _decimal_text(value)
            if f.type in _INTEGERS and isinstance(value, Decimal):
                # 1e1000000 is integral: int() of it would build a million digits first.
                if not value.is_finite() or value.adjusted() > 20:
                    key = where.rstrip(".")
                    raise BadRequest(f"{key}: the number is out of range", field=key)
                if value == int(value):
                    return int(value)
        return _plain(value)


# -- plans, cached per (style, message) ------------------------------------------------------


@cache
def _fields(message: Any) -> tuple[FieldDescriptor, ...]:
    return tuple(message.fields)


@cache
def _keys(style: Style, message: Any) -> dict[str, FieldDescriptor]:
    """Every spelling a field is read under: the dialect's key, the proto name, the JSON
    name (so a canonical body works on a dialect path too)."""
    keys: dict[str, FieldDescriptor] = {}
    for f in message.fields:
        for key in (f.name, f.json_name, style.key(f)):
            keys.setdefault(key, f)
    return keys


def _map_entry(f: FieldDescriptor) -> Descriptor | None:
    entry = f.message_type
    return entry if entry is not None and entry.GetOptions().map_entry else None


def _nullable(f: FieldDescriptor) -> bool:
    """Fields that can be unset (as opposed to holding their zero value)."""
    return not f.is_repeated and (f.message_type is not None or f.has_presence)


def _prefix(enum: EnumDescriptor) -> str:
    zero = enum.values_by_number.get(0)
    if zero is not None and zero.name.endswith("UNSPECIFIED"):
        return zero.name.removesuffix("UNSPECIFIED")
    return ""


@cache
def _short_names(enum: EnumDescriptor) -> dict[str, str | None]:
    prefix = _prefix(enum)
    return {
        v.name: (None if v.number == 0 and prefix else v.name.removeprefix(prefix).lower())
        for v in enum.values
    }


@cache
def _long_names(enum: EnumDescriptor) -> dict[str, str]:
    """Short names (any case) and full names, to the full name."""
    out = {short: long for long, short in _short_names(enum).items() if short is not None}
    out |= {short.upper(): long for short, long in list(out.items())}
    return out | {v.name: v.name for v in enum.values}


def short_values(enum: EnumDescriptor) -> list[str]:
    """The values a short-enum dialect writes (for the OpenAPI schema)."""
    return [s for s in _short_names(enum).values() if s is not None]


# -- values ----------------------------------------------------------------------------------


def _same(value: Any) -> Any:
    return value


def _json_string(message: Any) -> Any:
    return message.ToJsonString()


def _millis_of(timestamp: Any) -> Any:
    return _millis(timestamp.ToJsonString())


def _date_dict(date: Any) -> dict[str, int]:
    return {"year": date.year, "month": date.month, "day": date.day}


def _iso_date_of(date: Any) -> Any:
    if date.year and date.month and date.day:
        return f"{date.year:04d}-{date.month:02d}-{date.day:02d}"
    return None


def _base64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _blank_null(value: Any) -> Any:
    return None if value == "" else value


def _int(value: Any) -> Any:
    return int(value) if isinstance(value, str) else value


def _number(text: Any) -> Any:
    """A stored decimal string as a number carrying the same digits; "" (unset) is null.
    Only `-?digits[.digits]` in ASCII is marked as a number (anything else stays a string),
    checked with str methods: this runs for every amount of every line of a page."""
    if text.__class__ is not str:
        return text
    if not text:
        return None
    body = text[1:] if text[0] == "-" else text
    whole, dot, fraction = body.partition(".")
    if whole.isdigit() and (not dot or fraction.isdigit()) and body.isascii():
        return jsontext.number(text)
    return text  # not a plain decimal after all: leave it as the service wrote it


def _decimal_text(value: Decimal | int) -> str:
    """The exact text of a JSON number read as a Decimal: 1.50 -> "1.50", 1e2 -> "100"."""
    if isinstance(value, int):
        text = str(value)
        if len(text.lstrip("-")) > 41:  # as a Decimal's: adjusted() <= 40
            raise BadRequest(f"the number {text[:32]}... is out of range")
        return text
    if (
        not value.is_finite()
        or not -40 <= value.adjusted() <= 40
        or len(value.as_tuple().digits) > 60
    ):
        raise BadRequest(f"the number {str(value)[:32]} is out of range")
    return format(value, "f")


def _plain(value: Any) -> Any:
    """Decimals that no rule claimed become floats, as the canonical parser reads them
    (json_format then says what it thinks of a number in a string field)."""
    if isinstance(value, Decimal):
        number = float(value)
        if not math.isfinite(number):
            raise BadRequest(f"the number {str(value)[:32]} is out of range")
        return number
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _exact_strings(value: Any) -> Any:
    """Inside a Struct (a where clause) a decimal number keeps its digits as text: the
    filter engine compares money exactly, and a Struct number would be a double."""
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, dict):
        return {k: _exact_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_exact_strings(v) for v in value]
    return value


def _millis(value: Any) -> Any:
    """RFC 3339 with exactly milliseconds: "2024-06-22T09:00:00.000Z" (seed 004)."""
    if not isinstance(value, str):
        return value
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    moment = moment.astimezone(dt.UTC)  # %Y does not pad years before 1000: format by hand
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
        f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond // 1000:03d}Z"
    )


def _iso_date(value: Any) -> Any:
    if isinstance(value, dict) and all(value.get(k) for k in ("year", "month", "day")):
        return f"{value['year']:04d}-{value['month']:02d}-{value['day']:02d}"
    return None if isinstance(value, dict) else value


def _date_object(text: str) -> Any:
    """ "2026-05-10" (or a date-time, seed 001 types dates so) -> google.type.Date JSON."""
    found = _ISO_DATE.fullmatch(text.strip())
    if found is None:
        return None
    year, month, day = (int(g) for g in found.groups())
    return {"year": year, "month": month, "day": day}
