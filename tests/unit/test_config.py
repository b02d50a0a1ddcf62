"""Settings come from the environment; bad values fail naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.kit import config


def test_defaults_serve_plaintext_on_loopback_with_dev_hs256() -> None:
    s = config.load({})
    assert (s.grpc_host, s.grpc_port) == ("127.0.0.1", 50051)
    assert s.jwt_algorithms == ("HS256",)
    assert s.embedded_database
    assert s.grpc_reuseport is False
    assert s.tls_cert_file is None


def test_public_key_switches_default_algorithms_to_asymmetric() -> None:
    s = config.load({"AUTH_JWT_PUBLIC_KEY_FILE": "/keys/pub.pem"})
    assert s.jwt_algorithms == ("RS256", "ES256")
    assert s.jwt_public_key_file == Path("/keys/pub.pem")


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"GRPC_PORT": "http"}, "GRPC_PORT"),
        ({"DB_POOL_SIZE": "0"}, "DB_POOL_SIZE"),
        ({"GRPC_REUSEPORT": "maybe"}, "GRPC_REUSEPORT"),
        ({"IDEMPOTENCY_TTL_HOURS": "1"}, "IDEMPOTENCY_TTL_HOURS"),
        ({"TLS_CERT_FILE": "/c.pem"}, "TLS_CERT_FILE"),
        ({"TLS_CLIENT_CA_FILE": "/ca.pem"}, "TLS_CLIENT_CA_FILE"),
        ({"AUTH_JWT_ALGORITHMS": "HS256,RS256", "AUTH_JWKS_FILE": "/j"}, "AUTH_JWT_ALGORITHMS"),
        ({"AUTH_JWT_ALGORITHMS": "RS256"}, "AUTH_JWT_ALGORITHMS"),
        ({"AUTH_JWT_ALGORITHMS": "none"}, "AUTH_JWT_ALGORITHMS"),
        ({"AUTH_JWT_PUBLIC_KEY_FILE": "/a", "AUTH_JWKS_FILE": "/b"}, "AUTH_JWKS_FILE"),
    ],
)
def test_bad_settings_raise_config_error_naming_the_variable(
    env: dict[str, str], variable: str
) -> None:
    with pytest.raises(config.ConfigError) as err:
        config.load(env)
    assert variable in str(err.value)
