"""`ToolDocument`: what the search index knows of one tool, in plain text fields.

The index never looks at a `ToolSpec` itself: a document keeps only the words a request can meet (name,
title, description, route, tags, arguments, mapping keywords), so the signals can be built and tested over
hand-made documents, and the index holds no reference to the call path's records.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bm25s.stopwords import STOPWORDS_EN_PLUS

if TYPE_CHECKING:
    from gateway.tools.model import ToolSpec

MAX_DESCRIPTION = 1000
MAX_PARAMETER_DESCRIPTION = 200
MAX_PARAMETERS = 60

_CAMEL_LOWER_UPPER = re.compile(r"([a-z0-9])([A-Z])")
_CAMEL_ACRONYM = re.compile(r"([A-Z]+)([A-Z][a-z])")
_WORD = re.compile(r"[a-z0-9]+")
_MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_URL = re.compile(r"https?://\S+")
STOPWORDS = frozenset(STOPWORDS_EN_PLUS)  # bm25s's English list: articles, pronouns, auxiliaries, prepositions


def words(text: str) -> list[str]:
    """Lower-case words of `text`, with camelCase, PascalCase, snake_case, kebab-case and dotted names split.

    `listPetsByOwner` -> list, pets, by, owner; `HTTPServer` -> http, server; `chat.postMessage` -> chat,
    post, message. Markdown link targets and bare URLs are dropped: their host and path words are noise.
    """
    text = _URL.sub(" ", _MARKDOWN_LINK.sub(r"\1", text))
    text = _CAMEL_ACRONYM.sub(r"\1 \2", _CAMEL_LOWER_UPPER.sub(r"\1 \2", text))
    return _WORD.findall(text.lower())


def content_words(text: str) -> list[str]:
    """`words(text)` without stop words: what a request or a tool is about, not how it is phrased."""
    return [w for w in words(text) if w not in STOPWORDS]


@dataclass(frozen=True, slots=True)
class ToolDocument:
    """The searchable text of one tool.

    `parameters` are (argument name, description) pairs of the tool's input schema; `keywords` are the
    mapping's extra words for the tool (the words its users say that the spec does not).
    """

    name: str
    title: str | None
    description: str
    method: str  # upper case
    path: str
    tags: tuple[str, ...]
    parameters: tuple[tuple[str, str], ...]
    keywords: tuple[str, ...] = ()

    @classmethod
    def from_tool(cls, tool: ToolSpec) -> ToolDocument:
        """The document of a generated tool: its served name and texts, its operation's route and tags."""
        operation = tool.operation
        title = tool.title or operation.summary.strip() or None
        description = tool.description.strip()
        summary = operation.summary.strip()
        if summary and summary != title and summary not in description:
            description = f"{summary}\n\n{description}"
        properties = tool.input_schema.get("properties")
        return cls(
            name=tool.name,
            title=title,
            description=description[:MAX_DESCRIPTION],
            method=operation.method.upper(),
            path=operation.path,
            tags=tuple(operation.tags),
            parameters=_parameters(properties if isinstance(properties, Mapping) else {}),
            keywords=tuple(getattr(tool, "keywords", ())),
        )


def _parameters(properties: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """(name, description) of each argument, and of each property of an object argument (a request body
    that is not flattened keeps what the tool takes inside it: `body.To`, `body.Twiml`)."""
    pairs: list[tuple[str, str]] = []
    for argument, schema in properties.items():
        pairs.append((str(argument), _description(schema)))
        inner = schema.get("properties") if isinstance(schema, Mapping) else None
        if isinstance(inner, Mapping):
            pairs.extend((f"{argument}.{name}", _description(value)) for name, value in inner.items())
    return tuple(pairs[:MAX_PARAMETERS])


def _description(schema: Any) -> str:
    text = schema.get("description") if isinstance(schema, Mapping) else None
    return str(text or "")[:MAX_PARAMETER_DESCRIPTION]
