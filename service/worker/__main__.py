"""`python -m service.worker`: the modules' background tasks alone, without serving (set
WORKER_ENABLED=false on the servers to scale the two apart). Any number of workers may
run against one database: items are claimed with leases."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from service import app
from service.kit import config, db, devdb, logs

log = logging.getLogger("service.worker")


async def _work(settings: config.Settings, database_url: str) -> None:
    database = await db.Database.connect(
        database_url,
        pool_size=settings.db_pool_size,
        statement_timeout_ms=settings.db_statement_timeout_ms,
    )
    try:
        runner = app.build_runner(app.build_runtime(settings, database), settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print(f"invoicing worker {runner.owner}: {', '.join(runner.names)}", flush=True)
        await runner.run_until(stop)
    finally:
        await database.close()


def main() -> None:
    try:
        settings = config.load()
    except config.ConfigError as exc:
        sys.exit(f"configuration error: {exc}")
    logs.configure(settings.log_level)
    urls = devdb.resolve(settings)
    asyncio.run(_work(settings, urls.app))


if __name__ == "__main__":
    main()
