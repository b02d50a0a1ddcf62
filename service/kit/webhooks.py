"""Standard Webhooks signing (PROVIDERS.md): HMAC-SHA256 over `id.timestamp.body`, the key
being the base64 decoding after `whsec_` (else the secret's UTF-8 bytes), sent as
`v1,<base64>`. Used to verify inbound webhooks and to sign outbound deliveries."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from service.kit.keyring import Secret


def key(secret: Secret) -> bytes:
    text = secret.reveal()
    if text.startswith("whsec_"):
        try:
            return base64.b64decode(text[len("whsec_") :], validate=True)
        except (binascii.Error, ValueError):
            return b""
    return text.encode()


def digest(secret: Secret, message_id: str, timestamp: int | str, body: bytes) -> bytes:
    content = f"{message_id}.{timestamp}.".encode() + body
    return hmac.new(key(secret), content, hashlib.sha256).digest()


def signature(secret: Secret, message_id: str, timestamp: int, body: bytes) -> str:
    return "v1," + base64.b64encode(digest(secret, message_id, timestamp, body)).decode()


def headers(secret: Secret, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }
