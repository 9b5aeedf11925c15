"""Media types: one answer, for every stage, to "is this JSON?" and "is this XML?"."""

from __future__ import annotations


def essence(content_type: str) -> str:
    """`Application/JSON; charset=utf-8` -> `application/json`: the type without parameters, lower case."""
    return content_type.split(";", 1)[0].strip().lower()


def is_json(content_type: str) -> bool:
    """JSON and its structured-syntax variants (`application/merge-patch+json`, `text/json`, ...)."""
    media = essence(content_type)
    return media.endswith(("/json", "+json"))


def is_xml(content_type: str) -> bool:
    media = essence(content_type)
    return media.endswith(("/xml", "+xml"))
