"""Key rotation for connection secrets: `python -m service.connections.rotation <command>`.

    status           the ring's keys and how many stored secrets each one seals
    rotate           add a key to the ring file as the primary, then re-encrypt every
                     stored secret under it (if a previous rotation did not finish, it
                     resumes that one instead of adding another key)
    rewrap           only re-encrypt what is not under the primary yet (after the ring
                     was changed by hand, e.g. a SECRETS_KEYRING variable)
    retire KID       remove a key from the ring file; refused while any secret uses it

Online: running services re-read the ring file within a second (and at once when they meet
a key id they do not hold), so they open re-encrypted secrets and seal new ones under the
new key; rows are re-encrypted in short batches (`FOR UPDATE SKIP LOCKED`, one transaction
each), never changing a row's version, so readers and writers carry on. Resumable and
idempotent: each batch commits on its own, and a rerun continues where a crash left off.

It connects as the migrations do (MIGRATION_DATABASE_URL, else DATABASE_URL, else the
embedded database) and needs a role that bypasses row-level security (it reads every
tenant's rows; like pg_dump, it refuses to run otherwise rather than see nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from dataclasses import dataclass, field

import asyncpg

from service.connections.rules import SECRET_FIELDS, secret_context
from service.kit import config, db, devdb, ids, keyring
from service.kit.keyring import KeyRing, Sealed, SecretUnavailable

_PENDING = (
    "SELECT tenant_id, id, api_key_kid, api_key_sealed, webhook_secret_kid,"
    " webhook_secret_sealed FROM connections"
    " WHERE (api_key_kid <> $1 OR webhook_secret_kid <> $1) AND id <> ALL($2::uuid[])"
    " ORDER BY tenant_id, id LIMIT $3 FOR UPDATE SKIP LOCKED"
)
_REMAINING = (
    "SELECT count(*) FROM connections"
    " WHERE (api_key_kid <> $1 OR webhook_secret_kid <> $1) AND id <> ALL($2::uuid[])"
)
_UPDATE = (
    "UPDATE connections SET api_key_kid = $3, api_key_sealed = $4,"
    " webhook_secret_kid = $5, webhook_secret_sealed = $6"
    " WHERE tenant_id = $1 AND id = $2"
)
_COUNTS = (
    "SELECT kid, count(*) FROM ("
    " SELECT api_key_kid AS kid FROM connections WHERE api_key_kid IS NOT NULL"
    " UNION ALL SELECT webhook_secret_kid FROM connections WHERE webhook_secret_kid IS NOT NULL"
    ") s GROUP BY kid ORDER BY kid"
)


@dataclass
class Report:
    secrets: int = 0
    rows: int = 0
    batches: int = 0
    seconds: float = 0.0
    unreadable: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.secrets / self.seconds if self.seconds else 0.0


async def check_role(conn: asyncpg.Connection) -> None:
    bypass = await conn.fetchval(
        "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
    )
    if not bypass:
        raise SystemExit(
            "key rotation reads every tenant's connections: connect with a role that has "
            "BYPASSRLS (MIGRATION_DATABASE_URL), as pg_dump needs"
        )
    # Fail rather than silently see no rows if the role could not bypass after all.
    await conn.execute("SET row_security = off")


async def counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {row["kid"]: row["count"] for row in await conn.fetch(_COUNTS)}


async def rewrap(
    conn: asyncpg.Connection,
    keys: KeyRing,
    *,
    batch: int = 100,
    pause: float = 0.0,
) -> Report:
    """Re-encrypt every secret not under the ring's primary, batch by batch, until none is
    left (secrets that cannot be opened are reported and left as they are)."""
    report = Report()
    skipped: list[uuid.UUID] = []
    started = time.perf_counter()
    while True:
        primary = keys.primary
        async with conn.transaction():
            rows = await conn.fetch(_PENDING, primary, skipped, batch)
            for row in rows:
                values = []
                failed = False
                for name in SECRET_FIELDS:
                    kid, blob = row[f"{name}_kid"], row[f"{name}_sealed"]
                    if kid is None or kid == primary:
                        values += [kid, blob]
                        continue
                    context = secret_context(row["tenant_id"], row["id"], name)
                    try:
                        plain = keys.open(Sealed(kid, bytes(blob)), context)
                    except SecretUnavailable as exc:
                        public = ids.encode_id(ids.PREFIXES["connection"], row["id"])
                        report.unreadable.append(f"{public} {name}: {exc.reason}")
                        failed = True
                        break
                    sealed = keys.seal(plain, context)
                    values += [sealed.kid, sealed.blob]
                    report.secrets += 1
                if failed:
                    skipped.append(row["id"])
                    continue
                await conn.execute(_UPDATE, row["tenant_id"], row["id"], *values)
                report.rows += 1
        if rows:
            report.batches += 1
            if pause:
                await asyncio.sleep(pause)
            continue
        # Nothing free to take: done, unless rows are locked by a writer right now (or were
        # written under the old primary by a service that had not re-read the ring yet).
        if await conn.fetchval(_REMAINING, keys.primary, skipped) == 0:
            break
        await asyncio.sleep(0.05)
    report.seconds = time.perf_counter() - started
    return report


def _print_report(report: Report, primary: str) -> None:
    print(
        f"re-encrypted {report.secrets} secrets in {report.rows} connections under {primary} "
        f"in {report.seconds:.2f} s ({report.per_second:,.0f}/s, {report.batches} batches)"
    )
    for line in report.unreadable:
        print(f"  cannot open {line}; left as it is", file=sys.stderr)


async def _run(args: argparse.Namespace) -> int:
    settings = config.load()
    keys = KeyRing.from_settings(settings)
    urls = devdb.resolve(settings)
    conn = await asyncpg.connect(db.plain_url(urls.admin))
    try:
        await check_role(conn)
        in_use = await counts(conn)
        if args.command == "status":
            source = keys.path or "SECRETS_KEYRING"
            print(f"key ring: {source}; primary {keys.primary}")
            for kid in sorted(set(keys.kids) | set(in_use)):
                held = "in the ring" if kid in keys.kids else "NOT IN THE RING"
                print(f"  {kid}: {in_use.get(kid, 0)} secrets ({held})")
            return 0
        if args.command == "retire":
            if keys.path is None:
                raise SystemExit("SECRETS_KEYRING is set: remove the key from it by hand")
            if in_use.get(args.kid, 0):
                raise SystemExit(
                    f"{in_use[args.kid]} secrets still use {args.kid}: run `rewrap` first"
                )
            keyring.remove_key(keys.path, args.kid)
            print(f"retired {args.kid}; the ring is {', '.join(keyring.read_file(keys.path).keys)}")
            return 0
        if args.command == "rotate":
            if keys.path is None:
                raise SystemExit(
                    "SECRETS_KEYRING is set: add the new key to it as the primary, restart "
                    "the services, then run `rewrap`"
                )
            behind = sum(n for kid, n in in_use.items() if kid != keys.primary)
            if behind:
                print(f"resuming: {behind} secrets are not under the primary {keys.primary} yet")
            else:
                kid = keyring.add_key(keys.path)
                keys = KeyRing.from_settings(settings)
                print(f"added {kid} as the primary key of {keys.path}")
        report = await rewrap(conn, keys, batch=args.batch)
        _print_report(report, keys.primary)
        return 1 if report.unreadable else 0
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status")
    for name in ("rotate", "rewrap"):
        command = sub.add_parser(name)
        command.add_argument("--batch", type=int, default=100, help="rows per transaction")
    retire = sub.add_parser("retire")
    retire.add_argument("kid")
    try:
        code = asyncio.run(_run(parser.parse_args()))
    except keyring.KeyRingError as exc:
        raise SystemExit(str(exc)) from None
    raise SystemExit(code)


if __name__ == "__main__":
    main()
