"""Path templates of `google.api.http` rules: parse them, compile them, match raw paths.

The template grammar is google/api/http.proto's:

    Template  = "/" Segments [ ":" Verb ] ;
    Segments  = Segment { "/" Segment } ;
    Segment   = "*" | "**" | LITERAL | Variable ;
    Variable  = "{" FieldPath [ "=" Segments ] "}" ;      {id} is {id=*}
    FieldPath = IDENT { "." IDENT } ;
    Verb      = LITERAL ;

`*` matches one segment, `**` zero or more (only as the last segment, before the verb).
A variable cannot contain another variable.

Matching is done on the raw, still percent-encoded path (pain point #4 of the gateway notes:
a `%2F` or `%3A` inside an id must not change the route):

- The path is split on "/" first, then each segment is percent-decoded (UTF-8, strictly:
  a path that does not decode matches nothing). Literals compare with decoded segments.
- A variable over exactly one segment decodes everything, so `%2F` becomes "/" in its
  value. A multi-segment variable (`{p=**}`, `{name=shelves/*}`) decodes everything except
  `%2F`/`%2f`, which stay as they are, and joins its segments with "/" (http.proto's rule).
- Empty segments ("//", a trailing "/") match neither a literal nor a wildcard, so
  "/v1/invoices/" is not "/v1/invoices".
- The custom verb is the last segment's text after its last unencoded ":". It counts as a
  verb only if a template (of any HTTP method) declaring that verb matches the rest of the
  path; otherwise the ":" is part of the segment ("/v1/invoices/a:b" has the id "a:b").
  An encoded ":" (`%3A`) is always data; the verb itself is compared decoded, like literals.

Precedence, when several templates match a path:

1. Verb: the verb decision above comes first, so a template with the verb always beats
   one without it (they never compete: once ":x" is a verb, verb-less templates are out).
2. More literal segments (counting literals inside variables) win: "/v1/things/special"
   beats "/v1/things/{id}".
3. Fewer wildcards win, a `**` being less specific than any number of `*`: "/v1/files/{name}"
   beats "/v1/files/{path=**}".
4. Declaration order (the order of the bindings given to the Router) breaks the last ties.

Only the bindings of the request's HTTP method compete; when the path matches bindings of
other methods only, `MethodNotAllowed` lists them (HEAD and OPTIONS are not special).
Templates are compiled once: those without `**` are indexed by (verb, segment count) and
then by the positions and texts of their literals, so a lookup is one dict probe per
distinct literal layout and only checks the wildcards of templates whose literals already
match; `**` templates (rare) are tried one by one. Everything is linear in segments.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from service.gateway.bindings import Binding

SegmentKind = Literal["literal", "*", "**"]

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_FIELD_PATH = re.compile(rf"{_IDENT}(?:\.{_IDENT})*")
_LITERAL = re.compile(r"[A-Za-z0-9\-._~!$&'()+,;=@]+")  # RFC 3986 pchar without ":" "%" "*"
_LITERAL_HELP = "letters, digits and -._~!$&'()+,;=@"
_ENCODED_SLASH = re.compile(r"(%2[fF])")


class TemplateError(ValueError):
    """A path template that http.proto's grammar does not allow."""


@dataclass(frozen=True)
class Segment:
    """A literal, "*" (exactly one path segment) or "**" (zero or more path segments)."""

    kind: SegmentKind
    text: str  # the literal itself, or "*" / "**"


_STAR = Segment("*", "*")
_DOUBLE_STAR = Segment("**", "**")


@dataclass(frozen=True)
class Variable:
    """`{field.path=segments}`: binds the path segments it covers to a request field."""

    field_path: str
    segments: tuple[Segment, ...] = (_STAR,)

    @property
    def single_segment(self) -> bool:
        """Covers exactly one path segment, so its value is decoded completely."""
        return len(self.segments) == 1 and self.segments[0].kind != "**"


@dataclass(frozen=True)
class Template:
    """A parsed template: top-level segments (variables included), verb, variables."""

    segments: tuple[Segment | Variable, ...]
    verb: str | None
    variables: tuple[Variable, ...]

    def flat(self) -> tuple[Segment, ...]:
        """The segments with every variable replaced by its own sub-segments."""
        return tuple(
            part
            for segment in self.segments
            for part in (segment.segments if isinstance(segment, Variable) else (segment,))
        )


def parse_template(template: str) -> Template:
    """Parse an http.proto path template; TemplateError says what is wrong and where."""
    try:
        if not template.startswith("/"):
            raise TemplateError("a template must start with '/'")
        parts, verb = _scan(template[1:])
        segments = tuple(_parse_segment(part) for part in parts)
        variables = tuple(s for s in segments if isinstance(s, Variable))
        result = Template(segments, verb, variables)
        _check(result)
    except TemplateError as error:
        raise TemplateError(f"path template {template!r}: {error}") from None
    return result


def _scan(text: str) -> tuple[list[str], str | None]:
    """Split at each "/" outside braces; a ":" outside braces starts the verb."""
    parts: list[str] = []
    depth, start = 0, 0
    for i, char in enumerate(text):
        if char == "{":
            depth += 1
            if depth > 1:
                raise TemplateError("nested braces: a variable cannot contain a variable")
        elif char == "}":
            depth -= 1
            if depth < 0:
                raise TemplateError("'}' without a matching '{'")
        elif depth == 0 and char in "/:":
            parts.append(text[start:i])
            if char == ":":
                return parts, _parse_verb(text[i + 1 :])
            start = i + 1
    if depth:
        raise TemplateError("'{' without a matching '}'")
    return [*parts, text[start:]], None


def _parse_verb(text: str) -> str:
    if not _LITERAL.fullmatch(text):
        raise TemplateError(
            f"the verb {text!r} after ':' must end the template and be a non-empty literal "
            f"of {_LITERAL_HELP}"
        )
    return text


def _parse_segment(text: str) -> Segment | Variable:
    if text.startswith("{") and text.endswith("}") and "{" not in text[1:-1]:
        return _parse_variable(text[1:-1])
    if "{" in text or "}" in text:
        raise TemplateError(f"segment {text!r}: a variable must be a whole segment")
    return _parse_plain(text)


def _parse_plain(text: str) -> Segment:
    if not text:
        raise TemplateError("empty segment (a '//', a trailing '/' or nothing after '/')")
    if text in ("*", "**"):
        return _STAR if text == "*" else _DOUBLE_STAR
    if not _LITERAL.fullmatch(text):
        raise TemplateError(f"literal segment {text!r} may only contain {_LITERAL_HELP}")
    return Segment("literal", text)


def _parse_variable(inner: str) -> Variable:
    field_path, equals, sub_template = inner.partition("=")
    if not field_path:
        raise TemplateError(f"empty field path in variable {{{inner}}}")
    if not _FIELD_PATH.fullmatch(field_path):
        raise TemplateError(f"invalid field path {field_path!r} (want ident(.ident)*)")
    if not equals:
        return Variable(field_path)
    if not sub_template:
        raise TemplateError(f"variable {field_path!r}: empty template after '='")
    return Variable(field_path, tuple(_parse_plain(part) for part in sub_template.split("/")))


def _check(template: Template) -> None:
    flat = template.flat()
    if any(segment.kind == "**" for segment in flat[:-1]):
        raise TemplateError("'**' must be the last segment (only the verb may follow it)")
    seen: set[str] = set()
    for variable in template.variables:
        if variable.field_path in seen:
            raise TemplateError(f"field path {variable.field_path!r} is bound twice")
        seen.add(variable.field_path)


class RouteNotFound(Exception):
    """No template of any HTTP method matches the path (a 404)."""

    def __init__(self, method: str, raw_path: str) -> None:
        super().__init__(f"no route for {method} {raw_path}")
        self.method = method
        self.raw_path = raw_path


class MethodNotAllowed(Exception):
    """The path matches templates, but only of other HTTP methods (a 405)."""

    allowed: tuple[str, ...]  # sorted, for the Allow header

    def __init__(self, method: str, raw_path: str, allowed: Iterable[str]) -> None:
        self.method = method
        self.raw_path = raw_path
        self.allowed = tuple(sorted(set(allowed)))
        super().__init__(
            f"{method} is not allowed on {raw_path}; allowed: {', '.join(self.allowed)}"
        )


@dataclass(frozen=True)
class Match:
    """The binding a request resolved to, and its path variables (field path -> value)."""

    binding: Binding
    variables: dict[str, str]


@dataclass(frozen=True)
class _Path:
    """A request path split on "/", raw and fully decoded, segment by segment."""

    raw: tuple[str, ...]
    decoded: tuple[str, ...]

    @staticmethod
    def of(raw: tuple[str, ...]) -> _Path | None:
        """None when a segment is not valid percent-encoded UTF-8."""
        try:
            return _Path(raw, tuple(unquote(segment, errors="strict") for segment in raw))
        except UnicodeDecodeError:
            return None

    def with_last(self, raw: str) -> _Path:
        """The path with another last segment, a piece of a segment that decoded."""
        return _Path((*self.raw[:-1], raw), (*self.decoded[:-1], unquote(raw)))


def _keep_encoded_slashes(raw: str) -> str:
    """Decode a segment for a multi-segment variable: everything but `%2F` / `%2f`."""
    pieces = _ENCODED_SLASH.split(raw)
    return "".join(p if i % 2 else unquote(p, errors="strict") for i, p in enumerate(pieces))


@dataclass(frozen=True)
class _Capture:
    """Where a variable sits in a matched path."""

    field_path: str
    start: int
    stop: int | None  # None: up to the end of the path (the variable ends in "**")
    single: bool

    def value(self, path: _Path) -> str:
        if self.single:
            return path.decoded[self.start]
        return "/".join(_keep_encoded_slashes(s) for s in path.raw[self.start : self.stop])


@dataclass(frozen=True)
class _Route:
    """A compiled binding: where its literals and wildcards sit, and its captures."""

    binding: Binding
    size: int  # the path segments before a trailing "**" (all of them without one)
    tail: bool  # the template ends in "**": the path may have more than `size` segments
    verb: str | None
    literal_at: tuple[int, ...]  # positions of the literal segments
    literals: tuple[str, ...]  # and their texts
    wildcard_at: tuple[int, ...]  # positions of the "*" segments
    captures: tuple[_Capture, ...]
    rank: tuple[int, int, int, int]  # the precedence; the smallest wins

    def fits(self, decoded: tuple[str, ...]) -> bool:
        """The right number of segments, none empty where a wildcard is (not the literals)."""
        if len(decoded) < self.size or (not self.tail and len(decoded) != self.size):
            return False
        return all(decoded[i] for i in self.wildcard_at) and all(decoded[self.size :])

    def literals_match(self, decoded: tuple[str, ...]) -> bool:
        return tuple(decoded[i] for i in self.literal_at) == self.literals

    def variables(self, path: _Path) -> dict[str, str]:
        return {capture.field_path: capture.value(path) for capture in self.captures}


def _captures(template: Template) -> tuple[_Capture, ...]:
    captures: list[_Capture] = []
    position = 0
    for segment in template.segments:
        if isinstance(segment, Variable):
            end = position + len(segment.segments)
            stop = None if segment.segments[-1].kind == "**" else end
            captures.append(_Capture(segment.field_path, position, stop, segment.single_segment))
            position = end
        else:
            position += 1
    return tuple(captures)


def _compile(binding: Binding, order: int) -> _Route:
    try:
        template = parse_template(binding.template)
    except TemplateError as error:
        raise TemplateError(f"{binding.rpc.full_name} ({binding.method}): {error}") from None
    flat = template.flat()
    tail = flat[-1].kind == "**"
    literal_at = tuple(i for i, segment in enumerate(flat) if segment.kind == "literal")
    wildcard_at = tuple(i for i, segment in enumerate(flat) if segment.kind == "*")
    rank = (-len(literal_at), int(tail), len(wildcard_at), order)
    literals = tuple(flat[i].text for i in literal_at)
    size = len(flat) - 1 if tail else len(flat)
    captures = _captures(template)
    return _Route(
        binding, size, tail, template.verb, literal_at, literals, wildcard_at, captures, rank
    )


class _Bucket:
    """The routes without "**" of one (verb, segment count), by where their literals are."""

    def __init__(self) -> None:
        self._groups: dict[tuple[int, ...], dict[tuple[str, ...], list[_Route]]] = {}

    def add(self, route: _Route) -> None:
        by_literals = self._groups.setdefault(route.literal_at, {})
        by_literals.setdefault(route.literals, []).append(route)

    def candidates(self, decoded: tuple[str, ...]) -> list[_Route]:
        """The routes whose literals all equal the path's segments at their positions."""
        return [
            route
            for at, by_literals in self._groups.items()
            for route in by_literals.get(tuple(decoded[i] for i in at), ())
        ]


class Router:
    """Resolves (HTTP method, raw path) to a binding; see the module docstring for the rules."""

    def __init__(self, bindings: Iterable[Binding]) -> None:
        self._buckets: dict[tuple[str | None, int], _Bucket] = {}
        self._tails: dict[str | None, list[_Route]] = {}
        self._verbs: set[str] = set()
        for order, binding in enumerate(bindings):
            self._add(_compile(binding, order))

    def _add(self, route: _Route) -> None:
        if route.tail:
            self._tails.setdefault(route.verb, []).append(route)
        else:
            self._buckets.setdefault((route.verb, route.size), _Bucket()).add(route)
        if route.verb is not None:
            self._verbs.add(route.verb)

    def match(self, method: str, raw_path: str) -> Match:
        """`raw_path` is still percent-encoded and has no query string."""
        path, routes = self._find(raw_path)
        if path is None or not routes:
            raise RouteNotFound(method, raw_path)
        own = [route for route in routes if route.binding.method == method]
        if not own:
            raise MethodNotAllowed(method, raw_path, (route.binding.method for route in routes))
        best = min(own, key=lambda route: route.rank)
        return Match(best.binding, best.variables(path))

    def _find(self, raw_path: str) -> tuple[_Path | None, list[_Route]]:
        """The matching routes of every method, and the path as they read it."""
        path = _Path.of(tuple(raw_path[1:].split("/"))) if raw_path.startswith("/") else None
        if path is None:
            return None, []
        with_verb = self._split_verb(path)
        if with_verb is not None:
            routes = self._routes(*with_verb)
            if routes:
                return with_verb[0], routes
        return path, self._routes(path, None)

    def _split_verb(self, path: _Path) -> tuple[_Path, str] | None:
        """The path without ":verb", if its last segment ends in a declared verb."""
        stem, colon, verb = path.raw[-1].rpartition(":")
        if not colon or unquote(verb) not in self._verbs:
            return None
        return path.with_last(stem), unquote(verb)

    def _routes(self, path: _Path, verb: str | None) -> list[_Route]:
        decoded = path.decoded
        bucket = self._buckets.get((verb, len(decoded)))
        fixed = bucket.candidates(decoded) if bucket is not None else []
        tails = [r for r in self._tails.get(verb, ()) if r.fits(decoded)]
        return [
            *(r for r in fixed if r.fits(decoded)),
            *(r for r in tails if r.literals_match(decoded)),
        ]
