"""Server reflection that shows the proto comments (`grpcurl describe`).

Generated code carries no source info, and grpcio-reflection serializes files with
`CopyToProto`, which drops it: reflection answered so has no comments. The descriptor
set of `make generate` (`--include_source_info --include_imports`) has them, so the
files are served from it as they are (with their `source_code_info`), plus the health and
reflection services' own files. A method symbol (`Service.Method`) resolves to its
service's file (the pool alone cannot look methods up).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha._async import ReflectionServicer

DESCRIPTOR_SET = Path(__file__).resolve().parents[2] / "generated" / "invoicing_v1.binpb"


class Files:
    """FileDescriptorProtos by name, and a pool built from them."""

    def __init__(self, protos: Iterable[descriptor_pb2.FileDescriptorProto]) -> None:
        self.protos: dict[str, descriptor_pb2.FileDescriptorProto] = {}
        self.pool = descriptor_pool.DescriptorPool()
        for proto in protos:
            if proto.name not in self.protos:
                self.protos[proto.name] = proto
                self.pool.Add(proto)

    @classmethod
    def load(cls, descriptor_set: Path = DESCRIPTOR_SET) -> Files | None:
        if not descriptor_set.exists():
            return None
        protos = list(descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes()).file)
        for proto in protos:
            for message in proto.message_type:
                _proto_names(message)
        return cls([*protos, *_copied((health_pb2.DESCRIPTOR, reflection_pb2.DESCRIPTOR))])

    def serialized(self, file_name: str) -> list[bytes]:
        """The file and everything it imports, as served."""
        names: list[str] = []

        def visit(name: str) -> None:
            if name in names or name not in self.protos:
                return
            names.append(name)
            for dependency in self.protos[name].dependency:
                visit(dependency)

        visit(file_name)
        return [self.protos[name].SerializeToString() for name in names]


class CommentedReflection(ReflectionServicer):
    def __init__(self, service_names: Sequence[str], files: Files) -> None:
        super().__init__(service_names, pool=files.pool)
        self._files = files

    def _file_by_filename(self, request: Any, filename: str) -> Any:
        if filename not in self._files.protos:
            return _not_found(request)
        return _answer(request, self._files.serialized(filename))

    def _file_containing_symbol(self, request: Any, name: str) -> Any:
        for symbol in (name, name.rpartition(".")[0]):  # a method: its service's file
            try:
                file = self._files.pool.FindFileContainingSymbol(symbol)
            except KeyError:
                continue
            return _answer(request, self._files.serialized(file.name))
        return _not_found(request)


def _proto_names(message: descriptor_pb2.DescriptorProto) -> None:
    """Serve fields without `json_name`, as the default pool does: grpcurl then speaks
    the proto names (snake_case), like the REST gateway and the README."""
    for field in message.field:
        field.ClearField("json_name")
    for nested in message.nested_type:
        _proto_names(nested)


def _copied(files: Iterable[Any]) -> list[descriptor_pb2.FileDescriptorProto]:
    """Generated files and everything they import, dependencies first."""
    ordered: list[Any] = []

    def visit(file: Any) -> None:
        if file in ordered:
            return
        for dependency in file.dependencies:
            visit(dependency)
        ordered.append(file)

    for file in files:
        visit(file)
    protos = []
    for file in ordered:
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        protos.append(proto)
    return protos


def _answer(request: Any, serialized: list[bytes]) -> Any:
    return reflection_pb2.ServerReflectionResponse(
        file_descriptor_response=reflection_pb2.FileDescriptorResponse(
            file_descriptor_proto=serialized
        ),
        original_request=request,
    )


def _not_found(request: Any) -> Any:
    return reflection_pb2.ServerReflectionResponse(
        error_response=reflection_pb2.ErrorResponse(
            error_code=grpc.StatusCode.NOT_FOUND.value[0], error_message="not found"
        ),
        original_request=request,
    )


def enable(server: grpc.aio.Server, services: Sequence[str]) -> None:
    names = (*services, reflection.SERVICE_NAME, "grpc.health.v1.Health")
    files = Files.load()
    if files is None:  # no descriptor set: reflection without comments
        reflection.enable_server_reflection(names, server)
        return
    add: Any = reflection_pb2_grpc.add_ServerReflectionServicer_to_server  # untyped upstream
    add(CommentedReflection(names, files), server)
