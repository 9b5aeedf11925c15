"""Argument validation: each tool's inputSchema compiled once, every violation reported with its pointer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jsonschema_rs

Violation = tuple[str, str]
"""(JSON pointer of the offending value, message)."""


def compile_validator(schema: Mapping[str, Any]) -> Callable[[Any], list[Violation]]:
    """A function listing all violations of `schema` by an instance (empty list: valid).

    Formats are annotations, as JSON Schema 2020-12 says: the backend remains the judge of a date or
    an e-mail address; types, required properties, enums, ranges and patterns are enforced here.

    The schema is compiled on the first call, not here: a large API's tools are mostly never called by
    one process, and compiling them all took a tenth of its start-up (and their memory for good).
    """
    compiled: list[Any] = []

    def violations(instance: Any) -> list[Violation]:
        if not compiled:
            compiled.append(jsonschema_rs.validator_for(dict(schema), validate_formats=False))
        validator = compiled[0]
        try:
            if validator.is_valid(instance):
                return []
            found = []
            for error in validator.iter_errors(instance):
                pointer = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in error.instance_path)
                found.append((pointer or "/", error.message))
            return found
        except ValueError:  # the validator's recursion limit
            return [("/", "is nested too deeply")]

    return violations


MAX_ARGUMENT_DEPTH = 64
"""Nesting that arguments may have: far beyond any API's schema, and the validator's recursion stays bounded."""


def text_problem(arguments: Any) -> str | None:
    """What makes arguments unusable before any schema is applied: nesting deeper than `MAX_ARGUMENT_DEPTH`, or a
    lone surrogate (`\\ud800`, a valid JSON escape that is no text and that no validator or encoder takes)."""
    stack = [(arguments, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_ARGUMENT_DEPTH:
            return f"is nested more than {MAX_ARGUMENT_DEPTH} levels deep"
        if isinstance(value, dict):
            for key, item in value.items():
                stack.append((key, depth))
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str) and not value.isascii() and any("\ud800" <= c <= "\udfff" for c in value):
            return "contains text that is not valid Unicode (a lone surrogate)"
    return None


def describe(violations: list[Violation], limit: int = 20) -> str:
    """A model-readable list: one line per violation, the pointer first."""
    lines = [f"- {pointer}: {message}" for pointer, message in violations[:limit]]
    if len(violations) > limit:
        lines.append(f"- ... and {len(violations) - limit} more")
    return "\n".join(lines)
