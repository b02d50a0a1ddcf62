"""DDL helpers shared by migrations: the app role, grants and tenant row-level security.

Every tenant table gets RLS ENABLE + FORCE (so even the owner is filtered) and one
policy that fails closed: with no tenant set, `NULLIF(..., '')::uuid` is NULL and
no row matches or may be written.
"""

from __future__ import annotations

import re

TENANT_PREDICATE = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"
_IDENT = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def ident(name: str) -> str:
    """Quote a trusted identifier after checking it (role names come from settings)."""
    if not _IDENT.fullmatch(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return f'"{name}"'


def create_app_role(role: str) -> str:
    r = ident(role)
    lit = role.replace("'", "''")
    return (
        "DO $$ BEGIN "
        f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{lit}') THEN "
        f"CREATE ROLE {r} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE; "
        "END IF; END $$"
    )


def tenant_table(table: str, role: str) -> list[str]:
    """Statements that put `table` under tenant RLS and grant DML to the app role."""
    t, r = ident(table), ident(role)
    return [
        f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {t} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_isolation ON {t} USING ({TENANT_PREDICATE}) "
        f"WITH CHECK ({TENANT_PREDICATE})",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {t} TO {r}",
    ]


def grant_schema_usage(role: str) -> str:
    return f"GRANT USAGE ON SCHEMA public TO {ident(role)}"


def system_table(table: str, role: str) -> list[str]:
    """A table outside tenant RLS (the work queue): DML granted to the app role. It must
    hold no tenant data beyond ids and scheduling state."""
    return [f"GRANT SELECT, INSERT, UPDATE, DELETE ON {ident(table)} TO {ident(role)}"]
