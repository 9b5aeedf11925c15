"""`ToolIndex`: the search index over one endpoint's tools, built once at start-up, read per request.

It fuses independent signals, each a small module with one method, `scores(query) -> one float per tool`:
the lexical one (BM25, `gateway.discovery.lexical`) finds the tools that use the request's words, the
semantic one (static embeddings, `gateway.discovery.semantic`) those that say the same in other words.
Their scales differ (BM25 is unbounded, cosines are in [-1, 1]) and so does their spread from query to
query, so each is turned into z-scores over the tools before the weighted sum: a signal that is sure
of one tool (one score far above the rest) then counts for more than one that finds them all alike.
The action prior (`lexical.ActionPrior`: does the tool do what the request's verb asks?) is added on top,
in the same z units, whichever signals are on: it reorders tools the signals find alike, such as an
API's create, get and delete of one resource.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from gateway.discovery.documents import ToolDocument
from gateway.discovery.lexical import ActionPrior, LexicalSignal
from gateway.discovery.semantic import ModelUnavailable, SemanticSignal, load_model

log = logging.getLogger(__name__)

SIGNALS = ("lexical", "semantic")
WEIGHTS = {"lexical": 0.4, "semantic": 0.6}
ACTION_BONUS = 0.75  # in standard deviations of the fused score; about the gap between close candidates


class Signal(Protocol):
    """One way of scoring a request against every tool: higher is a better match."""

    def scores(self, query: str) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One found tool: its position in the documents the index was built from, and its score."""

    index: int
    score: float  # higher is better; only comparable within one query


def _standardised(scores: np.ndarray) -> np.ndarray:
    spread = float(scores.std())
    return (scores - scores.mean()) / spread if spread > 0 else np.zeros_like(scores)


@dataclass(frozen=True, slots=True)
class ToolIndex:
    """Ranks the tools of one endpoint for a natural-language request."""

    signals: tuple[tuple[float, Signal], ...]  # (weight, signal)
    prior: Signal
    size: int

    @classmethod
    def build(cls, documents: Sequence[ToolDocument], *, signals: tuple[str, ...] = SIGNALS) -> ToolIndex:
        """The index over `documents` with the named signals.

        Without the embedding model's package the semantic signal is left out (one warning) unless it is
        the only one asked for, which raises ModelUnavailable.
        """
        unknown = set(signals) - set(SIGNALS)
        if unknown or not signals:
            raise ValueError(f"signals must be a non-empty subset of {SIGNALS}, not {signals!r}")
        built: list[tuple[float, Signal]] = []
        if "lexical" in signals:
            built.append((WEIGHTS["lexical"], LexicalSignal.build(documents)))
        if "semantic" in signals:
            try:
                built.append((WEIGHTS["semantic"], SemanticSignal.build(documents, load_model())))
            except ModelUnavailable as exc:
                if not built:
                    raise
                log.warning("tool search uses words only, not meaning: %s", exc)
        return cls(tuple(built), ActionPrior.build(documents), len(documents))

    def __len__(self) -> int:
        return self.size

    def search(self, query: str, limit: int, *, allowed: Callable[[int], bool] | None = None) -> list[SearchHit]:
        """The best `limit` tools for `query`, best first, only those `allowed` (ties: lower index first)."""
        if limit <= 0 or not self.size or not query.strip():
            return []
        total = np.zeros(self.size, dtype=np.float64)
        for weight, signal in self.signals:
            total += weight * _standardised(np.asarray(signal.scores(query), dtype=np.float64))
        total += ACTION_BONUS * self.prior.scores(query)
        order = np.lexsort((np.arange(self.size), -total))
        hits: list[SearchHit] = []
        for i in order:
            if allowed is None or allowed(int(i)):
                hits.append(SearchHit(int(i), float(total[i])))
                if len(hits) == limit:
                    break
        return hits
