"""`make migrate` / `python -m service.migrate`: upgrade (or downgrade) the schema."""

from __future__ import annotations

import argparse
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str, *, app_role: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["app_role"] = app_role
    return cfg


def upgrade(url: str, *, app_role: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url, app_role=app_role), revision)


def downgrade(url: str, *, app_role: str, revision: str) -> None:
    command.downgrade(alembic_config(url, app_role=app_role), revision)


def main() -> None:
    from service.kit import config, devdb

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--downgrade", metavar="REVISION", help="downgrade to this revision")
    args = parser.parse_args()
    settings = config.load()
    urls = devdb.resolve(settings)
    if args.downgrade:
        downgrade(urls.admin, app_role=settings.db_app_role, revision=args.downgrade)
    else:
        upgrade(urls.admin, app_role=settings.db_app_role)
        devdb.allow_app_login(urls, settings)
    print(f"migrated ({'embedded' if settings.embedded_database else 'DATABASE_URL'})")


if __name__ == "__main__":
    main()
