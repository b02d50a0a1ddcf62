"""The modules of this process: every `service/<package>/module.py` that declares a
`MODULE` (see `service.edge.modules`). Adding a resource is adding its package; nothing
here or in `app.py` names one."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from sqlalchemy import MetaData

import service
from service.edge.modules import Module, Route, Task
from service.edge.pipeline import Method
from service.edge.runtime import Runtime
from service.kit import db, errors
from service.kit.errors import DomainError


def discover() -> list[Module]:
    """Every declared module, in package name order."""
    found = []
    for info in sorted(pkgutil.iter_modules(service.__path__), key=lambda i: i.name):
        if not info.ispkg or importlib.util.find_spec(f"service.{info.name}.module") is None:
            continue
        declared = getattr(importlib.import_module(f"service.{info.name}.module"), "MODULE", None)
        if isinstance(declared, Module):
            found.append(declared)
    _check(found)
    return found


def _check(modules: Sequence[Module]) -> None:
    names = [m.name for m in modules]
    tables = [t.name for m in modules for t in m.tables]
    tasks = [t.name for m in modules for t in m.tasks]
    constraints = [c for m in modules for c in m.errors]
    for what, values in (("module", names), ("table", tables), ("task", tasks)):
        duplicated = {v for v in values if values.count(v) > 1}
        if duplicated:
            raise RuntimeError(f"{what} declared twice: {', '.join(sorted(duplicated))}")
    if len(set(constraints)) != len(constraints):
        raise RuntimeError("a constraint is mapped by two modules")


def metadata() -> MetaData:
    """The shared metadata with every module's tables (for Alembic and the tests)."""
    modules = discover()
    declared = {t.name for m in modules for t in m.tables}
    undeclared = set(db.metadata.tables) - declared
    if undeclared:
        raise RuntimeError(f"tables no module declares: {', '.join(sorted(undeclared))}")
    return db.metadata


def methods(modules: Sequence[Module], runtime: Runtime) -> list[Method]:
    """Every rpc of every declared service, bound to the module that serves it; an rpc no
    module serves answers UNIMPLEMENTED, one served twice is a startup error."""
    served: dict[str, Method] = {}
    descriptors: dict[str, ServiceDescriptor] = {}
    for module in modules:
        for declared in module.services:
            descriptor = declared.descriptor
            descriptors[descriptor.full_name] = descriptor
            servicer = declared.servicer(runtime) if declared.servicer is not None else None
            for name, rpc in declared.rpcs.items():
                full = f"/{descriptor.full_name}/{name}"
                if full in served:
                    raise RuntimeError(f"{full} is served by two modules")
                behavior = getattr(servicer, name) if servicer is not None else _unimplemented(full)
                served[full] = _method(descriptor, name, rpc, behavior)
    for descriptor in descriptors.values():
        for name in descriptor.methods_by_name:
            if f"/{descriptor.full_name}/{name}" not in served:
                raise RuntimeError(f"no module declares {descriptor.full_name}.{name}")
    return list(served.values())


def _method(descriptor: ServiceDescriptor, name: str, rpc: Any, behavior: Any) -> Method:
    rpc_descriptor = descriptor.methods_by_name[name]
    request_cls: type[Message] = message_factory.GetMessageClass(rpc_descriptor.input_type)
    response_cls: type[Message] = message_factory.GetMessageClass(rpc_descriptor.output_type)
    return Method(
        full_name=f"/{descriptor.full_name}/{name}",
        name=name,
        rpc=rpc,
        request_cls=request_cls,
        response_cls=response_cls,
        behavior=behavior,
    )


def _unimplemented(full_name: str) -> Callable[[Any, Any], Any]:
    async def behavior(request: Any, context: Any) -> Any:
        raise errors.unimplemented(full_name.lstrip("/"))

    return behavior


def services(modules: Sequence[Module]) -> list[ServiceDescriptor]:
    """The declared gRPC services, once each, in declaration order."""
    seen: dict[str, ServiceDescriptor] = {}
    for module in modules:
        for declared in module.services:
            seen.setdefault(declared.descriptor.full_name, declared.descriptor)
    return list(seen.values())


def constraint_errors(
    modules: Sequence[Module],
) -> Mapping[str, Callable[[BaseException], DomainError]]:
    return {name: mapper for m in modules for name, mapper in m.errors.items()}


def tasks(modules: Sequence[Module]) -> list[Task]:
    return [task for m in modules for task in m.tasks]


def routes(modules: Sequence[Module]) -> list[Route]:
    return [route for m in modules for route in m.routes]
