"""OpenAPI schema objects -> JSON Schema 2020-12, for MCP tool `inputSchema` and `outputSchema`.

OpenAPI 2.0/3.0 schemas are a dialect of JSON Schema draft 4 (`nullable`, boolean `exclusiveMinimum`,
`example`, `type: file`), 3.1 schemas are 2020-12 with extra keywords, and real specs carry plenty of
fragments no validator accepts. MCP clients validate against what we advertise, so every schema we emit
must be valid 2020-12 whatever the input: unknown keywords are dropped, odd values repaired or dropped.

The two directions make different promises:

- input schemas are what the model must send; they are as precise as the spec (so bad calls are caught
  before they reach the backend), `$ref`s are inlined for readability and only recursive or very large
  components go to the shared `$defs`;
- output schemas are what the backend will answer; real backends deviate from their specs and the MCP
  client SDK rejects a result that does not validate, so they keep only the shape: objects and arrays
  (nested ones also accept `null`), their properties and items, a few levels deep (to keep `tools/list`
  small).
  Scalars are left untyped: `"0"` for an integer or `1` for a string is the most common deviation,
  in real answers as in the specs' own examples, and is no reason to reject a whole result.

`oneOf` becomes `anyOf` in both directions: once `discriminator` is gone, branches of real specs often
overlap, and a value matching two branches must not be rejected (LLM providers also prefer `anyOf`).
"""

from __future__ import annotations

import datetime
import json
import math
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import jsonschema_rs

from gateway.spec.model import SchemaDialect
from gateway.spec.pointer import resolve, unescape

DEFS_PREFIX = "#/$defs/"

_INLINE_MAX_NODES = 120
"""A component bigger than this (in schema nodes, once converted) is referenced from `$defs`, not inlined."""
_INLINE_MAX_DEPTH = 8
"""A component nested deeper than this is referenced from `$defs`, not inlined."""
_MAX_LEVEL = 64
"""Input conversions nested deeper than this (refs included) stop inlining: keeps the Python stack bounded."""
_OUTPUT_MAX_DEPTH = 3
"""Output schemas describe this many levels of nested objects/arrays below the root; deeper is `{}`."""
_OUTPUT_MAX_NODES = 150
"""An output schema bigger than this is cut at a shallower depth."""

_JSON_TYPES = frozenset({"null", "boolean", "object", "array", "number", "string", "integer"})
_TYPE_ALIASES = {
    "file": "string", "int": "integer", "long": "integer", "float": "number", "double": "number",
    "decimal": "number", "bool": "boolean", "str": "string", "text": "string", "date": "string",
    "datetime": "string", "date-time": "string", "dict": "object", "map": "object", "list": "array",
}
_CONTAINER_TYPES = frozenset({"object", "array", "null"})
_ANNOTATIONS = frozenset({"title", "description", "deprecated"})
_COUNTS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties",
           "minContains", "maxContains")
_REF_SIBLINGS_30 = frozenset({"description", "title", "deprecated", "nullable", "x-nullable"})
"""In OpenAPI 2.0/3.0, keywords next to a `$ref` are ignored; these harmless ones are honoured anyway."""
_REJECTS_NULL_BEYOND_TYPE = frozenset({"$ref", "allOf", "anyOf", "oneOf", "not", "const", "if"})

# Where sub-schemas live, and whether they apply to a nested value (True) or to the same value (False).
_ONE_KEYWORDS = {
    "not": False, "if": False, "then": False, "else": False, "items": True, "additionalItems": True,
    "additionalProperties": True, "propertyNames": True, "contains": True, "unevaluatedProperties": True,
    "unevaluatedItems": True,
}
_LIST_KEYWORDS = {"allOf": False, "anyOf": False, "oneOf": False, "prefixItems": True}
_MAP_KEYWORDS = {"properties": True, "patternProperties": True, "dependentSchemas": False}


class SchemaConverter:
    """Converts the schemas of one API document; create one per spec and reuse it for every operation.

    Converted components are cached (by `$ref` and direction), which is what makes a 771-operation
    spec convert in a fraction of a second. Returned schemas share nested nodes with that cache:
    callers may change the returned top-level dict, but must treat everything below it as read-only.
    """

    def __init__(self, document: Mapping[str, Any], dialect: SchemaDialect) -> None:
        refs = _References(document, dialect)
        self._inputs = _InputConverter(refs)
        self._outputs = _OutputConverter(refs)

    def repairs(self) -> list[str]:
        """What input conversions since the last call changed so that valid values pass (then forgotten):
        an `enum` written on an array, a `pattern` in another regex dialect. A shared component is reported
        once, by the first conversion that meets it."""
        found, self._inputs.repairs = self._inputs.repairs, []
        return found

    def input_schema(self, schema: Mapping[str, Any] | None, defs: dict[str, Any]) -> dict[str, Any]:
        """The 2020-12 schema of a value the model sends (a parameter or a request body).

        A `$ref` at the root is always inlined (so an object body keeps its `properties` at hand);
        components that must be shared are added to `defs`, which the caller places at the root of
        the tool's inputSchema as `$defs` (references read `#/$defs/<Name>`). A missing schema is `{}`.
        """
        return self._inputs.root(schema, defs)

    def output_schema(self, schema: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """A relaxed 2020-12 schema that the backend's answers can be trusted to satisfy, or None.

        None means the schema promises nothing useful: missing, `{}`, a scalar (a binary payload
        included), or only annotations and constraints that are dropped here. The result is
        self-contained (no `$ref`); the root type, when there is one, is "object" or "array"; nested
        objects and arrays also accept null.
        """
        return self._outputs.root(schema)


class _References:
    """`$ref` resolution and the shape of the reference graph, shared by both directions."""

    def __init__(self, document: Mapping[str, Any], dialect: SchemaDialect) -> None:
        self._document = document
        self._dialect = dialect
        self._targets: dict[str, Any] = {}
        self._edges: dict[str, tuple[tuple[str, bool], ...]] = {}
        self._recursive: dict[str, bool] = {}
        self._vacuous: dict[str, bool] = {}

    def target(self, ref: str) -> Any:
        """The schema `ref` points to, or None when it does not resolve inside the document."""
        if ref not in self._targets:
            try:
                self._targets[ref] = resolve(self._document, ref) if ref.startswith("#") else None
            except KeyError:
                self._targets[ref] = None
        return self._targets[ref]

    def siblings(self, node: Mapping[str, Any]) -> dict[str, Any]:
        """The keywords of a `$ref` node that apply besides the reference (all of them only in 3.1)."""
        if self._dialect == "openapi-3.1":
            return {k: v for k, v in node.items() if k != "$ref"}
        return {k: v for k, v in node.items() if k in _REF_SIBLINGS_30}

    def flag(self, node: Any, keyword: str) -> bool:
        """Whether `keyword` (readOnly, writeOnly) is true on `node` or on the schema its `$ref` chain ends in."""
        seen: set[str] = set()
        while isinstance(node, Mapping):
            if node.get(keyword) is True:
                return True
            ref = node.get("$ref")
            if not isinstance(ref, str) or ref in seen:
                return False
            seen.add(ref)
            node = self.target(ref)
        return False

    def is_recursive(self, ref: str) -> bool:
        """Whether `ref` can reach itself: it is then shared through `$defs` rather than inlined."""
        if ref not in self._recursive:
            _classify_cycles(ref, lambda r: [to for to, _ in self._refs_in(r)], self._recursive)
        return self._recursive[ref]

    def is_vacuous(self, ref: str) -> bool:
        """Whether `ref` reaches itself without entering a nested value (`A: {allOf: [A]}`).

        Such a schema constrains nothing and would send any validator into an endless loop.
        """
        if ref not in self._vacuous:
            _classify_cycles(ref, lambda r: [to for to, nested in self._refs_in(r) if not nested], self._vacuous)
        return self._vacuous[ref]

    def _refs_in(self, ref: str) -> tuple[tuple[str, bool], ...]:
        """The references made by the schema at `ref` (not following them), each with: inside a nested value?"""
        if ref not in self._edges:
            found: list[tuple[str, bool]] = []
            pending: list[tuple[Any, bool]] = [(self.target(ref), False)]
            while pending:
                node, nested = pending.pop()
                if not isinstance(node, Mapping):
                    continue
                to = node.get("$ref")
                if isinstance(to, str):
                    found.append((to, nested))
                    node = self.siblings(node)
                pending.extend((sub, nested or inside) for sub, inside in _subschemas(node))
            self._edges[ref] = tuple(found)
        return self._edges[ref]


class _Tally:
    """What an input conversion used: the `$defs` it refers to, its size in nodes and its depth."""

    __slots__ = ("base", "depth", "needs", "size")

    def __init__(self, base: int) -> None:
        self.base = base
        self.needs: set[str] = set()
        self.size = 0
        self.depth = 0

    def reached(self, level: int) -> None:
        self.size += 1
        self.depth = max(self.depth, level - self.base)


class _Component:
    """A converted input component: its schema and what inlining it costs."""

    __slots__ = ("depth", "needs", "schema", "size")

    def __init__(self, schema: Any, tally: _Tally) -> None:
        self.schema = schema
        self.needs = frozenset(tally.needs)
        self.size = tally.size
        self.depth = tally.depth


class _InputConverter:
    def __init__(self, refs: _References) -> None:
        self._refs = refs
        self._components: dict[str, _Component] = {}
        self._names: dict[str, str] = {}
        self._active: list[str] = []  # components being converted, innermost last
        self._patterns: dict[str, str | None] = {}
        self.repairs: list[str] = []

    def root(self, schema: Mapping[str, Any] | None, defs: dict[str, Any]) -> dict[str, Any]:
        tally = _Tally(0)
        converted = {} if schema is None else self._node(schema, tally, 0, root=True)
        needed: set[str] = set()
        pending = list(tally.needs)
        while pending:
            ref = pending.pop()
            if ref not in needed:
                needed.add(ref)
                pending.extend(self._component(ref, 0).needs)
        for ref in sorted(needed, key=self._name):  # sorted: the same spec always gives the same tools/list
            defs.setdefault(self._name(ref), self._component(ref, 0).schema)
        if isinstance(converted, bool):
            return {} if converted else {"not": {}}
        return dict(converted)

    def _node(self, raw: Any, tally: _Tally, level: int, root: bool = False) -> Any:
        if isinstance(raw, bool):
            return raw
        if not isinstance(raw, Mapping) or level > _MAX_LEVEL:
            return {}
        ref = raw.get("$ref")
        if isinstance(ref, str):
            schema = _combine(self._ref(ref, tally, level, root),
                              self._keywords(self._refs.siblings(raw), tally, level))
        else:
            schema = self._keywords(raw, tally, level)
        if raw.get("nullable") is True or raw.get("x-nullable") is True:
            schema = _with_null(schema)
        return _with_samples(schema, raw)

    def _ref(self, ref: str, tally: _Tally, level: int, root: bool) -> Any:
        """The component at `ref`, inlined or (recursive, too big, too deep) as a reference into `$defs`."""
        refs = self._refs
        if refs.target(ref) is None or refs.is_vacuous(ref):
            return {}
        if not root and (refs.is_recursive(ref) or ref in self._active or level >= _MAX_LEVEL):
            return self._shared(ref, tally, level)
        component = self._component(ref, level)
        if not root and (component.size > _INLINE_MAX_NODES or component.depth > _INLINE_MAX_DEPTH):
            return self._shared(ref, tally, level)
        tally.needs |= component.needs
        tally.size += component.size
        tally.depth = max(tally.depth, level - tally.base + component.depth)
        return component.schema

    def _shared(self, ref: str, tally: _Tally, level: int) -> dict[str, Any]:
        tally.needs.add(ref)
        tally.reached(level)
        return {"$ref": DEFS_PREFIX + self._name(ref)}

    def _component(self, ref: str, level: int) -> _Component:
        component = self._components.get(ref)
        if component is None:
            tally = _Tally(level)
            self._active.append(ref)
            try:
                schema = self._node(self._refs.target(ref), tally, level)
            finally:
                self._active.pop()
            component = self._components[ref] = _Component(schema, tally)
        return component

    def _name(self, ref: str) -> str:
        """A readable `$defs` name for `ref`, unique within this converter: `#/definitions/Pet` -> `Pet`."""
        name = self._names.get(ref)
        if name is None:
            base = re.sub(r"[^A-Za-z0-9_.-]", "_", unescape(ref.rsplit("/", 1)[-1])) or "Schema"
            taken = set(self._names.values())
            name, n = base, 1
            while name in taken:
                n += 1
                name = f"{base}_{n}"
            self._names[ref] = name
        return name

    def _keywords(self, raw: Mapping[str, Any], tally: _Tally, level: int) -> dict[str, Any]:
        if not raw:
            return {}
        tally.reached(level)
        types = _types(raw.get("type"))
        moved = _enum_on_items(raw, types)
        if moved is not raw:
            self.repairs.append("an `enum` on an array applies to each item ("
                                + ("moved to `items`" if "enum" in (moved.get("items") or {}) else "dropped: "
                                   "its items are a reference or have their own enum") + ")")
            raw = moved
        out = _annotations(raw)
        _enum_notes(raw, out)
        if types:
            out["type"] = _type_value(types)
        fmt = raw.get("format")
        if _is_file(raw.get("type")):
            out["format"] = "binary"
        elif isinstance(fmt, str) and fmt.strip():
            out["format"] = fmt.strip().lower()
        pattern = raw.get("pattern")
        if isinstance(pattern, str) and (usable := self._pattern(pattern)) is not None:
            out["pattern"] = usable
        _bounds(raw, out)
        _integer_range(out)
        _values(raw, out, types)
        for key in ("contentMediaType", "contentEncoding"):
            if isinstance(raw.get(key), str):
                out[key] = raw[key]
        if isinstance(raw.get("uniqueItems"), bool):
            out["uniqueItems"] = raw["uniqueItems"]

        def sub(node: Any) -> Any:
            return self._node(node, tally, level + 1)

        self._object_keywords(raw, out, sub)
        _array_keywords(raw, out, sub)
        _composition(raw, out, sub)
        for key in ("not", "if", "then", "else", "contains", "propertyNames", "unevaluatedProperties",
                    "unevaluatedItems"):
            if isinstance(raw.get(key), Mapping | bool):
                out[key] = sub(raw[key])
        return out

    def _object_keywords(self, raw: Mapping[str, Any], out: dict[str, Any], sub: Callable[[Any], Any]) -> None:
        properties = raw.get("properties")
        read_only: set[str] = set()
        if isinstance(properties, Mapping):
            kept = {}
            for name, schema in properties.items():
                if self._refs.flag(schema, "readOnly"):
                    read_only.add(str(name))
                else:
                    kept[str(name)] = sub(schema)
            if kept:
                out["properties"] = kept
        required = _names(raw.get("required"), exclude=read_only)
        if required:
            out["required"] = required
        additional = raw.get("additionalProperties")
        if isinstance(additional, Mapping | bool):
            out["additionalProperties"] = sub(additional)
        patterns = raw.get("patternProperties")
        if isinstance(patterns, Mapping):
            kept = {usable: sub(v) for k, v in patterns.items()
                    if isinstance(k, str) and (usable := self._pattern(k)) is not None}
            if kept:
                out["patternProperties"] = kept
        dependent = raw.get("dependentSchemas")
        if isinstance(dependent, Mapping) and dependent:
            out["dependentSchemas"] = {str(k): sub(v) for k, v in dependent.items()}
        dependent = raw.get("dependentRequired")
        if isinstance(dependent, Mapping):
            kept = {str(k): _names(v) for k, v in dependent.items() if isinstance(v, list)}
            if kept:
                out["dependentRequired"] = kept

    def _pattern(self, pattern: str) -> str | None:
        """`pattern` as both validators in use compile it (Python `re`, and jsonschema_rs's ECMA regexes):
        as written, else translated from another dialect (`\\A`, `\\Z`, `(?P<name>`, POSIX classes), else None
        (dropped). Each translation or drop is reported in `repairs`."""
        if pattern not in self._patterns:
            usable: str | None = _translate_pattern(pattern)
            if _NOT_ECMA.search(usable) or not _compiles(usable):
                usable = None
            if usable != pattern:
                self.repairs.append(f"pattern {pattern!r} " + (f"rewritten as {usable!r}" if usable is not None else
                                    "dropped: it is not a regular expression JSON Schema (ECMA-262) validators "
                                    "read as the spec means it"))
            self._patterns[pattern] = usable
        return self._patterns[pattern]


_POSIX_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z", "space": r"\s",
    "xdigit": "0-9A-Fa-f", "word": r"\w", "punct": r"!-/:-@\[-`{-~", "blank": r" \t", "cntrl": r"\x00-\x1f\x7f",
}


def _translate_pattern(pattern: str) -> str:
    """Constructs of Perl, Python, Ruby or Java regexes rewritten in the ECMA-262 dialect JSON Schema uses."""
    out = re.sub(r"\[\[:(\w+):\]", lambda m: "[" + _POSIX_CLASSES.get(m.group(1), m.group(0)[1:-1]), pattern)
    out = re.sub(r"\[:(\w+):\]", lambda m: _POSIX_CLASSES.get(m.group(1), m.group(0)), out)
    out = re.sub(r"\(\?P?<(?![=!])\w+>", "(", out)  # named groups: no name syntax both Python and ECMA read
    out = out.replace(r"\A", "^").replace(r"\Z", "$").replace(r"\z", "$")
    out = re.sub(r"([*+?}])\+", r"\1", out)  # possessive quantifiers: the plain (greedy) ones accept the same
    out = re.sub(r"\(\?>", "(?:", out)  # atomic groups, likewise
    return out


_NOT_ECMA = re.compile(r"(?<!\\)\(\?[aimsxuU-]+[:)]|(?<!\\)\(\?P[=>]|(?<!\\)\(\?#|(?<!\\)\\[QEhHRXKGAZz]")
"""Constructs other dialects have and ECMA-262 (JSON Schema's dialect) lacks or reads differently: inline
flags `(?i)`, Python's `(?P=name)`, comments, `\\Q...\\E`, `\\h`, `\\R`, `\\A`/`\\Z` anchors..."""


def _compiles(pattern: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "possible nested set": Python's own FutureWarning about `[[`
        try:
            re.compile(pattern)
            jsonschema_rs.validator_for({"pattern": pattern})
        except (re.error, ValueError):
            return False
    return True


_ENUM_NOTE_LIMIT = 1500


def _enum_notes(raw: Mapping[str, Any], out: dict[str, Any]) -> None:
    """What each enum value means, from `x-ms-enum` (value names and descriptions), `x-enum-descriptions`,
    `x-enumDescriptions` or `x-enumNames`, appended to the description (the one place every model reads)."""
    enum = raw.get("enum")
    if not isinstance(enum, list) or not enum:
        return
    notes: dict[str, str] = {}
    ms = raw.get("x-ms-enum")
    if isinstance(ms, Mapping) and isinstance(ms.get("values"), list):
        for entry in ms["values"]:
            if isinstance(entry, Mapping) and "value" in entry:
                text = entry.get("description") if isinstance(entry.get("description"), str) else ""
                name = entry.get("name") if isinstance(entry.get("name"), str) else ""
                if name and name != str(entry["value"]):
                    text = f"{name}" + (f" ({text})" if text else "")
                if text:
                    notes[str(entry["value"])] = text
    for key in ("x-enum-descriptions", "x-enumDescriptions", "x-enumNames", "x-enum-names"):
        declared = raw.get(key)
        if isinstance(declared, list) and len(declared) == len(enum):
            for value, text in zip(enum, declared, strict=True):
                if isinstance(text, str) and text.strip() and text.strip() != str(value):
                    notes.setdefault(str(value), text.strip())
        elif isinstance(declared, Mapping):
            for value, text in declared.items():
                if isinstance(text, str) and text.strip():
                    notes.setdefault(str(value), text.strip())
    if not notes:
        return
    listing = "; ".join(f"{value}: {' '.join(text.split())}" for value, text in notes.items())
    if len(listing) > _ENUM_NOTE_LIMIT:
        listing = listing[:_ENUM_NOTE_LIMIT].rsplit(";", 1)[0] + "; ..."
    description = out.get("description")
    out["description"] = (f"{description.rstrip()}\n\n" if isinstance(description, str) and description.strip()
                          else "") + f"Values: {listing}"


class _OutputConverter:
    def __init__(self, refs: _References) -> None:
        self._refs = refs
        self._components: dict[tuple[str, int], tuple[Any, int]] = {}
        self._active: set[tuple[str, int]] = set()

    def root(self, schema: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if not isinstance(schema, Mapping):
            return None
        for depth in range(_OUTPUT_MAX_DEPTH, -1, -1):
            converted, size = self._node(schema, depth)
            if size <= _OUTPUT_MAX_NODES:
                break
        converted = dict(converted)
        # The root promises a value: an empty answer is no structured content. MCP clients also expect
        # `type: object` at the root (the caller wraps anything else), not `["object", "null"]`.
        root_types = [t for t in _types(converted.pop("type", None)) or () if t != "null"]
        if root_types:
            converted["type"] = _type_value(root_types)
        return converted if _promises(converted) else None

    def _node(self, raw: Any, depth: int) -> tuple[Any, int]:
        if not isinstance(raw, Mapping):
            return {}, 1  # `false` too: an answer is never refused
        ref = raw.get("$ref")
        if not isinstance(ref, str):
            return self._keywords(raw, depth)
        schema, size = self._ref(ref, depth)
        own, own_size = self._keywords(self._refs.siblings(raw), depth)
        return _combine(schema, own), size + own_size

    def _ref(self, ref: str, depth: int) -> tuple[Any, int]:
        key = (ref, depth)
        if key in self._components:
            return self._components[key]
        target = self._refs.target(ref)
        if target is None or key in self._active or self._refs.is_vacuous(ref):
            return {}, 1
        self._active.add(key)
        try:
            converted = self._components[key] = self._node(target, depth)
        finally:
            self._active.discard(key)
        return converted

    def _keywords(self, raw: Mapping[str, Any], depth: int) -> tuple[dict[str, Any], int]:
        out = {k: raw[k] for k in ("title", "description") if isinstance(raw.get(k), str)}
        types = _types(raw.get("type"))
        if types and set(types) <= _CONTAINER_TYPES:
            out["type"] = _type_value([*dict.fromkeys([*types, "null"])])
        size = 1

        def convert(node: Any, at: int) -> Any:
            nonlocal size
            schema, n = self._node(node, at)
            size += n
            return schema

        def nested(node: Any) -> Any:
            return convert(node, depth - 1)

        if depth > 0:
            properties = raw.get("properties")
            if isinstance(properties, Mapping):
                out["properties"] = {str(name): nested(schema) for name, schema in properties.items()
                                     if not self._refs.flag(schema, "writeOnly")}
            additional = raw.get("additionalProperties")
            if isinstance(additional, Mapping) and "patternProperties" not in raw:
                out["additionalProperties"] = nested(additional)
            _array_keywords(raw, out, nested)
            for key in ("additionalProperties", "items"):
                if out.get(key) == {}:
                    del out[key]
        _composition(raw, out, lambda branch: convert(branch, depth))
        if "anyOf" in out and any(branch == {} for branch in out["anyOf"]):
            del out["anyOf"]  # one branch accepts anything
        if "allOf" in out:
            out["allOf"] = [branch for branch in out["allOf"] if branch != {}]
            if not out["allOf"]:
                del out["allOf"]
        return out, size


def _classify_cycles(start: str, successors: Callable[[str], Iterable[str]], cyclic: dict[str, bool]) -> None:
    """Tarjan's algorithm from `start`: record in `cyclic` whether each node reached lies on a cycle.

    Iterative, so long reference chains cannot exhaust the Python stack. Nodes already in `cyclic`
    belong to strongly connected components found earlier, which are complete, and are skipped.
    """
    index: dict[str, int] = {start: 0}
    low: dict[str, int] = {start: 0}
    stack: list[str] = [start]
    work: list[tuple[str, Iterator[str]]] = [(start, iter(successors(start)))]
    while work:
        node, edges = work[-1]
        for to in edges:
            if to in cyclic:
                continue
            if to not in index:
                index[to] = low[to] = len(index)
                stack.append(to)
                work.append((to, iter(successors(to))))
                break
            if to in low:  # still on the stack
                low[node] = min(low[node], index[to])
        else:
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                members = stack[stack.index(node):]
                del stack[len(stack) - len(members):]
                loop = len(members) > 1 or node in successors(node)
                for member in members:
                    cyclic[member] = loop
                    del low[member]


def _subschemas(node: Mapping[str, Any]) -> Iterator[tuple[Any, bool]]:
    """Every sub-schema of `node` (not following `$ref`), each with: does it apply to a nested value?"""
    for key, value in node.items():
        if key in _ONE_KEYWORDS:
            for sub in value if isinstance(value, list) else (value,):
                yield sub, _ONE_KEYWORDS[key]
        elif key in _LIST_KEYWORDS and isinstance(value, list):
            for sub in value:
                yield sub, _LIST_KEYWORDS[key]
        elif key in _MAP_KEYWORDS and isinstance(value, Mapping):
            for sub in value.values():
                yield sub, _MAP_KEYWORDS[key]


def _combine(referenced: Any, own: dict[str, Any]) -> Any:
    """A `$ref` together with the keywords written next to it."""
    if not own:
        return referenced
    if referenced is True or referenced == {}:
        return own
    if own.keys() <= _ANNOTATIONS and isinstance(referenced, Mapping):
        return {**referenced, **own}
    return {**own, "allOf": [*own.get("allOf", ()), referenced]}


def _with_null(schema: Any) -> Any:
    """`schema`, also accepting null (OpenAPI 3.0 `nullable: true`, Swagger `x-nullable: true`)."""
    if schema is False:
        return {"type": "null"}
    lifted = {k: v for k, v in schema.items() if k in _ANNOTATIONS} if isinstance(schema, dict) else {}
    rest = {k: v for k, v in schema.items() if k not in _ANNOTATIONS} if isinstance(schema, dict) else {}
    if not rest:
        return schema  # accepts anything already
    types = _types(rest.get("type"))
    if types and not rest.keys() & _REJECTS_NULL_BEYOND_TYPE:
        if "null" in types:
            return schema
        nullable = {**schema, "type": [*types, "null"]}
        if "enum" in schema and None not in schema["enum"]:
            nullable["enum"] = [*schema["enum"], None]
        return nullable
    if rest.keys() == {"anyOf"}:
        return {**lifted, "anyOf": [*rest["anyOf"], {"type": "null"}]}
    return {**lifted, "anyOf": [rest, {"type": "null"}]}


def _with_samples(schema: Any, raw: Mapping[str, Any]) -> Any:
    """`schema` with the `default` and examples of `raw` that are JSON and satisfy it.

    A default or example that violates its own schema is worse than none: clients fill defaults in and
    generate calls from examples, which the gateway would then reject.
    """
    samples = [raw["example"]] if "example" in raw else []
    if isinstance(raw.get("examples"), list):
        samples.extend(raw["examples"])
    if not isinstance(schema, dict) or ("default" not in raw and not samples):
        return schema
    try:
        accepts = jsonschema_rs.validator_for(_detached(schema)).is_valid
    except ValueError:
        return schema
    extra: dict[str, Any] = {}
    if "default" in raw and (default := _json(raw["default"])) is not _INVALID and accepts(default):
        extra["default"] = default
    examples = [v for v in map(_json, samples) if v is not _INVALID and accepts(v)]
    if examples:
        extra["examples"] = examples
    return {**schema, **extra} if extra else schema


def _detached(schema: Any) -> Any:
    """A converted schema with every `$ref` replaced by `true`: checkable without the `$defs` it needs."""
    if not isinstance(schema, Mapping):
        return schema
    if "$ref" in schema:
        return True
    out = {}
    for key, value in schema.items():
        if key in _MAP_KEYWORDS:
            out[key] = {k: _detached(v) for k, v in value.items()}
        elif key in _LIST_KEYWORDS:
            out[key] = [_detached(v) for v in value]
        elif key in _ONE_KEYWORDS:
            out[key] = _detached(value)
        else:
            out[key] = value
    return out


def _promises(schema: Any) -> bool:
    """Whether a relaxed output schema says anything about the shape of the value."""
    if not isinstance(schema, Mapping):
        return False
    if schema.keys() & {"type", "properties", "items", "prefixItems", "additionalProperties"}:
        return True
    return any(_promises(branch) for key in ("anyOf", "allOf") for branch in schema.get(key, ()))


def _annotations(raw: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: raw[k] for k in ("title", "description") if isinstance(raw.get(k), str)}
    if isinstance(raw.get("deprecated"), bool):
        out["deprecated"] = raw["deprecated"]
    return out


def _types(value: Any) -> list[str] | None:
    """The JSON types named by a `type` keyword (a name or a list), None when absent or not understood.

    Common aliases (`int`, `bool`, Swagger's `file`...) are mapped; one unknown name drops the keyword,
    since guessing would make the schema refuse what the author meant to allow.
    """
    names = value if isinstance(value, list) else [value]
    types: list[str] = []
    for name in names:
        if not isinstance(name, str):
            return None
        normal = _TYPE_ALIASES.get(name.strip().lower(), name.strip().lower())
        if normal not in _JSON_TYPES:
            return None
        if normal not in types:
            types.append(normal)
    return types or None


def _type_value(types: list[str]) -> str | list[str]:
    return types[0] if len(types) == 1 else types


def _is_file(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() == "file"


def _bounds(raw: Mapping[str, Any], out: dict[str, Any]) -> None:
    """Numeric keywords, repaired: numbers written as strings, 3.0's boolean `exclusiveMinimum`..."""
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        limit = _number(raw.get(bound))
        flag = raw.get(exclusive)
        if flag is True and limit is not None:
            out[exclusive] = limit
            continue
        if limit is not None:
            out[bound] = limit
        if not isinstance(flag, bool) and (number := _number(flag)) is not None:
            out[exclusive] = number
    step = _number(raw.get("multipleOf"))
    if step is not None and step > 0:
        out["multipleOf"] = step
    for key in _COUNTS:
        count = _number(raw.get(key))
        if isinstance(count, int) and count >= 0:
            out[key] = count


_INTEGER_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def _integer_range(out: dict[str, Any]) -> None:
    """`format: int32`/`int64` as explicit bounds: validators treat formats as annotations, backends do not."""
    low_high = _INTEGER_RANGES.get(out.get("format", ""))
    kinds = out.get("type") if isinstance(out.get("type"), list) else [out.get("type")]
    if low_high is None or not {"integer", "number"} & set(kinds):
        return
    if "minimum" not in out and "exclusiveMinimum" not in out:
        out["minimum"] = low_high[0]
    if "maximum" not in out and "exclusiveMaximum" not in out:
        out["maximum"] = low_high[1]


def _enum_on_items(raw: Mapping[str, Any], types: list[str] | None) -> Mapping[str, Any]:
    """An `enum` of scalars written on an array (a common slip) constrains its items instead."""
    enum = raw.get("enum")
    if types != ["array"] or not isinstance(enum, list) or not enum or any(isinstance(v, list | dict) for v in enum):
        return raw
    items = raw.get("items")
    moved = {k: v for k, v in raw.items() if k != "enum"}
    if isinstance(items, Mapping) and "enum" not in items and "$ref" not in items:
        moved["items"] = {**items, "enum": enum}
    return moved


def _values(raw: Mapping[str, Any], out: dict[str, Any], types: list[str] | None) -> None:
    """`enum` and `const`, with values made to fit the declared type (`enum: [1, 2]` on a string)."""
    if isinstance(raw.get("enum"), list):
        values = [v for v in (_fit(value, types) for value in raw["enum"]) if v is not _INVALID]
        if values:
            out["enum"] = values
    if "const" in raw and (value := _fit(raw["const"], types)) is not _INVALID:
        out["const"] = value


def _array_keywords(raw: Mapping[str, Any], out: dict[str, Any], sub: Callable[[Any], Any]) -> None:
    """`items` and `prefixItems`; draft-4 tuple `items: [...]` becomes `prefixItems` (one entry: `items`)."""
    items = raw.get("items")
    if isinstance(items, list) and len(items) > 1:
        out["prefixItems"] = [sub(item) for item in items]
        if isinstance(raw.get("additionalItems"), Mapping | bool):
            out["items"] = sub(raw["additionalItems"])
    elif isinstance(items, list) and items:
        out["items"] = sub(items[0])
    elif isinstance(items, Mapping | bool):
        out["items"] = sub(items)
    prefix = raw.get("prefixItems")
    if isinstance(prefix, list) and prefix and "prefixItems" not in out:
        out["prefixItems"] = [sub(item) for item in prefix]


def _composition(raw: Mapping[str, Any], out: dict[str, Any], sub: Callable[[Any], Any]) -> None:
    """`allOf`, `anyOf` and `oneOf` (as `anyOf`; a second `anyOf` goes under `allOf`)."""
    for key in ("allOf", "anyOf", "oneOf"):
        branches = raw.get(key)
        if not isinstance(branches, list) or not branches:
            continue
        converted = [sub(branch) for branch in branches]
        if key == "allOf":
            out["allOf"] = converted
        elif "anyOf" in out:
            out["allOf"] = [*out.get("allOf", ()), {"anyOf": converted}]
        else:
            out["anyOf"] = converted


def _names(value: Any, exclude: Iterable[str] = ()) -> list[str]:
    """A `required`-style list: unique strings only (`required: true` on a property is ignored)."""
    if not isinstance(value, list):
        return []
    excluded = set(exclude)
    return [name for name in dict.fromkeys(v for v in value if isinstance(v, str)) if name not in excluded]


def _number(value: Any) -> int | float | None:
    """A finite JSON number from a number or a numeric string (`minimum: "1"`), else None."""
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in ".eEnN") else int(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return int(value) if value.is_integer() else value
    return value


_INVALID = object()
"""Marks a value that is not JSON, or cannot be made to fit its schema."""


def _fit(value: Any, types: list[str] | None) -> Any:
    """`value` as JSON, converted to one of `types` if it is a scalar of another type; else `_INVALID`."""
    value = _json(value)
    if value is _INVALID or types is None or any(_is_type(value, t) for t in types):
        return value
    if "string" in types and isinstance(value, bool | int | float):
        return json.dumps(value)
    if isinstance(value, str) and ("number" in types or "integer" in types):
        number = _number(value)
        if number is not None and any(_is_type(number, t) for t in types):
            return number
    return _INVALID


def _is_type(value: Any, name: str) -> bool:
    match name:
        case "null":
            return value is None
        case "boolean":
            return isinstance(value, bool)
        case "integer":
            return (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, float) and value.is_integer())
        case "number":
            return isinstance(value, int | float) and not isinstance(value, bool)
        case "string":
            return isinstance(value, str)
        case "array":
            return isinstance(value, list)
        case _:
            return isinstance(value, dict)


def _json(value: Any) -> Any:
    """`value` as plain JSON data, or `_INVALID` (YAML dates become ISO strings, as their authors meant)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _INVALID
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        converted: Any = {str(k): _json(v) for k, v in value.items()}
        parts: Iterable[Any] = converted.values()
    elif isinstance(value, list | tuple):
        converted = parts = [_json(v) for v in value]
    else:
        return _INVALID
    return _INVALID if any(v is _INVALID for v in parts) else converted
