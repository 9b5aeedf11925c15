"""The local authorization server for the "gateway + JWT" row, run with the project's Python.

Starts the repo's development authorization server (`adapters.devauth.AuthServer`: metadata, JWKS, RS256
JWT access tokens), mints a few real tokens for the gateway's resource URL, prints
`{"issuer": ..., "tokens": [...]}` as one line on stdout and serves until it is terminated. Several
tokens, rotated per request by the load generator, so a server that caches verified tokens still has
more than one to verify.

    python bench/authserver.py --audience http://127.0.0.1:PORT/mcp --tokens 16
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `adapters` from this checkout

from adapters.devauth import AuthServer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audience", required=True, help="the gateway's public MCP URL (the tokens' aud)")
    parser.add_argument("--tokens", type=int, default=16, help="how many distinct tokens to mint")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with AuthServer(audience=args.audience) as auth:
        tokens = [auth.issue(subject=f"bench-user-{n}", expires_in=6 * 3600) for n in range(args.tokens)]
        print(json.dumps({"issuer": auth.url, "tokens": tokens}), flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
