"""JSON Pointer (RFC 6901) helpers shared by the loader and the schema converter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def join(pointer: str, *tokens: str | int) -> str:
    """`join("#/paths", "/pets", "get")` -> `#/paths/~1pets/get`."""
    return pointer + "".join("/" + escape(str(t)) for t in tokens)


def resolve(document: Any, pointer: str) -> Any:
    """The node at `pointer` (`#/a/b` or `/a/b`) in `document`; KeyError when it is not there."""
    path = pointer[1:] if pointer.startswith("#") else pointer
    node = document
    if not path:
        return node
    for raw in path.split("/")[1:]:
        token = unescape(raw)
        if isinstance(node, Mapping):
            if token not in node:
                raise KeyError(pointer)
            node = node[token]
        elif isinstance(node, list):
            try:
                node = node[int(token)]
            except (ValueError, IndexError):
                raise KeyError(pointer) from None
        else:
            raise KeyError(pointer)
    return node
