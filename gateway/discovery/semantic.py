"""The semantic signal: cosine similarity of static text embeddings (WordLlama, shipped inside its wheel).

A static model embeds a text as the mean of its tokens' vectors: no network call, no neural network run
per query, a few microseconds per text. It matches a request to a tool that says the same thing in other
words ("reboot" ~ "restart"), which BM25 cannot. Each tool is embedded in three views, its name (name,
title, tags), the opening of its description, and its arguments, because averaging all into one vector
lets a long description or a long argument list drown the few words that say what the tool does. Stop
words are left out of every text: in a mean of token vectors they only pull all texts together.

The model (a 32000 x 256 token matrix and its tokenizer) is read once per process from the installed
`wordllama` package, never downloaded: the package's own loader looks for the tokenizer under another
name and falls back to Hugging Face, and importing it configures the root logger, so only its files are
used here.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gateway.discovery.documents import ToolDocument, content_words

MODEL_PACKAGE = "wordllama"
_TOKENIZER = Path("tokenizers") / "l2_supercat_tokenizer_config.json"
_WEIGHTS = Path("weights") / "l2_supercat_256.safetensors"
VIEW_WEIGHTS = (0.4, 0.4, 0.2)  # name, description, arguments: the arguments only hint at what a tool does
DESCRIPTION_CHARS = 300  # the first sentences say what a tool does; the rest is detail
ARGUMENT_CHARS = 80  # the opening of each argument's description
ARGUMENTS_CHARS = 400  # the first arguments (path and required ones come first) say what a tool acts on


class ModelUnavailable(RuntimeError):
    """The embedding model's package (or a file of it) is not installed."""


@dataclass(frozen=True, slots=True)
class StaticModel:
    """A read-only static embedding model: token vectors and the tokenizer that maps text to them."""

    vectors: np.ndarray  # (vocabulary, dimensions) float16, as shipped: half the memory, summed in float32
    tokenizer: object  # tokenizers.Tokenizer

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of `texts` (mean of their tokens' vectors); an empty text is the zero vector."""
        out = np.zeros((len(texts), self.vectors.shape[1]), dtype=np.float32)
        for row, encoding in enumerate(self.tokenizer.encode_batch(list(texts), add_special_tokens=False)):
            if encoding.ids:
                out[row] = self.vectors[encoding.ids].sum(axis=0, dtype=np.float32)  # the mean's direction is the sum's
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)


@functools.cache
def load_model() -> StaticModel:
    """The WordLlama model from its installed package, read once per process (it is immutable).

    Raises ModelUnavailable when the package, its files or its readers (safetensors, tokenizers) are missing.
    """
    found = importlib.util.find_spec(MODEL_PACKAGE)
    if found is None or not found.submodule_search_locations:
        raise ModelUnavailable(f"the {MODEL_PACKAGE} package is not installed")
    root = Path(next(iter(found.submodule_search_locations)))
    tokenizer_file, weights_file = root / _TOKENIZER, root / _WEIGHTS
    if not tokenizer_file.is_file() or not weights_file.is_file():
        raise ModelUnavailable(f"the {MODEL_PACKAGE} package has no {_TOKENIZER} or {_WEIGHTS}")
    try:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer
    except ImportError as exc:  # both come with wordllama; a partial install lacks them
        raise ModelUnavailable(f"the {MODEL_PACKAGE} model cannot be read: {exc}") from exc

    vectors = next(iter(load_file(str(weights_file)).values()))
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return StaticModel(vectors, tokenizer)


def name_text(document: ToolDocument) -> str:
    """The name view: what the tool is called, names split into words."""
    return _joined(" ".join((document.title or "", document.name, *document.keywords, *document.tags)))


def description_text(document: ToolDocument) -> str:
    """The description view: the opening of the description."""
    return _joined(document.description[:DESCRIPTION_CHARS])


def arguments_text(document: ToolDocument) -> str:
    """The arguments view: each argument's name and the opening of its description."""
    return _joined(" ".join(f"{name} {text[:ARGUMENT_CHARS]}" for name, text in document.parameters)[:ARGUMENTS_CHARS])


def _joined(text: str) -> str:
    return " ".join(content_words(text))


@dataclass(frozen=True, slots=True)
class SemanticSignal:
    """Cosine similarity of a request to each tool's views, mixed by VIEW_WEIGHTS.

    A view with no words (no description, no arguments) falls back to the name view, so a terse tool is
    not penalised for what its spec leaves out.
    """

    model: StaticModel
    views: np.ndarray  # (documents, dimensions): the views' unit vectors, weighted and summed

    @classmethod
    def build(cls, documents: Sequence[ToolDocument], model: StaticModel) -> SemanticSignal:
        names = [name_text(d) for d in documents]
        texts = [*names, *(description_text(d) or n for d, n in zip(documents, names, strict=True)),
                 *(arguments_text(d) or n for d, n in zip(documents, names, strict=True))]
        vectors = model.embed(texts).reshape(3, len(documents), -1) if documents else np.zeros((3, 0, 1))
        return cls(model, np.tensordot(np.asarray(VIEW_WEIGHTS, dtype=np.float32), vectors, axes=1))

    def scores(self, query: str) -> np.ndarray:
        return self.views @ self.model.embed([_joined(query)])[0]
