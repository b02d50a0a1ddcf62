"""The per-process objects a module's servicers, routes and tasks are built with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from service.edge.calls import Calls
from service.edge.modules import Module
from service.kit import db
from service.kit.deps import Deps


@dataclass(frozen=True)
class Runtime:
    calls: Calls
    deps: Deps
    database: db.Database
    modules: Sequence[Module] = ()
