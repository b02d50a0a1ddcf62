"""Secrets at rest: AES-256-GCM under a versioned key ring.

A sealed secret is `(kid, nonce || ciphertext+tag)`: a fresh random 96-bit nonce per
encryption, and associated data that binds the ciphertext to what it belongs to (the
caller passes e.g. tenant, row, field), plus the key id, so a ciphertext copied to
another row, field or tenant does not decrypt.

The ring is `{"primary": "k2", "keys": {"k1": "<base64 32 bytes>", "k2": ...}}`, read from
`SECRETS_KEYRING` (the JSON itself), else `SECRETS_KEYRING_FILE`, else generated (0600)
into the data dir on first use for `make run`. New secrets are sealed under the primary;
any key of the ring opens. A file-backed ring is re-read when the file changes (checked at
most once a second, and at once when asked for a key id it does not hold), so a rotation
written by the rotation command reaches running services without a restart.

Plaintext secrets travel as `Secret`, whose repr is `Secret('***')`: printing, logging or
formatting one never shows it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets as random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from service.kit.config import ConfigError, Settings

KEY_BYTES = 32
NONCE_BYTES = 12
DEV_KEYRING_FILE = "secrets-keyring.json"
_RELOAD_EVERY_S = 1.0
_KID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


class KeyRingError(ConfigError):
    """The key ring cannot be loaded (its message names the source, never a key)."""


class SecretUnavailable(Exception):
    """A sealed secret cannot be opened: its key is not in the ring, or it does not
    decrypt (wrong key, tampered, or moved to another row)."""

    def __init__(self, kid: str, reason: str) -> None:
        super().__init__(f"secret under key {kid!r}: {reason}")
        self.kid = kid
        self.reason = reason


class Secret:
    """A plaintext secret that does not print."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(
            self._value.encode(), other._value.encode()
        )

    def __hash__(self) -> int:
        return hash(("Secret", hashlib.sha256(self._value.encode()).digest()))


@dataclass(frozen=True)
class Sealed:
    kid: str
    blob: bytes  # nonce || ciphertext || tag


@dataclass(frozen=True)
class Ring:
    primary: str
    keys: Mapping[str, bytes]


class KeyRing:
    def __init__(self, ring: Ring, *, path: Path | None = None) -> None:
        self._ring = ring
        self._path = path
        self._stamp = _stamp(path) if path is not None else None
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    # ---- construction ------------------------------------------------------------------

    @classmethod
    def from_env(cls, *, inline: str | None, file: Path | None, data_dir: Path) -> KeyRing:
        if inline:
            return cls(parse(inline, "SECRETS_KEYRING"))
        if file is not None:
            return cls(read_file(file), path=file)
        path = data_dir / DEV_KEYRING_FILE
        if not path.exists():
            create_file(path)
        return cls(read_file(path), path=path)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        return cls.from_env(
            inline=settings.secrets_keyring,
            file=settings.secrets_keyring_file,
            data_dir=settings.data_dir,
        )

    @classmethod
    def ephemeral(cls) -> KeyRing:
        """A one-key ring in memory (tests and tools that never store a secret)."""
        return cls(Ring("k1", {"k1": random.token_bytes(KEY_BYTES)}))

    # ---- use -----------------------------------------------------------------------------

    @property
    def primary(self) -> str:
        self._maybe_reload(force=False)
        return self._ring.primary

    @property
    def kids(self) -> tuple[str, ...]:
        self._maybe_reload(force=False)
        return tuple(self._ring.keys)

    @property
    def path(self) -> Path | None:
        return self._path

    def holds(self, kid: str) -> bool:
        if kid not in self._ring.keys:
            self._maybe_reload(force=True)
        return kid in self._ring.keys

    def seal(self, plaintext: Secret, context: bytes) -> Sealed:
        ring = self._current()
        kid = ring.primary
        nonce = random.token_bytes(NONCE_BYTES)
        ct = AESGCM(ring.keys[kid]).encrypt(nonce, plaintext.reveal().encode(), _aad(kid, context))
        return Sealed(kid, nonce + ct)

    def open(self, sealed: Sealed, context: bytes) -> Secret:
        if not self.holds(sealed.kid):
            raise SecretUnavailable(sealed.kid, "the key ring does not hold this key")
        key = self._ring.keys[sealed.kid]
        blob = bytes(sealed.blob)
        if len(blob) < NONCE_BYTES + 16:
            raise SecretUnavailable(sealed.kid, "the stored value is truncated")
        try:
            plain = AESGCM(key).decrypt(
                blob[:NONCE_BYTES], blob[NONCE_BYTES:], _aad(sealed.kid, context)
            )
        except InvalidTag:
            raise SecretUnavailable(
                sealed.kid, "it does not decrypt (another key under this id, or tampered)"
            ) from None
        return Secret(plain.decode())

    def fingerprint_keys(self) -> list[bytes]:
        """Keys for hashing requests that carry secrets (idempotency fingerprints), one per
        key of the ring, the primary's first: the hash of a secret is only computable
        with the ring, and a retry across a rotation still matches."""
        ring = self._current()
        order = [ring.primary, *(k for k in ring.keys if k != ring.primary)]
        return [_derive(ring.keys[kid], b"invoicing/idempotency-fingerprint") for kid in order]

    # ---- reloading -------------------------------------------------------------------------

    def _current(self) -> Ring:
        self._maybe_reload(force=False)
        return self._ring

    def _maybe_reload(self, *, force: bool) -> None:
        if self._path is None:
            return
        now = time.monotonic()
        if not force and now - self._checked < _RELOAD_EVERY_S:
            return
        with self._lock:
            self._checked = now
            stamp = _stamp(self._path)
            if stamp == self._stamp:
                return
            try:
                self._ring = read_file(self._path)
            except (KeyRingError, OSError):
                return  # keep the ring we have; the rotation command reports its own errors
            self._stamp = stamp


def _aad(kid: str, context: bytes) -> bytes:
    return b"invoicing/v1|" + kid.encode() + b"|" + context


def _derive(key: bytes, label: bytes) -> bytes:
    return hmac.new(key, label, hashlib.sha256).digest()


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


# ---- the ring's serialized form -----------------------------------------------------------


def parse(text: str, source: str) -> Ring:
    try:
        data = json.loads(text)
    except ValueError:
        raise KeyRingError(f"{source}: not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
        raise KeyRingError(f'{source}: expected {{"primary": ..., "keys": {{id: base64}}}}')
    keys: dict[str, bytes] = {}
    for kid, encoded in data["keys"].items():
        if not isinstance(kid, str) or not kid or not set(kid) <= _KID_CHARS or len(kid) > 32:
            raise KeyRingError(f"{source}: key ids are 1..32 of a-z 0-9 - _")
        try:
            material = base64.b64decode(str(encoded), validate=True)
        except (binascii.Error, ValueError):
            raise KeyRingError(f"{source}: key {kid} is not base64") from None
        if len(material) != KEY_BYTES:
            raise KeyRingError(f"{source}: key {kid} must be {KEY_BYTES} bytes")
        keys[kid] = material
    primary = data.get("primary")
    if primary not in keys:
        raise KeyRingError(f"{source}: primary must name one of the keys")
    return Ring(str(primary), keys)


def dump(ring: Ring) -> str:
    keys = {kid: base64.b64encode(material).decode() for kid, material in ring.keys.items()}
    return json.dumps({"primary": ring.primary, "keys": keys}, indent=2) + "\n"


def read_file(path: Path) -> Ring:
    try:
        text = path.read_text()
    except OSError as exc:
        raise KeyRingError(f"{path}: cannot be read ({exc.strerror})") from None
    return parse(text, str(path))


def write_file(path: Path, ring: Ring) -> None:
    """Replace the file atomically (readers see the old ring or the new one), 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(dump(ring))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def create_file(path: Path) -> None:
    """A new one-key ring; an existing file is never overwritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ring = Ring("k1", {"k1": random.token_bytes(KEY_BYTES)})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(dump(ring))
        f.flush()
        os.fsync(f.fileno())
    try:
        # Complete or absent: two processes starting at once agree on one ring.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def add_key(path: Path) -> str:
    """Add a fresh key to the file's ring and make it the primary; returns its id."""
    ring = read_file(path)
    numbers = [int(k[1:]) for k in ring.keys if k.startswith("k") and k[1:].isdigit()]
    kid = f"k{max(numbers, default=0) + 1}"
    keys = {**ring.keys, kid: random.token_bytes(KEY_BYTES)}
    write_file(path, Ring(kid, keys))
    return kid


def remove_key(path: Path, kid: str) -> None:
    ring = read_file(path)
    if kid == ring.primary:
        raise KeyRingError(f"{kid} is the primary key; rotate first")
    if kid not in ring.keys:
        raise KeyRingError(f"{path}: no key {kid}")
    write_file(path, Ring(ring.primary, {k: v for k, v in ring.keys.items() if k != kid}))
