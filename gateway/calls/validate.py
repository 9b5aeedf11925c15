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
    """
    validator = jsonschema_rs.validator_for(dict(schema), validate_formats=False)

    def violations(instance: Any) -> list[Violation]:
        if validator.is_valid(instance):
            return []
        found = []
        for error in validator.iter_errors(instance):
            pointer = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in error.instance_path)
            found.append((pointer or "/", error.message))
        return found

    return violations


def describe(violations: list[Violation], limit: int = 20) -> str:
    """A model-readable list: one line per violation, the pointer first."""
    lines = [f"- {pointer}: {message}" for pointer, message in violations[:limit]]
    if len(violations) > limit:
        lines.append(f"- ... and {len(violations) - limit} more")
    return "\n".join(lines)
