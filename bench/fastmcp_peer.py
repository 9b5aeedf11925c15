"""The peer: FastMCP's OpenAPI mode serving the same spec, run with FastMCP's own venv.

Configured as its documentation shows (`FastMCP.from_openapi` with an `httpx2.AsyncClient` pointed at
the backend) and served the same way as the gateway: Streamable HTTP at /mcp, stateless, JSON answers.
Everything else is FastMCP's default (its uvicorn access log included, as the gateway's audit log is on).

    python bench/fastmcp_peer.py --spec bench/bench-openapi.yaml --upstream http://127.0.0.1:PORT --port P
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import httpx2
import yaml
from fastmcp import FastMCP


def load_spec(path: Path) -> dict[str, Any]:
    """JSON or YAML, by extension (the cold-start spec is GitHub's 3.6 MB JSON)."""
    text = path.read_text()
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, type=Path)
    parser.add_argument("--upstream", required=True, help="backend base URL")
    parser.add_argument("--port", required=True, type=int)
    args = parser.parse_args()
    client = httpx2.AsyncClient(base_url=args.upstream, timeout=30)
    mcp = FastMCP.from_openapi(openapi_spec=load_spec(args.spec), client=client, name="bench-peer")
    mcp.run(transport="http", host="127.0.0.1", port=args.port, path="/mcp", stateless_http=True,
            json_response=True, show_banner=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
