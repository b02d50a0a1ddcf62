"""Settings, read from environment variables only (the README's table lists them)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "")
    return Path(raw) if raw else None


@dataclass(frozen=True)
class Settings:
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    data_dir: Path = Path(".data")
    database_url: str = ""
    migration_database_url: str = ""
    db_app_role: str = "invoicing_app"
    db_pool_size: int = 10
    db_statement_timeout_ms: int = 15000
    jwt_issuer: str = "invoicing-dev"
    jwt_audience: str = "invoicing"
    jwt_algorithms: tuple[str, ...] = ("HS256",)
    jwt_public_key_file: Path | None = None
    jwt_jwks_file: Path | None = None
    jwt_leeway_seconds: int = 30
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None
    grpc_reuseport: bool = False
    grpc_max_message_bytes: int = 4 * 1024 * 1024
    grpc_max_concurrent_rpcs: int = 512
    shutdown_grace_seconds: int = 10
    invoice_number_prefix: str = "INV"
    idempotency_ttl_hours: int = 24
    cursor_secret: str = ""
    log_level: str = "INFO"
    use_uvloop: bool = True
    gateway_enabled: bool = True
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8080
    gateway_max_body_bytes: int = 1024 * 1024
    gateway_timeout_seconds: int = 30
    gateway_cors_origins: tuple[str, ...] = ()
    gateway_max_connections: int = 1000
    gateway_header_timeout_seconds: int = 10
    gateway_idle_timeout_seconds: int = 5
    gateway_max_header_bytes: int = 32 * 1024
    heavy_rpc_concurrency: int = 4
    # The key ring itself (JSON) never shows in a repr of the settings.
    secrets_keyring: str = field(default="", repr=False)
    secrets_keyring_file: Path | None = None
    webhook_allow_loopback_http: bool = False
    yooz_base_url: str = ""
    yooz_timeout_s: int = 10
    poll_interval_s: int = 300
    webhook_max_body_bytes: int = 256 * 1024
    delivery_max_attempts: int = 8
    health_check_interval_ms: int = 1000
    health_check_timeout_ms: int = 1000
    worker_enabled: bool = True
    worker_batch: int = 10
    worker_idle_ms: int = 1000

    @property
    def embedded_database(self) -> bool:
        return self.database_url == ""


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from the environment; raises ConfigError naming the variable."""
    e = os.environ if env is None else env
    algorithms = tuple(a.strip() for a in e.get("AUTH_JWT_ALGORITHMS", "").split(",") if a.strip())
    settings = Settings(
        grpc_host=e.get("GRPC_HOST", "127.0.0.1"),
        grpc_port=_int(e, "GRPC_PORT", 50051),
        data_dir=Path(e.get("DATA_DIR", ".data")),
        database_url=e.get("DATABASE_URL", ""),
        migration_database_url=e.get("MIGRATION_DATABASE_URL", ""),
        db_app_role=e.get("DB_APP_ROLE", "invoicing_app"),
        db_pool_size=_int(e, "DB_POOL_SIZE", 10, minimum=1),
        db_statement_timeout_ms=_int(e, "DB_STATEMENT_TIMEOUT_MS", 15000, minimum=1),
        jwt_issuer=e.get("AUTH_JWT_ISSUER", "invoicing-dev"),
        jwt_audience=e.get("AUTH_JWT_AUDIENCE", "invoicing"),
        jwt_algorithms=algorithms or _default_algorithms(e),
        jwt_public_key_file=_path(e, "AUTH_JWT_PUBLIC_KEY_FILE"),
        jwt_jwks_file=_path(e, "AUTH_JWKS_FILE"),
        jwt_leeway_seconds=_int(e, "AUTH_JWT_LEEWAY_SECONDS", 30),
        tls_cert_file=_path(e, "TLS_CERT_FILE"),
        tls_key_file=_path(e, "TLS_KEY_FILE"),
        tls_client_ca_file=_path(e, "TLS_CLIENT_CA_FILE"),
        grpc_reuseport=_bool(e, "GRPC_REUSEPORT", False),
        grpc_max_message_bytes=_int(e, "GRPC_MAX_MESSAGE_BYTES", 4 * 1024 * 1024, minimum=1024),
        grpc_max_concurrent_rpcs=_int(e, "GRPC_MAX_CONCURRENT_RPCS", 512, minimum=1),
        shutdown_grace_seconds=_int(e, "SHUTDOWN_GRACE_SECONDS", 10),
        invoice_number_prefix=e.get("INVOICE_NUMBER_PREFIX", "INV"),
        idempotency_ttl_hours=_int(e, "IDEMPOTENCY_TTL_HOURS", 24, minimum=24),
        cursor_secret=e.get("CURSOR_SECRET", ""),
        log_level=e.get("LOG_LEVEL", "INFO").upper(),
        use_uvloop=_bool(e, "USE_UVLOOP", True),
        gateway_enabled=_bool(e, "GATEWAY_ENABLED", True),
        gateway_host=e.get("GATEWAY_HOST", "127.0.0.1"),
        gateway_port=_int(e, "GATEWAY_PORT", 8080),
        gateway_max_body_bytes=_int(e, "GATEWAY_MAX_BODY_BYTES", 1024 * 1024, minimum=1),
        gateway_timeout_seconds=_int(e, "GATEWAY_TIMEOUT_SECONDS", 30, minimum=1),
        gateway_cors_origins=tuple(
            o.strip() for o in e.get("GATEWAY_CORS_ORIGINS", "").split(",") if o.strip()
        ),
        gateway_max_connections=_int(e, "GATEWAY_MAX_CONNECTIONS", 1000, minimum=1),
        gateway_header_timeout_seconds=_int(e, "GATEWAY_HEADER_TIMEOUT_SECONDS", 10, minimum=1),
        gateway_idle_timeout_seconds=_int(e, "GATEWAY_IDLE_TIMEOUT_SECONDS", 5, minimum=1),
        gateway_max_header_bytes=_int(e, "GATEWAY_MAX_HEADER_BYTES", 32 * 1024, minimum=1024),
        heavy_rpc_concurrency=_int(e, "HEAVY_RPC_CONCURRENCY", 4),
        secrets_keyring=e.get("SECRETS_KEYRING", ""),
        secrets_keyring_file=_path(e, "SECRETS_KEYRING_FILE"),
        webhook_allow_loopback_http=_bool(e, "WEBHOOK_ALLOW_LOOPBACK_HTTP", False),
        yooz_base_url=e.get("YOOZ_BASE_URL", "").rstrip("/"),
        yooz_timeout_s=_int(e, "YOOZ_TIMEOUT_S", 10, minimum=1),
        poll_interval_s=_int(e, "POLL_INTERVAL_S", 300, minimum=1),
        webhook_max_body_bytes=_int(e, "WEBHOOK_MAX_BODY_BYTES", 256 * 1024, minimum=1024),
        delivery_max_attempts=_int(e, "DELIVERY_MAX_ATTEMPTS", 8, minimum=1),
        health_check_interval_ms=_int(e, "HEALTH_CHECK_INTERVAL_MS", 1000, minimum=10),
        health_check_timeout_ms=_int(e, "HEALTH_CHECK_TIMEOUT_MS", 1000, minimum=10),
        worker_enabled=_bool(e, "WORKER_ENABLED", True),
        worker_batch=_int(e, "WORKER_BATCH", 10, minimum=1),
        worker_idle_ms=_int(e, "WORKER_IDLE_MS", 1000, minimum=10),
    )
    _check(settings)
    return settings


def _default_algorithms(env: Mapping[str, str]) -> tuple[str, ...]:
    has_keys = env.get("AUTH_JWT_PUBLIC_KEY_FILE") or env.get("AUTH_JWKS_FILE")
    return ("RS256", "ES256") if has_keys else ("HS256",)


def _check(s: Settings) -> None:
    if (s.tls_cert_file is None) != (s.tls_key_file is None):
        raise ConfigError("TLS_CERT_FILE and TLS_KEY_FILE must be set together")
    if s.tls_client_ca_file is not None and s.tls_cert_file is None:
        raise ConfigError("TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE")
    if s.secrets_keyring and s.secrets_keyring_file:
        raise ConfigError("set only one of SECRETS_KEYRING and SECRETS_KEYRING_FILE")
    if s.jwt_public_key_file and s.jwt_jwks_file:
        raise ConfigError("set only one of AUTH_JWT_PUBLIC_KEY_FILE and AUTH_JWKS_FILE")
    asym = {a for a in s.jwt_algorithms if not a.startswith("HS")}
    sym = {a for a in s.jwt_algorithms if a.startswith("HS")}
    if asym and sym:
        raise ConfigError("AUTH_JWT_ALGORITHMS must not mix HS* with asymmetric algorithms")
    if asym and not (s.jwt_public_key_file or s.jwt_jwks_file):
        raise ConfigError(
            "asymmetric AUTH_JWT_ALGORITHMS need AUTH_JWT_PUBLIC_KEY_FILE or AUTH_JWKS_FILE"
        )
    if "none" in {a.lower() for a in s.jwt_algorithms}:
        raise ConfigError("AUTH_JWT_ALGORITHMS must not contain 'none'")
