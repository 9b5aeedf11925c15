"""Word-level signals: BM25 over each tool's stemmed words, and the prior of what the request wants done.

A tool's name and title say what it does in a few words, its description says it at length, its route
and argument names say what it acts on: so the name and title are repeated in the indexed text, BM25's
usual stand-in for field weights (a term's frequency saturates, so the repetition lifts a match there
without letting it drown the rest).

BM25 cannot tell "create a release" from "get a release by tag": both share the noun that matters. The
verb says which, and an HTTP API says it twice, in its method and in the verb its names start with, so
`ActionPrior` favours the tools whose action is the one the request's verbs ask for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import bm25s
import numpy as np
import Stemmer

from gateway.discovery.documents import STOPWORDS, ToolDocument, words

NAME_WEIGHT = 2  # how many times the name, title and mapping keywords are indexed

_STEMMER = Stemmer.Stemmer("english")


def terms(text: str) -> list[str]:
    """The BM25 terms of `text`: its words (names split), stop words dropped, Snowball-stemmed."""
    return _STEMMER.stemWords([w for w in words(text) if w not in STOPWORDS])


def document_terms(document: ToolDocument) -> list[str]:
    """The terms indexed for one tool, those of its name fields repeated."""
    name = terms(" ".join((document.name, document.title or "", *document.keywords)))
    rest = terms(" ".join((document.path.replace("{", " ").replace("}", " "), " ".join(document.tags),
                           document.description, " ".join(argument for argument, _ in document.parameters))))
    return name * NAME_WEIGHT + rest


@dataclass(frozen=True, slots=True)
class LexicalSignal:
    """BM25 scores of a request against every document (0 where no term is shared)."""

    retriever: bm25s.BM25
    size: int

    @classmethod
    def build(cls, documents: Sequence[ToolDocument]) -> LexicalSignal:
        retriever = bm25s.BM25()
        if documents:
            retriever.index([document_terms(d) or [""] for d in documents], show_progress=False)
        return cls(retriever, len(documents))

    def scores(self, query: str) -> np.ndarray:
        known = [t for t in terms(query) if t in self.retriever.vocab_dict] if self.size else []
        if not known:
            return np.zeros(self.size, dtype=np.float32)
        return self.retriever.get_scores(known)


# General English verbs of the four things an HTTP API does to a resource (not any API's own words).
_ACTION_VERBS = {
    "create": "create add new make open start post send upload invite generate submit register insert build "
              "write publish schedule launch begin compose issue",
    "read": "get list show find which what who view see look check browse search read fetch retrieve download "
            "display count many much whether lookup",
    "update": "update change edit modify set rename move fix replace adjust configure enable disable turn point "
              "switch mark scale resize patch",
    "delete": "delete remove revoke drop erase destroy kick unsubscribe uninstall clear purge",
}
ACTION_OF_WORD = {word: action for action, verbs in _ACTION_VERBS.items() for word in verbs.split()}
ACTION_OF_METHOD = {
    "GET": frozenset({"read"}), "HEAD": frozenset({"read"}), "POST": frozenset({"create"}),
    "PUT": frozenset({"create", "update"}), "PATCH": frozenset({"update"}), "DELETE": frozenset({"delete"}),
}
NAME_VERBS = 4  # an action verb among a name's first words is its action ("repos_create-release")


def tool_actions(document: ToolDocument) -> frozenset[str]:
    """What a tool does: the action verbs its name or title starts with, else its HTTP method's action.

    The name wins because RPC-style APIs send every call as POST (`reminders.delete`, `chat.update`).
    """
    named = {ACTION_OF_WORD[w] for text in (document.name, document.title or "")
             for w in words(text)[:NAME_VERBS] if w in ACTION_OF_WORD}
    return frozenset(named) or ACTION_OF_METHOD.get(document.method, frozenset())


@dataclass(frozen=True, slots=True)
class ActionPrior:
    """1 for the tools whose action the request's verbs ask for, 0 for the others (all 0 without a verb)."""

    actions: tuple[frozenset[str], ...]

    @classmethod
    def build(cls, documents: Sequence[ToolDocument]) -> ActionPrior:
        return cls(tuple(tool_actions(d) for d in documents))

    def scores(self, query: str) -> np.ndarray:
        wanted = {ACTION_OF_WORD[w] for w in words(query) if w in ACTION_OF_WORD}
        return np.array([1.0 if wanted & actions else 0.0 for actions in self.actions], dtype=np.float32)
