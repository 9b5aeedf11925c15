"""Check OpenAPI 3 operation objects against the specification's object model (openapi-pydantic).

The check is advisory: real specs have small violations the gateway copes with, so each problem becomes a
warning naming its JSON pointer, never an error. Operations are validated one by one rather than the whole
document so that a problem is reported where it is, and so that unused components cost nothing (the GitHub spec's
771 operations take about 20 ms).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openapi_pydantic.v3 import v3_0, v3_1
from pydantic import ValidationError

from gateway.spec import pointer
from gateway.spec.model import SchemaDialect

MAX_PROBLEMS = 5
"""Problems reported per operation; a badly broken operation should not drown the others' warnings."""

_MODELS = {"openapi-3.0": v3_0.Operation, "openapi-3.1": v3_1.Operation}


def check_operation(operation: Mapping[str, Any], at: str, dialect: SchemaDialect) -> list[tuple[str, str]]:
    """(JSON pointer, message) for each way the operation at `at` departs from the OpenAPI object model."""
    try:
        _MODELS[dialect].model_validate(operation)
    except ValidationError as exc:
        errors = exc.errors()
    except (ValueError, TypeError, RecursionError) as exc:  # the model itself choked: still only advisory
        return [(at, f"could not be checked against the OpenAPI object model: {exc}")]
    else:
        return []
    version = "3.0" if dialect == "openapi-3.0" else "3.1"
    problems = list(
        dict.fromkeys(
            (_pointer(operation, at, error["loc"]), f"not valid OpenAPI {version}: {error['msg']}")
            for error in errors
            if "Reference" not in error["loc"]  # the `$ref` branch of a union: noise when the object is not a ref
        )
    )
    if len(problems) > MAX_PROBLEMS:
        rest = len(problems) - MAX_PROBLEMS
        problems = [*problems[:MAX_PROBLEMS], (at, f"and {rest} more problems against the OpenAPI {version} model")]
    return problems


def _pointer(operation: Mapping[str, Any], at: str, loc: tuple[str | int, ...]) -> str:
    """The JSON pointer of a pydantic error location.

    pydantic puts the name of the union member tried into the location (`parameters/0/Parameter/in`): a token that
    is not a key of the data at that point is such a name and is left out, except the last one, which names a
    missing field.
    """
    node: Any = operation
    tokens: list[str | int] = []
    for i, token in enumerate(loc):
        in_map = isinstance(node, Mapping) and token in node
        if in_map or (isinstance(node, list) and isinstance(token, int) and 0 <= token < len(node)):
            node = node[token]
        elif i < len(loc) - 1:
            continue
        tokens.append(token)
    return pointer.join(at, *tokens)
