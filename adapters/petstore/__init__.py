"""The bundled petstore example: `openapi.yaml`, `mapping.yaml` and a small real backend (`backend.py`)."""

from pathlib import Path

HERE = Path(__file__).resolve().parent
SPEC = HERE / "openapi.yaml"
MAPPING = HERE / "mapping.yaml"
