"""Weak etags over a row version (`W/"7"`), shared by every mutable resource."""

from __future__ import annotations

from service.kit import errors


def etag_of(version: int) -> str:
    return f'W/"{version}"'


def normalize_etag(etag: str) -> str:
    return etag.removeprefix("W/").strip('"')


def check(current: str, given: str, resource: str) -> None:
    """An empty `given` always passes; a stale one is ABORTED with the current etag."""
    if given and normalize_etag(given) != normalize_etag(current):
        raise errors.aborted(
            f"the {resource} changed since this etag was read", "ETAG_MISMATCH", etag=current
        )
