"""Secrets at rest: AES-256-GCM under a versioned key ring, bound to what they belong to."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.kit import config, keyring
from service.kit.keyring import KeyRing, Sealed, Secret, SecretUnavailable

CONTEXT = b"connections|tenant-a|row-1|api_key"


def _ring(tmp_path: Path) -> KeyRing:
    return KeyRing.from_env(inline=None, file=None, data_dir=tmp_path)


def test_a_sealed_secret_opens_with_its_context_only(tmp_path: Path) -> None:
    ring = _ring(tmp_path)
    sealed = ring.seal(Secret("sk_live_1"), CONTEXT)
    assert ring.open(sealed, CONTEXT).reveal() == "sk_live_1"
    assert b"sk_live_1" not in sealed.blob
    for other in (
        b"connections|tenant-b|row-1|api_key",  # another tenant
        b"connections|tenant-a|row-2|api_key",  # another row
        b"connections|tenant-a|row-1|webhook_secret",  # another field
    ):
        with pytest.raises(SecretUnavailable):
            ring.open(sealed, other)


@pytest.mark.parametrize("where", ["nonce", "ciphertext", "tag"])
def test_a_flipped_bit_anywhere_fails_closed(tmp_path: Path, where: str) -> None:
    ring = _ring(tmp_path)
    sealed = ring.seal(Secret("sk_live_1"), CONTEXT)
    index = {"nonce": 0, "ciphertext": keyring.NONCE_BYTES, "tag": len(sealed.blob) - 1}[where]
    blob = bytearray(sealed.blob)
    blob[index] ^= 0x01
    with pytest.raises(SecretUnavailable) as failure:
        ring.open(Sealed(sealed.kid, bytes(blob)), CONTEXT)
    assert "sk_live_1" not in str(failure.value)


def test_an_unknown_key_id_or_a_truncated_value_fails_closed(tmp_path: Path) -> None:
    ring = _ring(tmp_path)
    sealed = ring.seal(Secret("x"), CONTEXT)
    with pytest.raises(SecretUnavailable, match="does not hold"):
        ring.open(Sealed("k9", sealed.blob), CONTEXT)
    with pytest.raises(SecretUnavailable, match="truncated"):
        ring.open(Sealed(sealed.kid, sealed.blob[:20]), CONTEXT)


def test_ten_thousand_encryptions_never_repeat_a_nonce(tmp_path: Path) -> None:
    ring = _ring(tmp_path)
    nonces = {ring.seal(Secret("same"), CONTEXT).blob[: keyring.NONCE_BYTES] for _ in range(10_000)}
    assert len(nonces) == 10_000


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=300))
def test_any_text_round_trips(text: str) -> None:
    ring = KeyRing.ephemeral()
    assert ring.open(ring.seal(Secret(text), CONTEXT), CONTEXT).reveal() == text


def test_a_secret_never_prints(caplog: pytest.LogCaptureFixture) -> None:
    secret = Secret("sk_canary_print")
    shown = [repr(secret), str(secret), f"{secret}", f"{secret!r}", "%s" % (secret,)]  # noqa: UP031
    shown.append(repr([secret, {"k": secret}]))
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").warning("value %s %r", secret, secret)
    assert all("sk_canary_print" not in text for text in shown)
    assert "sk_canary_print" not in caplog.text
    assert secret == Secret("sk_canary_print") and secret != Secret("other")


def test_the_dev_ring_is_generated_once_private_and_kept(tmp_path: Path) -> None:
    first = _ring(tmp_path)
    path = tmp_path / keyring.DEV_KEYRING_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    sealed = first.seal(Secret("kept"), CONTEXT)
    again = _ring(tmp_path)  # a restart reads the same ring
    assert again.open(sealed, CONTEXT).reveal() == "kept"


def test_rotation_adds_a_primary_old_secrets_still_open_then_the_old_key_retires(
    tmp_path: Path,
) -> None:
    ring = _ring(tmp_path)
    path = tmp_path / keyring.DEV_KEYRING_FILE
    old = ring.seal(Secret("under-k1"), CONTEXT)
    assert keyring.add_key(path) == "k2"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # A running ring meets k2 for the first time: it re-reads the file at once.
    assert ring.holds("k2")
    time.sleep(1.05)  # and takes the new primary within a second
    assert ring.primary == "k2"
    new = ring.seal(Secret("under-k2"), CONTEXT)
    assert new.kid == "k2"
    assert ring.open(old, CONTEXT).reveal() == "under-k1"
    with pytest.raises(keyring.KeyRingError, match="primary"):
        keyring.remove_key(path, "k2")
    keyring.remove_key(path, "k1")
    fresh = KeyRing.from_env(inline=None, file=path, data_dir=tmp_path)
    assert fresh.kids == ("k2",)
    assert fresh.open(new, CONTEXT).reveal() == "under-k2"
    with pytest.raises(SecretUnavailable):
        fresh.open(old, CONTEXT)


def test_a_broken_ring_file_keeps_the_last_good_ring(tmp_path: Path) -> None:
    ring = _ring(tmp_path)
    path = tmp_path / keyring.DEV_KEYRING_FILE
    sealed = ring.seal(Secret("x"), CONTEXT)
    path.write_text("{not json")
    assert not ring.holds("k7")
    assert ring.open(sealed, CONTEXT).reveal() == "x"


def _material() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ('{"primary": "k1"}', "expected"),
        ('{"primary": "k1", "keys": {"k1": "%%%"}}', "not base64"),
        ('{"primary": "k1", "keys": {"k1": "AAAA"}}', "32 bytes"),
        ('{"primary": "k2", "keys": {"k1": "MATERIAL"}}', "primary"),
        ('{"primary": "K 1", "keys": {"K 1": "MATERIAL"}}', "key ids"),
    ],
)
def test_a_bad_ring_is_refused_naming_the_source_never_a_key(text: str, message: str) -> None:
    material = _material()
    with pytest.raises(keyring.KeyRingError, match=message) as failure:
        keyring.parse(text.replace("MATERIAL", material), "SECRETS_KEYRING")
    assert "SECRETS_KEYRING" in str(failure.value)
    assert material not in str(failure.value)


def test_the_ring_from_the_environment_and_settings_that_do_not_show_it() -> None:
    material = _material()
    inline = json.dumps({"primary": "k3", "keys": {"k3": material}})
    settings_ = config.load({"SECRETS_KEYRING": inline})
    assert material not in repr(settings_)
    ring = KeyRing.from_settings(settings_)
    assert ring.primary == "k3" and ring.path is None
    with pytest.raises(config.ConfigError, match="only one"):
        config.load({"SECRETS_KEYRING": inline, "SECRETS_KEYRING_FILE": "/x"})


def test_fingerprint_keys_put_the_primary_first_and_differ_per_key(tmp_path: Path) -> None:
    ring = _ring(tmp_path)
    before = ring.fingerprint_keys()
    keyring.add_key(tmp_path / keyring.DEV_KEYRING_FILE)
    assert ring.holds("k2")
    time.sleep(1.05)
    after = ring.fingerprint_keys()
    assert len(before) == 1 and len(after) == 2
    assert after[1] == before[0]  # the old key's fingerprint still matches old requests
    assert after[0] != before[0]
