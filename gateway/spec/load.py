"""Load an OpenAPI / Swagger document from a file or URL into an `ApiModel` (being written)."""

from __future__ import annotations

from gateway.spec.model import ApiModel


def load_spec(source: str) -> ApiModel:
    raise NotImplementedError
