"""The provider registry: what each provider needs and accepts (PROVIDERS.md).

Provider-specific rules live here, one adapter per provider; the connection use cases
only ask `get(key).check(...)`. Polling and delivery (the ingestion issue) attach to the
same adapters.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import urlsplit

from service.kit import errors, webhooks
from service.kit.keyring import Secret

INBOUND = "inbound"
OUTBOUND = "outbound"
MAX_SECRET = 4096
MAX_URL = 2048
WHSEC = "whsec_"


@dataclass(frozen=True)
class Given:
    """What a create or update sets (None: not given / left alone; for `webhook_secret`,
    Secret("") removes it). `creating` makes the provider's required fields required."""

    api_key: Secret | None
    webhook_secret: Secret | None
    endpoint_url: str | None
    creating: bool
    allow_loopback_http: bool = False


@dataclass(frozen=True)
class Provider:
    key: str
    direction: str
    # Whether an endpoint_url is needed (outbound) or refused (inbound).
    needs_endpoint: bool
    # Whether the webhook secret is required (outbound deliveries are always signed).
    needs_webhook_secret: bool

    def check(self, given: Given) -> None:
        if given.creating and given.api_key is None:
            raise errors.invalid("api_key", f"is required for {self.key}", reason="REQUIRED")
        if given.api_key is not None:
            check_api_key(given.api_key)
        if given.webhook_secret is not None:
            if given.webhook_secret.reveal() == "":
                if self.needs_webhook_secret:
                    raise errors.invalid(
                        "webhook_secret",
                        f"cannot be removed: {self.key} signs every delivery with it",
                        reason="REQUIRED",
                    )
            else:
                check_webhook_secret(given.webhook_secret)
        elif given.creating and self.needs_webhook_secret:
            raise errors.invalid("webhook_secret", f"is required for {self.key}", reason="REQUIRED")
        if self.needs_endpoint:
            if given.endpoint_url is not None or given.creating:
                check_endpoint_url(given.endpoint_url or "", given.allow_loopback_http)
        elif given.endpoint_url:
            raise errors.invalid(
                "endpoint_url",
                f"{self.key} is an inbound provider and takes no endpoint_url",
                reason="NOT_ALLOWED_FOR_PROVIDER",
            )


YOOZ = Provider("yooz", INBOUND, needs_endpoint=False, needs_webhook_secret=False)
WEBHOOK = Provider("webhook", OUTBOUND, needs_endpoint=True, needs_webhook_secret=True)
PROVIDERS: Mapping[str, Provider] = MappingProxyType({p.key: p for p in (YOOZ, WEBHOOK)})


def get(key: str) -> Provider:
    if key == "":
        raise errors.invalid("provider", "is required", reason="REQUIRED")
    provider = PROVIDERS.get(key)
    if provider is None:
        shown = key[:64].encode("unicode_escape").decode("ascii")
        raise errors.invalid(
            "provider",
            f"unknown provider {shown!r}; known: {', '.join(sorted(PROVIDERS))}",
            reason="UNKNOWN_PROVIDER",
            provider=shown,
        )
    return provider


def check_api_key(value: Secret) -> None:
    """Sent as `Authorization: Bearer <api_key>`: 1..4096 visible ASCII characters.
    The error never quotes the value."""
    text = value.reveal()
    if not 0 < len(text) <= MAX_SECRET or not all("!" <= ch <= "~" for ch in text):
        raise errors.invalid(
            "api_key",
            f"must be 1..{MAX_SECRET} visible ASCII characters (no spaces)",
            reason="INVALID_API_KEY",
        )


def check_webhook_secret(value: Secret) -> None:
    """Standard Webhooks: `whsec_` + base64 of 24..64 bytes, or any other 1..4096
    printable characters (used as UTF-8 bytes). The error never quotes the value."""
    text = value.reveal()
    if len(text) > MAX_SECRET or not text.isprintable():
        raise errors.invalid(
            "webhook_secret",
            f"must be 1..{MAX_SECRET} printable characters",
            reason="INVALID_WEBHOOK_SECRET",
        )
    if text.startswith(WHSEC) and not 24 <= len(webhooks.key(value)) <= 64:
        raise errors.invalid(
            "webhook_secret",
            "a whsec_ secret must be whsec_ + base64 of 24..64 bytes",
            reason="INVALID_WEBHOOK_SECRET",
        )


def check_endpoint_url(url: str, allow_loopback_http: bool) -> None:
    """https (or http to a loopback host when the dev setting allows it), a host, no user
    info, no fragment; never an IP literal of a private, link-local or reserved network.
    (Names are resolved and checked again at delivery time: DNS can change.)"""

    def bad(description: str, reason: str = "INVALID_ENDPOINT_URL") -> errors.DomainError:
        return errors.invalid("endpoint_url", description, reason=reason)

    if url == "":
        raise errors.invalid("endpoint_url", "is required for webhook", reason="REQUIRED")
    if len(url) > MAX_URL or any(ch.isspace() or not ch.isprintable() for ch in url):
        raise bad(f"must be at most {MAX_URL} printable characters without spaces")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise bad("is not a valid URL") from None
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme not in ("https", "http") or not host:
        raise bad("must be an https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise bad("must not carry user info (put credentials in api_key)")
    if parts.fragment or url.endswith("#"):
        raise bad("must not have a fragment")
    if port == 0:
        raise bad("port 0 is not a port")
    loopback = host == "localhost" or host.endswith(".localhost") or _ip_is(host, "loopback")
    if parts.scheme == "http" and not (loopback and allow_loopback_http):
        raise bad("must use https (http only to a loopback host in development)", "INSECURE_URL")
    if loopback and not allow_loopback_http:
        raise bad("must not point at this machine", "FORBIDDEN_HOST")
    if not loopback and _ip_is(host, "internal"):
        raise bad("must not point at a private, link-local or reserved address", "FORBIDDEN_HOST")


_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names without DNS: dotted-quad and IPv6, and also the forms the
    URL standard and getaddrinfo read as IPv4 (`2130706433`, `0x7f000001`, `127.1`,
    `0177.0.0.1`): a host whose last label is a number is an IPv4 address or invalid."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if not _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        raise errors.invalid(
            "endpoint_url",
            "has a host that is neither a name nor an IPv4 address",
            reason="INVALID_ENDPOINT_URL",
        ) from None


def _ip_is(host: str, what: str) -> bool:
    ip = ip_literal(host)
    if ip is None:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if what == "loopback":
        return ip.is_loopback
    return (
        ip.is_private
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
        or ip.is_loopback
    )
