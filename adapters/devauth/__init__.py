"""A small OAuth 2.0 authorization server for trying the gateway's token checks locally (not for production)."""

from adapters.devauth.server import TOKEN_EXCHANGE, AuthServer

__all__ = ["TOKEN_EXCHANGE", "AuthServer"]
