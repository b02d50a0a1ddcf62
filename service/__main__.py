"""`make run`: database (embedded unless DATABASE_URL), migrations, then the gRPC server."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from service import app, migrate
from service.kit import auth, config, devdb, logs
from service.token import DEV_TENANT

log = logging.getLogger("service")


def main() -> None:
    started = time.perf_counter()
    try:
        settings = config.load()
    except config.ConfigError as exc:
        sys.exit(f"configuration error: {exc}")
    logs.configure(settings.log_level)
    urls = devdb.resolve(settings)
    try:
        migrate.upgrade(urls.admin, app_role=settings.db_app_role)
        devdb.allow_app_login(urls, settings)

        def ready(running: app.Running) -> None:
            elapsed = time.perf_counter() - started
            fields = {"port": running.port, "rest_port": running.gateway_port}
            log.info("ready", extra={"fields": {**fields, "startup_s": round(elapsed, 2)}})
            _print_banner(settings, running, elapsed)

        _run(app.serve(settings, urls.app, ready), settings.use_uvloop)
    except OSError as exc:
        log.error("cannot start", extra={"fields": {"error": str(exc)}})
        sys.exit(f"invoicing: {exc}")
    finally:
        if urls.embedded:
            devdb.stop_embedded(settings.data_dir)


def _run(coro: Coroutine[Any, Any, None], use_uvloop: bool) -> None:
    if use_uvloop:
        try:
            import uvloop

            uvloop.run(coro)
            return
        except ImportError:
            pass
    asyncio.run(coro)


def _print_banner(settings: config.Settings, running: app.Running, elapsed: float) -> None:
    target = f"{settings.grpc_host}:{running.port}"
    lines = [f"invoicing: gRPC serving on {target} (ready in {elapsed:.2f}s)"]
    if running.gateway_port:
        rest = f"http://{settings.gateway_host}:{running.gateway_port}"
        lines.append(f"invoicing: REST gateway on {rest} (docs: {rest}/docs)")
    if settings.jwt_algorithms == ("HS256",) and settings.jwt_public_key_file is None:
        token = auth.mint_dev_token(settings, tenant_id=DEV_TENANT)
        tls = "" if settings.tls_cert_file else "-plaintext "
        local = Path(sys.executable).parent / "grpcurl"
        grpcurl = os.path.relpath(local) if local.exists() else "grpcurl"
        lines += [
            "try:",
            f"  {grpcurl} {tls}-H 'authorization: Bearer {token}' "
            f"-d '{{}}' {target} invoicing.v1.InvoiceService/ListInvoices",
        ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
