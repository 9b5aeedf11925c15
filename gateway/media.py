"""Media types: one answer, for every stage, to "is this JSON?" and "is this XML?"."""

from __future__ import annotations


def essence(content_type: str) -> str:
    """`Application/JSON; charset=utf-8` -> `application/json`: the type without parameters, lower case."""
    return content_type.split(";", 1)[0].strip().lower()


def is_json(content_type: str) -> bool:
    """JSON and its structured-syntax variants (`application/merge-patch+json`, `text/json`, ...)."""
    media = essence(content_type)
    return media.endswith(("/json", "+json"))


JSON_LINES = frozenset({
    "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonl",
    "application/jsonlines", "application/x-jsonlines", "application/json-seq", "application/jsonseq",
})
"""Media types of line-delimited JSON (one JSON text per line; RFC 7464 `json-seq` separates them with RS)."""


def is_json_lines(content_type: str) -> bool:
    """NDJSON, JSON Lines, JSON text sequences (`application/geo+json-seq` too): a stream of JSON records."""
    media = essence(content_type)
    return media in JSON_LINES or media.endswith("+json-seq")


def is_xml(content_type: str) -> bool:
    media = essence(content_type)
    return media.endswith(("/xml", "+xml"))
