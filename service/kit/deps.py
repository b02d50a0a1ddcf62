"""What use cases need from the process besides the connection and the principal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from service.kit.config import Settings
from service.kit.keyring import KeyRing
from service.kit.pagination import CursorCodec


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Deps:
    """Configuration and shared services; one per process, built by `app.py`."""

    cursors: CursorCodec
    settings: Settings = field(default_factory=Settings)
    clock: Callable[[], datetime] = utcnow
    keys: KeyRing = field(default_factory=KeyRing.ephemeral)

    def now(self) -> datetime:
        return self.clock()

    def today(self) -> date:
        return self.clock().date()
