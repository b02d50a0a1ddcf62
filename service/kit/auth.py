"""JWT authentication: pinned algorithms, `exp`/`iss`/`aud`/`sub` required.

Dev: HS256 with a secret generated into the data dir on first run. Production:
public keys from a PEM file or a JWKS file (never fetched on the event loop).
The tenant always comes from the verified token, never from the request.
"""

from __future__ import annotations

import contextvars
import dataclasses
import json
import os
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from service.kit import errors
from service.kit.config import Settings

PERMISSIONS = (
    "invoices.read",
    "invoices.write",
    "allocations.read",
    "allocations.write",
    "provenance.read",
    "provenance.write",
    "connections.read",
    "connections.write",
    "counterparties.read",
    "counterparties.write",
    "system",
)
DEV_SECRET_FILE = "dev-jwt-secret"
_CACHE_LIMIT = 10_000
ACCEPTED_TYP = frozenset({"jwt", "at+jwt", "application/at+jwt"})


@dataclass(frozen=True)
class Principal:
    """Who is calling, from a verified token."""

    subject: str
    tenant_id: uuid.UUID
    app_id: str | None
    workspaces: frozenset[str]
    permissions: frozenset[str]

    def in_workspace(self, workspace_id: str, field_path: str = "workspace_id") -> Principal:
        """This principal scoped to an explicit workspace: its own tenant, or one of the
        memberships its token lists; anything else is PERMISSION_DENIED."""
        if workspace_id == "":
            return self
        try:
            wanted = uuid.UUID(workspace_id)
        except ValueError:
            raise errors.invalid(field_path, "must be a UUID", reason="INVALID_UUID") from None
        if wanted == self.tenant_id:
            return self
        if wanted not in _uuids(self.workspaces):
            raise errors.permission_denied(
                "the token holds no membership in this workspace",
                "WORKSPACE_NOT_ALLOWED",
                workspaceId=str(wanted),
            )
        return dataclasses.replace(self, tenant_id=wanted)

    def require(self, permission: str) -> None:
        if permission not in self.permissions:
            raise errors.permission_denied(
                f"missing permission {permission}", "MISSING_PERMISSION", permission=permission
            )


def _uuids(values: Iterable[str]) -> set[uuid.UUID]:
    parsed = set()
    for value in values:
        try:
            parsed.add(uuid.UUID(value))
        except ValueError:
            continue
    return parsed


_current: contextvars.ContextVar[Principal] = contextvars.ContextVar("principal")


def current() -> Principal:
    """The principal of the RPC being served (set by the auth interceptor)."""
    return _current.get()


def current_or_none() -> Principal | None:
    return _current.get(None)


def bind(principal: Principal) -> contextvars.Token[Principal]:
    return _current.set(principal)


def unbind(token: contextvars.Token[Principal]) -> None:
    _current.reset(token)


class Authenticator:
    """Verifies bearer tokens; caches verified tokens until they expire."""

    def __init__(self, *, key: Any, settings: Settings) -> None:
        self._key = key
        self._algorithms = list(settings.jwt_algorithms)
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._leeway = settings.jwt_leeway_seconds
        self._cache: dict[str, tuple[float, Principal]] = {}

    def authenticate(self, authorization: str | None) -> Principal:
        token = _bearer(authorization)
        cached = self._cache.get(token)
        if cached is not None and cached[0] > time.time():
            return cached[1]
        claims = self._decode(token)
        _check_claim_types(claims)
        principal = _principal(claims)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[token] = (float(claims["exp"]) + self._leeway, principal)
        return principal

    def _decode(self, token: str) -> dict[str, Any]:
        key = self._key
        try:
            header = jwt.get_unverified_header(token)
            if str(header.get("typ", "JWT")).lower() not in ACCEPTED_TYP:
                raise errors.unauthenticated("token type is not a JWT", "INVALID_TOKEN")
            if isinstance(key, jwt.PyJWKSet):
                kid = header.get("kid")
                key = next((k.key for k in key.keys if k.key_id == kid), None)
                if key is None:
                    raise errors.unauthenticated("token signed by an unknown key", "UNKNOWN_KEY")
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise errors.unauthenticated("token expired", "TOKEN_EXPIRED") from exc
        except jwt.PyJWTError as exc:
            raise errors.unauthenticated("invalid token", "INVALID_TOKEN") from exc
        return claims


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise errors.unauthenticated("missing authorization: Bearer <token>", "MISSING_TOKEN")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.unauthenticated("authorization must be 'Bearer <token>'", "INVALID_TOKEN")
    return token.strip()


def _check_claim_types(claims: Mapping[str, Any]) -> None:
    """Time claims are NumericDate (a JSON number, RFC 7519), never a string or a boolean;
    `app_id`, when present, is a non-blank string (a falsy one must not widen the token
    to the whole tenant)."""
    for name in ("exp", "nbf", "iat"):
        value = claims.get(name)
        if name in claims and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise errors.unauthenticated(f"claim {name} must be a number", "INVALID_TOKEN")
    if "app_id" in claims:
        app_id = claims["app_id"]
        if not isinstance(app_id, str) or not app_id.strip():
            raise errors.unauthenticated("claim app_id must be a non-empty string", "INVALID_TOKEN")


def _principal(claims: Mapping[str, Any]) -> Principal:
    try:
        tenant = uuid.UUID(str(claims.get("tenant_id", "")))
    except ValueError as exc:
        raise errors.unauthenticated("token has no valid tenant_id", "INVALID_TOKEN") from exc
    subject = str(claims["sub"]).strip()
    if not subject:
        raise errors.unauthenticated("token has an empty sub", "INVALID_TOKEN")
    app_id = claims.get("app_id")
    return Principal(
        subject=subject,
        tenant_id=tenant,
        app_id=app_id.strip() if isinstance(app_id, str) else None,
        workspaces=_strings(claims.get("workspaces")),
        permissions=_strings(claims.get("permissions")),
    )


def _strings(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(str(v) for v in value)
    return frozenset()


def dev_secret(data_dir: Path) -> bytes:
    """The dev HS256 secret, generated (0600) on first use."""
    path = data_dir / DEV_SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def load_key(settings: Settings) -> Any:
    """The verification key: PEM public key, JWKS set, or the dev secret."""
    if settings.jwt_public_key_file is not None:
        return settings.jwt_public_key_file.read_bytes()
    if settings.jwt_jwks_file is not None:
        return jwt.PyJWKSet.from_dict(json.loads(settings.jwt_jwks_file.read_text()))
    return dev_secret(settings.data_dir)


def mint_dev_token(
    settings: Settings,
    *,
    tenant_id: uuid.UUID,
    subject: str = "dev-user",
    app_id: str | None = None,
    permissions: Iterable[str] = PERMISSIONS,
    workspaces: Iterable[str] = (),
    ttl_seconds: int = 12 * 3600,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject,
        "tenant_id": str(tenant_id),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + ttl_seconds,
        "permissions": list(permissions),
        "workspaces": list(workspaces),
    }
    if app_id:
        claims["app_id"] = app_id
    return jwt.encode(claims, dev_secret(settings.data_dir), algorithm="HS256")
