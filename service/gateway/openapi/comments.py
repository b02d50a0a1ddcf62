"""Proto comments by element name, from a descriptor set built with source info."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from google.protobuf import descriptor_pb2

# ---- comments ------------------------------------------------------------------------------


def load_comments(descriptor_set_path: Path) -> dict[str, str]:
    """Leading comments by full name (message, field, enum, service, method) from a descriptor
    set built with --include_source_info. Enum values are keyed `<enum full name>.<VALUE>`."""
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set_path.read_bytes())
    comments: dict[str, str] = {}
    for file in descriptor_set.file:
        located = {tuple(loc.path): loc.leading_comments for loc in file.source_code_info.location}
        for path, name in _file_elements(file):
            text = _clean_comment(located.get(path, ""))
            if text:
                comments[name] = text
    return comments


def _clean_comment(text: str) -> str:
    lines = [line.removeprefix(" ").rstrip() for line in text.splitlines()]
    return "\n".join(lines).strip()


_FILE = descriptor_pb2.FileDescriptorProto
_MESSAGE = descriptor_pb2.DescriptorProto
_ENUM = descriptor_pb2.EnumDescriptorProto
_SERVICE = descriptor_pb2.ServiceDescriptorProto
_Path = tuple[int, ...]


def _file_elements(file: descriptor_pb2.FileDescriptorProto) -> Iterator[tuple[_Path, str]]:
    """(source_code_info path, full name) of every described element of a file."""
    prefix = f"{file.package}." if file.package else ""
    for i, message in enumerate(file.message_type):
        yield from _message_elements(message, (_FILE.MESSAGE_TYPE_FIELD_NUMBER, i), prefix)
    for i, enum in enumerate(file.enum_type):
        yield from _enum_elements(enum, (_FILE.ENUM_TYPE_FIELD_NUMBER, i), prefix)
    for i, service in enumerate(file.service):
        path, name = (_FILE.SERVICE_FIELD_NUMBER, i), prefix + service.name
        yield path, name
        for j, method in enumerate(service.method):
            yield (*path, _SERVICE.METHOD_FIELD_NUMBER, j), f"{name}.{method.name}"


def _message_elements(
    message: descriptor_pb2.DescriptorProto, path: _Path, prefix: str
) -> Iterator[tuple[_Path, str]]:
    name = prefix + message.name
    yield path, name
    for i, field in enumerate(message.field):
        yield (*path, _MESSAGE.FIELD_FIELD_NUMBER, i), f"{name}.{field.name}"
    for i, nested in enumerate(message.nested_type):
        yield from _message_elements(
            nested, (*path, _MESSAGE.NESTED_TYPE_FIELD_NUMBER, i), name + "."
        )
    for i, enum in enumerate(message.enum_type):
        yield from _enum_elements(enum, (*path, _MESSAGE.ENUM_TYPE_FIELD_NUMBER, i), name + ".")


def _enum_elements(
    enum: descriptor_pb2.EnumDescriptorProto, path: _Path, prefix: str
) -> Iterator[tuple[_Path, str]]:
    name = prefix + enum.name
    yield path, name
    for i, value in enumerate(enum.value):
        yield (*path, _ENUM.VALUE_FIELD_NUMBER, i), f"{name}.{value.name}"
