"""User-written YAML files (mappings, gateway configs): load with line numbers, validate, report at file:line.

`yaml.safe_load` forgets where each value came from, so this module composes the node tree itself and
records the line of every mapping key and list item. Validation runs the shipped JSON Schema (Draft
2020-12) and turns *every* error into one line `file:line: field.path: problem`, so a user fixes a file
in one pass instead of meeting one error per run. Where a schema's own words would be cryptic (a regular
expression, say), the schema carries an `errorMessage` (the ajv-errors convention) that is used instead.

Two deliberate departures from plain PyYAML: mapping keys are kept as the text written (`on:` or `200:`
stay the strings "on" and "200", as every key in these formats is a name), and unquoted dates stay
strings (`fixed: 2019-04-01` is the API version an upstream expects, not a `datetime.date`).
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema_rs
import yaml

from gateway.errors import ConfigError, Diagnostic

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

FieldPath = tuple[str | int, ...]
"""Where a value sits in a loaded document: `("tools", "listPets", "parameters", "limit")`."""

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_JSON_SCALARS = (str, int, float, bool, type(None))
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_$@-]+$")


class _Loader(yaml.SafeLoader):
    """SafeLoader without the YAML 1.1 timestamp rule, so dates stay the strings that were written."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True, slots=True)
class Locator:
    """Maps a field path of a loaded document to `file:line`.

    Calling it gives the location of the deepest recorded prefix of the path, so a path that points
    below a scalar, or at a key that is missing, still lands on the nearest line that exists.
    """

    file: str
    lines: Mapping[FieldPath, int]

    def line(self, path: FieldPath) -> int:
        for end in range(len(path), 0, -1):
            found = self.lines.get(tuple(path[:end]))
            if found is not None:
                return found
        return self.lines.get((), 1)

    def __call__(self, path: FieldPath) -> str:
        return f"{self.file}:{self.line(path)}"

    def problem(self, path: FieldPath, text: str) -> Diagnostic:
        """An error at `path`: `file:line`, then `field.path: text`."""
        return Diagnostic(self(path), f"{format_field(path)}: {text}", severity="error")


def load_yaml(path: str | Path) -> tuple[Any, Locator]:
    """Read one YAML document into plain JSON-like data plus a `Locator` for its values.

    Raises `ConfigError` for unreadable files, YAML syntax errors, duplicate keys (PyYAML would keep the
    last one silently) and values that have no JSON equivalent.
    """
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, f"cannot read the file: {exc}") from None
    loader = _Loader(text)
    builder = _Builder(loader, file)
    try:
        node = loader.get_single_node()
        data = builder.value(node, ()) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}" if mark is not None else file
        raise ConfigError(where, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    locator = Locator(file, builder.lines)
    if builder.problems:
        raise config_error(builder.problems)
    return data, locator


MAX_VALUES = 200_000
"""Values a configuration or mapping file may expand to: far above any real one, far below exhausting memory."""


class _Builder:
    """Turns composed YAML nodes into data, recording the line of every key and item on the way."""

    def __init__(self, loader: _Loader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.lines: dict[FieldPath, int] = {}
        self.problems: list[Diagnostic] = []
        self._open: set[int] = set()
        self._built = 0

    def value(self, node: yaml.Node, path: FieldPath) -> Any:
        self._built += 1
        if self._built > MAX_VALUES:  # aliases of aliases (a "billion laughs") expand exponentially
            raise yaml.MarkedYAMLError(problem=f"the document expands to more than {MAX_VALUES:,} values "
                                       "(aliases of aliases?)", problem_mark=node.start_mark)
        self.lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in self._open:
            raise yaml.MarkedYAMLError(problem="an alias refers to a value that contains it",
                                       problem_mark=node.start_mark)
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                return [self.value(item, (*path, index)) for index, item in enumerate(node.value)]
            return self._scalar(node, path)
        finally:
            self._open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: FieldPath) -> dict[str, Any]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self._key(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                message = f"{format_field((*path, key))}: duplicate key (first on line {seen[key]})"
                self.problems.append(Diagnostic(f"{self.file}:{line}", message, "error"))
            seen.setdefault(key, line)
        self.loader.flatten_mapping(node)  # resolves `<<: *anchor` merges; own keys come last and win
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node)
            self.lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = self.value(value_node, (*path, key))
        return result

    @staticmethod
    def _key(node: yaml.Node) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise yaml.MarkedYAMLError(problem="a key must be a plain name, not a list or mapping",
                                       problem_mark=node.start_mark)
        return node.value

    def _scalar(self, node: yaml.Node, path: FieldPath) -> Any:
        value = self.loader.construct_object(node, deep=True)
        if not isinstance(value, _JSON_SCALARS):
            message = f"{format_field(path)}: {node.tag} values are not supported; quote it as a string"
        elif isinstance(value, float) and not math.isfinite(value):
            message = f"{format_field(path)}: {node.value} is not a number JSON can carry; write a finite number"
        else:
            return value
        self.problems.append(Diagnostic(f"{self.file}:{node.start_mark.line + 1}", message, "error"))
        return value


def format_field(path: FieldPath) -> str:
    """`("tools", "GET /pets", "parameters", 0)` -> `tools["GET /pets"].parameters[0]`, the way users name fields."""
    text = ""
    for token in path:
        if isinstance(token, int):
            text += f"[{token}]"
        elif _PLAIN_KEY.match(token):
            text += f".{token}" if text else token
        else:
            text += f"[{json.dumps(token, ensure_ascii=False)}]"
    return text or "(top level)"


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """`" (did you mean 'name'?)"` for the closest option, or `""` when none is close."""
    lowered = {option.lower(): option for option in options}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {lowered[close[0]]!r}?)" if close else ""


def config_error(problems: Sequence[Diagnostic]) -> ConfigError:
    """One `ConfigError` carrying every problem, one per line, each line starting with its own `file:line`.

    Problems are sorted by line and deduplicated; `where` of the error is the first one's.
    """

    def line_of(problem: Diagnostic) -> int:
        tail = problem.where.rsplit(":", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    ordered = sorted(dict.fromkeys(problems), key=line_of)
    first, *rest = ordered
    return ConfigError(first.where, first.message + "".join(f"\n{problem}" for problem in rest))


@cache
def schema(name: str) -> Mapping[str, Any]:
    """The shipped JSON Schema `gateway/schemas/<name>.schema.json` (the one source of truth)."""
    text = resources.files("gateway").joinpath("schemas", f"{name}.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@cache
def _checker(name: str) -> Any:
    """The compiled (Rust) validator that decides whether a file is valid: quick, and small to load."""
    return jsonschema_rs.validator_for(dict(schema(name)), validate_formats=False)


@cache
def _explainer(name: str) -> Draft202012Validator:
    """The Python validator whose errors carry what `_explain` needs (the failing subschema, the keyword);
    loaded only for a file with problems."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema(name))


def validate(data: Any, locator: Locator, schema_name: str) -> None:
    """Check `data` against a shipped schema; raise one `ConfigError` listing every problem, or return."""
    if data is None:
        raise ConfigError(locator(()), "the file is empty")
    if _checker(schema_name).is_valid(data):  # the loader admits JSON values only
        return
    problems = [
        locator.problem(path, text)
        for error in _explainer(schema_name).iter_errors(data)
        for path, text in _explain(error)
    ]
    if problems:
        raise config_error(problems)


_KINDS = {
    "object": "a mapping (key: value)",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "nothing",
}


def _kind(value: Any) -> str:
    """What a YAML value is, in the words of `_KINDS`, with the value itself when it is short."""
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict | list):
        return _KINDS["object" if isinstance(value, dict) else "array"]
    kind = "string" if isinstance(value, str) else "integer" if isinstance(value, int) else "number"
    return f"{_KINDS[kind]} {_short(value)}"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _explain(error: ValidationError) -> Iterable[tuple[FieldPath, str]]:
    """Plain-words (field path, problem) pairs for one jsonschema error."""
    path: FieldPath = tuple(error.absolute_path)
    keyword, expected, value = error.validator, error.validator_value, error.instance
    custom = error.schema.get("errorMessage") if isinstance(error.schema, dict) else None
    if "propertyNames" in error.absolute_schema_path:  # the instance is the key itself
        detail = custom or _generic(keyword, expected)
        yield (*path, value), f"{_short(value)} is not allowed as a name here: {detail}"
        return
    if keyword == "additionalProperties" and isinstance(value, dict):
        known = list(error.schema.get("properties", {}))
        patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
        for key in value:
            if key not in known and not any(p.search(key) for p in patterns):
                hint = did_you_mean(key, known) or f" (expected one of: {', '.join(known)})"
                yield (*path, key), f"unknown key {key!r}{hint}"
        return
    if keyword == "required" and isinstance(value, dict):
        for key in expected:
            if key not in value:
                yield (*path, key), "is required but missing"
        return
    if keyword == "type":
        kinds = [expected] if isinstance(expected, str) else list(expected)
        yield path, f"expected {' or '.join(_KINDS.get(k, k) for k in kinds)}, got {_kind(value)}"
        return
    if isinstance(error.schema, dict) and error.schema.get("x-secret"):
        yield path, custom or _generic(keyword, expected)  # never echo what may be a secret
        return
    yield path, f"{custom or _generic(keyword, expected)} (got {_short(value)})"


def _generic(keyword: str, expected: Any) -> str:
    messages = {
        "const": lambda: f"must be {_short(expected)}",
        "enum": lambda: "must be one of: " + ", ".join(_short(e) for e in expected),
        "minimum": lambda: f"must be at least {expected}",
        "maximum": lambda: f"must be at most {expected}",
        "exclusiveMinimum": lambda: f"must be greater than {expected}",
        "exclusiveMaximum": lambda: f"must be less than {expected}",
        "minLength": lambda: "must not be empty" if expected == 1 else f"must be at least {expected} characters long",
        "maxLength": lambda: f"must be at most {expected} characters long",
        "minItems": lambda: f"must list at least {expected} item{'s' if expected != 1 else ''}",
        "minProperties": lambda: f"must set at least {expected} key{'s' if expected != 1 else ''}",
        "pattern": lambda: f"must match the pattern {expected}",
        "uniqueItems": lambda: "must not repeat an item",
    }
    make = messages.get(keyword)
    return make() if make else f"fails the {keyword!r} rule of the schema"
