"""Bytes -> JSON-compatible data: JSON or YAML, told apart by content, YAML read as YAML 1.2 would be.

Why not `yaml.safe_load`: PyYAML implements YAML 1.1, where `yes`/`no`/`on`/`off` are booleans, `2020-01-01`
is a `datetime.date`, `010` is octal 8 and `200:` makes an integer mapping key. OpenAPI documents are JSON data
(the OpenAPI specification asks for the YAML 1.2 core schema), and those 1.1 readings corrupt enums and examples,
turn response codes into ints, and leave values that cannot be serialised as JSON later. So the loader below keeps
PyYAML's fast C parser and swaps in the 1.2 core schema's implicit types, and keeps every mapping key as written.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode

from gateway.errors import SpecError

_CORE_SCHEMA_RESOLVERS = (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", "<"),  # YAML 1.1 merge keys: not core schema, but used in real specs
)


class _Yaml12Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A safe loader with the YAML 1.2 core schema's implicit types and string mapping keys."""

    yaml_implicit_resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = {}

    def construct_yaml_int(self, node: ScalarNode) -> int:
        text = node.value
        if text.startswith(("0o", "0x")):
            return int(text[2:], 8 if text[1] == "o" else 16)
        return int(text)

    def construct_yaml_float(self, node: ScalarNode) -> float:
        return float(node.value.lower().replace(".inf", "inf").replace(".nan", "nan"))

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[str, Any]:
        """Keys are kept as their text: `200:` is the response code "200", `yes:` the string "yes"."""
        if not isinstance(node, MappingNode):
            raise yaml.constructor.ConstructorError(None, None, f"expected a mapping, found {node.id}", node.start_mark)
        self.flatten_mapping(node)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, "a mapping key must be a scalar", key_node.start_mark
                )
            mapping[key_node.value] = self.construct_object(value_node, deep=deep)
        return mapping


for _tag, _pattern, _first in _CORE_SCHEMA_RESOLVERS:
    _Yaml12Loader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))
_Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _Yaml12Loader.construct_yaml_int)
_Yaml12Loader.add_constructor("tag:yaml.org,2002:float", _Yaml12Loader.construct_yaml_float)


def parse_document(data: bytes, name: str) -> Any:
    """Parse a JSON or YAML document; `name` (a path or URL) is used in the error message.

    JSON is tried first when the text starts like JSON: it is ten times faster than YAML on large specs. Raises
    SpecError with `where` = `name:line` when the text is neither.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(name, f"not UTF-8 text (byte {exc.start})") from None
    json_error: json.JSONDecodeError | None = None
    if text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            json_error = exc  # YAML is a superset of JSON: it may still read it (comments, trailing commas)
        except RecursionError:
            raise SpecError(name, "document nested too deeply") from None
    try:
        document = yaml.load(text, Loader=_Yaml12Loader)  # a safe loader (SafeLoader-based)
        if _expanded_size(document, {}) > MAX_EXPANDED_VALUES:
            raise SpecError(name, f"the document's aliases expand it to more than {MAX_EXPANDED_VALUES:,} values "
                            "(aliases of aliases?), which no real API description needs")
        return document
    except yaml.YAMLError as exc:
        if json_error is not None:
            where, problem = f"{name}:{json_error.lineno}", f"{json_error.msg} (column {json_error.colno})"
            raise SpecError(where, f"invalid JSON: {problem}") from None
        raise SpecError(_yaml_where(name, exc), f"invalid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise SpecError(name, "document nested too deeply") from None


MAX_EXPANDED_VALUES = 5_000_000
"""Values a spec may expand to once its YAML aliases are followed: well above the largest real APIs (GitHub's
is about a million), well below what a "billion laughs" of aliases of aliases makes every later stage walk."""


def _expanded_size(value: Any, memo: dict[int, int]) -> int:
    """How many values `value` stands for with every shared (aliased) part counted each time it is used."""
    if not isinstance(value, dict | list):
        return 1
    known = memo.get(id(value))
    if known is not None:
        return known
    memo[id(value)] = 1  # a cycle (an alias inside itself) counts once
    items = value.values() if isinstance(value, dict) else value
    size = 1
    for item in items:
        size += _expanded_size(item, memo)
        if size > MAX_EXPANDED_VALUES:
            break
    memo[id(value)] = size
    return size


def _yaml_where(name: str, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return f"{name}:{mark.line + 1}" if mark is not None else name


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    column = f" (column {mark.column + 1})" if mark is not None else ""
    return f"{context}: {problem}{column}" if context else f"{problem}{column}"
