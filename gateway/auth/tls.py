"""TLS towards one backend: a private CA and a client certificate (mutual TLS), as an `ssl.SSLContext`.

A `ca_bundle` replaces the default trust store rather than adding to it: a backend behind a private CA
should be reachable only with a certificate from that CA. Certificates and keys are loaded at start, so
a wrong path, a key that does not match its certificate or a wrong key password stops the gateway with
a message naming the file, not the first call.
"""

from __future__ import annotations

import ssl

import httpx2

from gateway.auth.settings import TlsSettings
from gateway.errors import ConfigError


def ssl_context(tls: TlsSettings, where: str) -> ssl.SSLContext | None:
    """The context for `tls`, or None when nothing differs from the default (system CAs, no client cert)."""
    if tls.ca_bundle is None and tls.client_cert is None:
        if tls.client_key is not None:
            raise ConfigError(where, "tls.client_key needs tls.client_cert")
        return None
    if tls.ca_bundle is not None:
        try:
            context = ssl.create_default_context(cafile=tls.ca_bundle)
        except OSError as exc:  # ssl.SSLError included
            raise ConfigError(where, f"tls.ca_bundle: cannot load CA certificates from {tls.ca_bundle}: "
                                     f"{_reason(exc)}") from None
    else:
        context = httpx2.create_ssl_context(trust_env=False)
    if tls.client_cert is not None:
        secret = tls.client_key_password
        try:
            # A callable, even without a configured password: given None, OpenSSL would prompt on the terminal
            # for an encrypted key and hang the start.
            context.load_cert_chain(tls.client_cert, tls.client_key, lambda: secret.reveal() if secret else "")
        except OSError as exc:  # ssl.SSLError included
            files = tls.client_cert if tls.client_key is None else f"{tls.client_cert} and {tls.client_key}"
            raise ConfigError(where, f"tls.client_cert: cannot load the client certificate and key from {files}: "
                                     f"{_reason(exc)}") from None
    return context


def _reason(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or "not a usable PEM file (or a wrong key password)"
    return exc.strerror or type(exc).__name__
