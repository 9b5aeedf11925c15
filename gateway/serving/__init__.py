"""Serving: transports over one call path.

`endpoint.py` holds what an endpoint serves and its request handlers; each transport is a small adapter
beside it that parses its framing and calls them: `sdk.py` (the official SDK's Streamable HTTP app and
stdio) and `fast.py` (the hot stateless JSON requests, answered without the SDK's per-request machinery).
"""
