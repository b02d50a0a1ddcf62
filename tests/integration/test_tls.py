"""TLS and mutual TLS on a real port, with certificates made for the test."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from invoicing.v1 import invoices_pb2, invoices_pb2_grpc

from service import app
from service.kit import config
from tests.conftest import Database, Tokens


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
        )
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


@dataclasses.dataclass
class Pki:
    ca: bytes
    server_cert: Path
    server_key: Path
    client_cert: bytes
    client_key: bytes
    ca_file: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    ca_key = _key()
    ca = _cert("test-ca", ca_key, None, ca=True)
    server_key, client_key = _key(), _key()
    server = _cert("localhost", server_key, (ca, ca_key))
    client = _cert("client", client_key, (ca, ca_key))
    pem = serialization.Encoding.PEM
    (root / "server.pem").write_bytes(server.public_bytes(pem))
    (root / "server.key").write_bytes(_pem_key(server_key))
    (root / "ca.pem").write_bytes(ca.public_bytes(pem))
    return Pki(
        ca=ca.public_bytes(pem),
        server_cert=root / "server.pem",
        server_key=root / "server.key",
        client_cert=client.public_bytes(pem),
        client_key=_pem_key(client_key),
        ca_file=root / "ca.pem",
    )


async def _check(target: str, credentials: grpc.ChannelCredentials) -> int:
    options = (("grpc.ssl_target_name_override", "localhost"),)
    async with grpc.aio.secure_channel(target, credentials, options=options) as channel:
        response = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        return int(response.status)


async def test_tls_serves_health_and_rpcs_when_a_certificate_is_configured(
    settings: config.Settings, database: Database, pki: Pki, tokens: Tokens
) -> None:
    tls = dataclasses.replace(settings, tls_cert_file=pki.server_cert, tls_key_file=pki.server_key)
    running = await app.start(tls, database.app_url)
    target = f"127.0.0.1:{running.port}"
    try:
        creds = grpc.ssl_channel_credentials(root_certificates=pki.ca)
        assert await _check(target, creds) == health_pb2.HealthCheckResponse.SERVING
        options = (("grpc.ssl_target_name_override", "localhost"),)
        async with grpc.aio.secure_channel(target, creds, options=options) as channel:
            stub = invoices_pb2_grpc.InvoiceServiceStub(channel)
            page = await stub.ListInvoices(
                invoices_pb2.ListInvoicesRequest(), metadata=tokens.md(uuid.uuid4())
            )
            assert list(page.data) == []
        async with grpc.aio.insecure_channel(target) as plain:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await health_pb2_grpc.HealthStub(plain).Check(
                    health_pb2.HealthCheckRequest(), timeout=2
                )
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await app.stop(running, grace=0)


async def test_mutual_tls_requires_a_client_certificate_signed_by_the_ca(
    settings: config.Settings, database: Database, pki: Pki
) -> None:
    mtls = dataclasses.replace(
        settings,
        tls_cert_file=pki.server_cert,
        tls_key_file=pki.server_key,
        tls_client_ca_file=pki.ca_file,
    )
    running = await app.start(mtls, database.app_url)
    target = f"127.0.0.1:{running.port}"
    try:
        with_cert = grpc.ssl_channel_credentials(
            root_certificates=pki.ca,
            private_key=pki.client_key,
            certificate_chain=pki.client_cert,
        )
        assert await _check(target, with_cert) == health_pb2.HealthCheckResponse.SERVING
        without = grpc.ssl_channel_credentials(root_certificates=pki.ca)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _check(target, without)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await app.stop(running, grace=0)
