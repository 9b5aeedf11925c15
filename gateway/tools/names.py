"""Tool and argument names that every MCP client accepts, derived deterministically from the spec.

Tool names must match `^[a-zA-Z0-9_-]{1,64}$` (MCP and the model vendors' function-calling rules);
argument names `^[a-zA-Z0-9_.-]{1,64}$` (the strictest vendor rule for property keys). Names are a
pure function of the spec and the mapping, so they are stable across restarts and replicas.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from gateway.spec.model import Operation

_NOT_TOOL_CHAR = re.compile(r"[^a-zA-Z0-9_-]+")
_NOT_ARG_CHAR = re.compile(r"[^a-zA-Z0-9_.-]+")
MAX_LENGTH = 64


def _fit(name: str, limit: int = MAX_LENGTH) -> str:
    """Shorten an over-long name, keeping it unique with a short hash of the full name."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return name[: limit - 9].rstrip("_-.") + "_" + digest


def tool_name(raw: str) -> str:
    """`raw` made into a valid tool name: invalid runs become "_", trimmed, at most 64 characters."""
    name = _NOT_TOOL_CHAR.sub("_", raw).strip("_") or "tool"
    return _fit(name)


def operation_name(operation: Operation) -> str:
    """The default tool name: the operationId, else method and path (`GET /pets/{id}` -> `get_pets_id`)."""
    if operation.operation_id:
        return tool_name(operation.operation_id)
    path = re.sub(r"_+", "_", _NOT_TOOL_CHAR.sub("_", operation.path)).strip("_")  # `/jobs?a=b` -> `jobs_a_b`
    return tool_name(f"{operation.method}_{path}")


def argument_name(raw: str) -> str:
    """A parameter or property name made into a valid argument name (`$filter` -> `filter`)."""
    name = _NOT_ARG_CHAR.sub("_", raw).strip("_") or "arg"
    return _fit(name)


def unique(names: Iterable[str], taken: Iterable[str] = ()) -> list[str]:
    """The names, with `_2`, `_3`... appended (in order) to each repeat, so all are distinct."""
    seen = set(taken)
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = _fit(name, MAX_LENGTH - len(str(n)) - 1) + f"_{n}"
        seen.add(candidate)
        out.append(candidate)
    return out
