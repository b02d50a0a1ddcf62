"""`make token TENANT=<uuid>`: print a dev token with every permission (last line)."""

from __future__ import annotations

import argparse
import uuid

from service.kit import auth, config

DEV_TENANT = uuid.UUID("00000000-0000-4000-8000-000000000001")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenant", type=uuid.UUID, default=DEV_TENANT)
    parser.add_argument("--app", default=None, help="app_id claim (integration key)")
    parser.add_argument("--subject", default="dev-user")
    args = parser.parse_args()
    settings = config.load()
    print(f"# dev token for tenant {args.tenant} (HS256, {settings.jwt_issuer}, 12 h)")
    print(
        auth.mint_dev_token(settings, tenant_id=args.tenant, app_id=args.app, subject=args.subject)
    )


if __name__ == "__main__":
    main()
