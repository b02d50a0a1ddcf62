"""SQLAlchemy builds and compiles statements; asyncpg runs them.

FLOORS.md measured SQLAlchemy's async execution path at about a quarter of raw
asyncpg's throughput, so statements are compiled to `$n` SQL once (or per call for
dynamic ones such as filtered lists) and executed on the asyncpg connection, where
asyncpg's statement cache makes them prepared statements.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import asyncpg
from sqlalchemy import BindParameter, Table, bindparam
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

_DIALECT = pg_asyncpg.dialect()  # type: ignore[no-untyped-call]
_KWARGS = {"render_postcompile": True}


def param(name: str, type_: Any = None) -> BindParameter[Any]:
    """A per-call bind parameter of a statement compiled once (`Prepared`, `cached`).

    Not `required`: compiling with `render_postcompile` (which expands IN lists)
    reads every parameter's value, and these get theirs only at execution.
    """
    return bindparam(name, value=None, type_=type_, required=False)


class Compiled:
    """A statement compiled to SQL text with its positional parameter order."""

    __slots__ = ("_defaults", "names", "processors", "sql")

    def __init__(self, statement: ClauseElement) -> None:
        compiled = statement.compile(dialect=_DIALECT, compile_kwargs=_KWARGS)
        assert isinstance(compiled, SQLCompiler)
        self.sql = str(compiled)
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        processors: Any = compiled._bind_processors
        self.processors: Mapping[str, Callable[[Any], Any]] = dict(processors)
        self._defaults: Mapping[str, Any] = compiled.construct_params(_check=False) or {}

    def args(self, params: Mapping[str, Any] | None = None) -> list[Any]:
        values = self._defaults if not params else {**self._defaults, **params}
        out = []
        for name in self.names:
            value = values[name]
            processor = self.processors.get(name)
            out.append(processor(value) if processor is not None and value is not None else value)
        return out


class Prepared:
    """A static statement compiled on first use; call it with bindparam values."""

    def __init__(self, build: Callable[[], ClauseElement]) -> None:
        self._build = build
        self._compiled: Compiled | None = None

    @property
    def compiled(self) -> Compiled:
        if self._compiled is None:
            self._compiled = Compiled(self._build())
        return self._compiled


Statement = ClauseElement | Prepared | Compiled

_CACHE: OrderedDict[Hashable, Compiled] = OrderedDict()
_CACHE_SIZE = 512


def cached(key: Hashable, build: Callable[[], ClauseElement]) -> Compiled:
    """Compile a dynamic statement once per shape (`key` must capture everything that
    changes the SQL text; values that vary per call are bindparams)."""
    compiled = _CACHE.get(key)
    if compiled is None:
        compiled = Compiled(build())
        _CACHE[key] = compiled
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return compiled


def _sql_args(statement: Statement, params: Mapping[str, Any] | None) -> tuple[str, list[Any]]:
    if isinstance(statement, Compiled):
        compiled = statement
    elif isinstance(statement, Prepared):
        compiled = statement.compiled
    else:
        compiled = Compiled(statement)
    return compiled.sql, compiled.args(params)


async def fetch(
    conn: asyncpg.Connection, statement: Statement, params: Mapping[str, Any] | None = None
) -> Sequence[asyncpg.Record]:
    sql, args = _sql_args(statement, params)
    rows: Sequence[asyncpg.Record] = await conn.fetch(sql, *args)
    return rows


async def fetchrow(
    conn: asyncpg.Connection, statement: Statement, params: Mapping[str, Any] | None = None
) -> asyncpg.Record | None:
    sql, args = _sql_args(statement, params)
    return await conn.fetchrow(sql, *args)


async def fetchval(
    conn: asyncpg.Connection, statement: Statement, params: Mapping[str, Any] | None = None
) -> Any:
    sql, args = _sql_args(statement, params)
    return await conn.fetchval(sql, *args)


async def execute(
    conn: asyncpg.Connection, statement: Statement, params: Mapping[str, Any] | None = None
) -> str:
    sql, args = _sql_args(statement, params)
    status: str = await conn.execute(sql, *args)
    return status


def insert_returning(table: Table, values: Mapping[str, Any]) -> tuple[Compiled, dict[str, Any]]:
    """`INSERT INTO table (<keys>) VALUES (...) RETURNING *`, compiled once per set of
    column names; the values are bind parameters (named `v_<column>`, since SQLAlchemy
    reserves the column names themselves)."""
    names = tuple(sorted(values))

    def build() -> ClauseElement:
        columns = {name: param(f"v_{name}", table.c[name].type) for name in names}
        return table.insert().values(columns).returning(*table.c)

    compiled = cached(("insert", table.name, names), build)
    return compiled, {f"v_{name}": value for name, value in values.items()}
