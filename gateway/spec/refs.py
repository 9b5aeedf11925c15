"""Bundling: one document in which every `$ref` is an internal JSON pointer.

Later stages resolve a schema's `$ref` with `pointer.resolve(document, ref)` alone, so every reference is rewritten
here, in place, once:

- a reference into the same file stays as it is (`#/definitions/Pet`);
- each other file that is referenced is embedded whole under `#/x-gateway-bundle/files/<n>` (its name in
  `#/x-gateway-bundle/sources/<n>`), and references to it, or from inside it, point there
  (`Pet.json` -> `#/x-gateway-bundle/files/0`, `#/Error` inside that file -> `#/x-gateway-bundle/files/0/Error`);
- discriminator `mapping` values that are references (not bare schema names) are rewritten the same way;
- a reference to a JSON Schema `$id` (or `$anchor`) points at the schema carrying it; the `$id` keys are then
  dropped, since a `$id` would change the base a JSON Schema validator resolves the (now internal) refs against;
- a reference that cannot be resolved (missing file or pointer, a remote URL in a spec read from a file) points at
  a permissive placeholder `#/x-gateway-bundle/unresolved/<k>`, a schema `{"x-gateway-unresolved": reason}`, and is
  reported as a warning. `deref` reports the reason when a non-schema object (a parameter, a response) is needed.

Schemas are never inlined: a recursive schema stays a finite structure with a `$ref` to itself.

Only structural parts of the documents are searched for references: the values of `example`, `examples`,
`default`, `enum`, `const` and of extensions (`x-*`, except `x-ms-paths` and `x-ms-parameterized-host`) are data
(GitHub's examples hold SCIM payloads with literal `"$ref": "https://..."` keys, Azure's `x-ms-examples` point at
example files nobody needs). Keys of name maps (`properties`, `definitions`, `responses`, ...) are names, not
keywords: a property called `example` or `$id` is a schema like any other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

from gateway.errors import Diagnostic, SpecError
from gateway.spec import pointer
from gateway.spec.fetch import Fetcher, canonical, display

BUNDLE_KEY = "x-gateway-bundle"
UNRESOLVED_KEY = "x-gateway-unresolved"
_FILES_POINTER = f"#/{BUNDLE_KEY}/files/"
_UNRESOLVED_POINTER = f"#/{BUNDLE_KEY}/unresolved/"

_DATA_KEYS = frozenset({"example", "examples", "default", "enum", "const"})
_STRUCTURAL_EXTENSIONS = frozenset({"x-ms-paths", "x-ms-parameterized-host"})
_NAME_MAPS = frozenset(
    {
        "paths", "x-ms-paths", "webhooks", "callbacks", "pathItems", "responses", "parameters", "requestBodies",
        "headers", "content", "encoding", "links", "schemas", "securitySchemes", "securityDefinitions",
        "definitions", "$defs", "properties", "patternProperties", "dependentSchemas", "variables",
    }
)  # fmt: skip
_BARE_NAME = re.compile(r"[A-Za-z_][\w-]*")  # Swagger 1.2 style `$ref: Pet`


class RefError(Exception):
    """A `$ref` that `deref` cannot follow; `str()` says why."""


def bundle(document: dict[str, Any], uri: str, name: str, fetcher: Fetcher) -> tuple[dict[str, Any], list[Diagnostic]]:
    """Rewrite `document` (read from `uri`, called `name` in messages) into a self-contained one, in place.

    Returns the document and the warnings about references that could not be resolved.
    """
    return _Bundler(fetcher, name).run(document, uri)


def deref(document: Mapping[str, Any], node: Any, at: str) -> tuple[Any, str]:
    """Follow `$ref`s from `node` (found at pointer `at`) to the object they name, and that object's pointer.

    For objects that cannot be used as a permissive placeholder (parameters, request bodies, responses, path
    items): raises RefError when the reference was unresolvable, dangling or circular.
    """
    seen: set[str] = set()
    while isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if ref in seen:
            raise RefError(f"$ref cycle through '{ref}'")
        seen.add(ref)
        try:
            node = pointer.resolve(document, ref)
        except KeyError:
            raise RefError(f"$ref '{ref}' not found in the document") from None
        if ref.startswith(_UNRESOLVED_POINTER):
            raise RefError(node[UNRESOLVED_KEY])
        at = ref
    return node, at


def locate(document: Mapping[str, Any], name: str, at: str) -> str:
    """`file#/pointer` for a pointer into the bundled document, naming the file the object came from."""
    if at.startswith(_FILES_POINTER):
        index, _, rest = at[len(_FILES_POINTER) :].partition("/")
        return f"{document[BUNDLE_KEY]['sources'][int(index)]}#/{rest}"
    return f"{name}{at}"


@dataclass(slots=True)
class _Site:
    """A reference waiting to be rewritten: `holder[key]`, in document `doc`, at `at` (pointer within that file).

    Mostly `{"$ref": ...}` objects (key `$ref`); also the values of a discriminator's `mapping`.
    """

    holder: dict[str, Any]
    key: str
    doc: int
    at: str
    base: str  # the base URI its reference is relative to (the file, or the nearest enclosing `$id`)


@dataclass(slots=True)
class _Placeholder:
    index: int
    ref: str
    reason: str
    sites: list[str] = field(default_factory=list)


class _Unresolved(Exception):
    pass


class _Bundler:
    """The state of one bundling run: the documents met so far, the `$id`s they declare and the refs to rewrite."""

    def __init__(self, fetcher: Fetcher, name: str) -> None:
        self._fetcher = fetcher
        self._root_name = name
        self._uris: list[str] = []  # index 0 is the root document
        self._data: list[Any] = []
        self._index: dict[str, int] = {}  # canonical URI -> document index
        self._failed: dict[str, str] = {}  # canonical URI -> why it could not be had
        self._ids: dict[str, tuple[int, str]] = {}  # `$id` URI or `$id#anchor` -> (document, pointer)
        self._sites: list[_Site] = []
        self._seen: set[int] = set()  # ids of objects scanned (YAML aliases share objects; scan each once)
        self._placeholders: dict[tuple[str, str], _Placeholder] = {}
        self._warnings: list[Diagnostic] = []

    def run(self, document: dict[str, Any], uri: str) -> tuple[dict[str, Any], list[Diagnostic]]:
        self._add(document, canonical(uri))
        done = 0
        while done < len(self._sites):  # grows while resolving: every embedded file brings its own refs
            self._rewrite(self._sites[done])
            done += 1
        extra: dict[str, Any] = {}
        if len(self._data) > 1:
            extra["files"] = self._data[1:]
            extra["sources"] = [display(uri) for uri in self._uris[1:]]
        if self._placeholders:
            extra["unresolved"] = [{UNRESOLVED_KEY: p.reason} for p in self._placeholders.values()]
        if extra:
            document[BUNDLE_KEY] = extra
        for p in self._placeholders.values():
            also = f" (also referenced at {len(p.sites) - 1} other places)" if len(p.sites) > 1 else ""
            self._warnings.append(Diagnostic(p.sites[0], f"cannot resolve $ref '{p.ref}': {p.reason}{also}"))
        return document, self._warnings

    def _add(self, data: Any, uri: str) -> int:
        doc = len(self._data)
        self._uris.append(uri)
        self._data.append(data)
        self._index[uri] = doc
        self._scan(doc, data, uri)
        return doc

    def _scan(self, doc: int, data: Any, base: str) -> None:
        """Collect the `$ref`s of one document and index its `$id`s and `$anchor`s (see the module docstring)."""
        stack: list[tuple[Any, str, str, bool]] = [(data, "", base, False)]
        while stack:
            node, at, base, names = stack.pop()
            if id(node) in self._seen:
                continue
            self._seen.add(id(node))
            if isinstance(node, list):
                stack.extend((item, f"{at}/{i}", base, False) for i, item in enumerate(node) if _container(item))
                continue
            if not names:
                base = self._declare(node, doc, at, base)
                if isinstance(node.get("$ref"), str):
                    self._sites.append(_Site(node, "$ref", doc, at, base))
                self._mapping(node.get("discriminator"), doc, at, base)
            for key, value in node.items():
                if _container(value) and (names or not _is_data(key)):
                    child_names = not names and key in _NAME_MAPS and isinstance(value, dict)
                    stack.append((value, f"{at}/{pointer.escape(key)}", base, child_names))

    def _mapping(self, discriminator: Any, doc: int, at: str, base: str) -> None:
        """Discriminator mapping values that are references (not bare schema names) are rewritten like `$ref`s."""
        mapping = discriminator.get("mapping") if isinstance(discriminator, dict) else None
        for name, value in mapping.items() if isinstance(mapping, dict) else ():
            if isinstance(value, str) and not _BARE_NAME.fullmatch(value):
                value_at = pointer.join(f"{at}/discriminator/mapping", name)
                self._sites.append(_Site(mapping, name, doc, value_at, base))

    def _declare(self, node: dict[str, Any], doc: int, at: str, base: str) -> str:
        """Index the `$id` / `$anchor` of a schema; returns the base URI for what is inside it."""
        ident = node.get("$id")
        if isinstance(ident, str):
            base = canonical(urldefrag(urljoin(base, ident))[0])
            self._ids.setdefault(base, (doc, at))
            del node["$id"]
        anchor = node.get("$anchor")
        if isinstance(anchor, str):
            self._ids.setdefault(f"{base}#{anchor}", (doc, at))
        return base

    def _rewrite(self, site: _Site) -> None:
        ref = site.holder[site.key]
        try:
            doc, at = self._target(ref, site)
        except _Unresolved as exc:
            site.holder[site.key] = self._placeholder(ref, str(exc), self._where(site.doc, site.at))
            return
        site.holder[site.key] = f"{_FILES_POINTER}{doc - 1}{at}" if doc else f"#{at}"

    def _target(self, ref: str, site: _Site) -> tuple[int, str]:
        """(document index, pointer in it) of the object `ref` names."""
        if ref.startswith("#"):  # same document: pointers are read from the file's root, as OpenAPI tools do
            return site.doc, self._fragment(site.doc, "", ref[1:], site.base)
        uri, fragment = urldefrag(urljoin(site.base, ref))
        uri = canonical(uri)
        if uri in self._ids:
            doc, at = self._ids[uri]
            return doc, self._fragment(doc, at, fragment, uri)
        try:
            doc = self._document(uri)
        except _Unresolved:
            bare = self._bare_name(ref, site)
            if bare is None:
                raise
            return bare
        return doc, self._fragment(doc, "", fragment, uri)

    def _fragment(self, doc: int, at: str, fragment: str, resource: str) -> str:
        """The pointer named by a URI fragment, JSON pointer or `$anchor` name, inside the resource at `at`."""
        if fragment and not fragment.startswith("/"):
            if f"{resource}#{fragment}" not in self._ids:
                raise _Unresolved(f"no $anchor '{fragment}' in {display(resource)}")
            return self._ids[f"{resource}#{fragment}"][1]
        at += unquote(fragment)
        try:
            pointer.resolve(self._data[doc], at)
        except KeyError:
            raise _Unresolved(f"'#{at}' not found in {self._name(doc)}") from None
        return at

    def _document(self, uri: str) -> int:
        if uri in self._index:
            return self._index[uri]
        if uri in self._failed:
            raise _Unresolved(self._failed[uri])
        try:
            data, final = self._fetcher.fetch(uri)
        except SpecError as exc:
            self._failed[uri] = str(exc)
            raise _Unresolved(str(exc)) from None
        final = canonical(final)
        if final in self._index:  # a redirect to a document already known
            self._index[uri] = self._index[final]
            return self._index[final]
        doc = self._add(data, final)
        self._index[uri] = doc
        return doc

    def _bare_name(self, ref: str, site: _Site) -> tuple[int, str] | None:
        """`$ref: Pet` (Swagger 1.2 style, still found in 2.0 specs) read as the schema named Pet, if there is one."""
        if not _BARE_NAME.fullmatch(ref):
            return None
        data = self._data[site.doc]
        for at in (f"/definitions/{ref}", f"/components/schemas/{ref}"):
            try:
                pointer.resolve(data, at)
            except KeyError:
                continue
            where = self._where(site.doc, site.at)
            self._warnings.append(Diagnostic(where, f"bare-name $ref '{ref}' read as '#{at}'"))
            return site.doc, at
        return None

    def _placeholder(self, ref: str, reason: str, where: str) -> str:
        placeholder = self._placeholders.get((ref, reason))
        if placeholder is None:
            placeholder = _Placeholder(len(self._placeholders), ref, reason)
            self._placeholders[(ref, reason)] = placeholder
        placeholder.sites.append(where)
        return f"{_UNRESOLVED_POINTER}{placeholder.index}"

    def _name(self, doc: int) -> str:
        return display(self._uris[doc]) if doc else self._root_name

    def _where(self, doc: int, at: str) -> str:
        return f"{self._name(doc)}#{at}"


def _container(value: Any) -> bool:
    return isinstance(value, dict | list)


def _is_data(key: str) -> bool:
    return key in _DATA_KEYS or (key.startswith("x-") and key not in _STRUCTURAL_EXTENSIONS)
