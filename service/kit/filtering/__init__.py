"""Filters over an allow-list of fields, in two dialects: AIP-160 text (`aip160`) and seed
003's where-clause JSON (`where_json`), sharing the fields and their operator gates
(`fields`)."""

from service.kit.filtering.aip160 import compile_filter
from service.kit.filtering.fields import (
    FieldType,
    FilterField,
    adapted,
    currency_field,
    enum_values,
    id_field,
)
from service.kit.filtering.where_json import compile_where

__all__ = [
    "FieldType",
    "FilterField",
    "adapted",
    "compile_filter",
    "compile_where",
    "currency_field",
    "enum_values",
    "id_field",
]
