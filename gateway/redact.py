"""Redaction: secrets and credentials are cut out of error texts, leaked answers and log lines.

Two kinds of secret are recognised. Known secrets are exact values the gateway holds: configured API
keys, passwords and client secrets, and the upstream tokens current right now (they rotate, so they are
read from live sources on every use rather than copied once). Generic credentials are recognised by
their shape: `Authorization:` and cookie headers, `Bearer`/`Basic` credentials, JWTs, and secret-named
`key=value` or JSON fields. Text that names no credential at all (the usual case) is spotted by a
keyword check and comes back unchanged in microseconds, so every error and log line can go through it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from urllib.parse import quote

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 6
"""Shorter known values are not searched for: replacing every "abc" would shred ordinary text."""

SecretSource = Callable[[], Iterable[str]]

_HEADER_NAMES = r"(?:proxy-)?authorization|set-cookie|cookie|x-api-key|api-key|x-auth-token|x-access-token"
_FIELD_NAMES = (
    rf"{_HEADER_NAMES}|api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|id[_-]?token|client[_-]?secret"
    r"|token|password|passwd|secret|session[_-]?id"
)
_TOKEN_CHARS = r"[A-Za-z0-9._~+/=-]"
_PATTERN = re.compile(
    # `Authorization: Bearer x`, `Cookie: a=b; c=d`: the header value, up to the end of the line or a quote.
    rf"(?P<header>(?<![\w-])(?:{_HEADER_NAMES})[ \t]*:[ \t]*)[^\r\n\"']+"
    # `"password": "x"` (JSON, or a Python repr with single quotes); the closing quote stays.
    rf"|(?P<field>(?P<q>[\"'])(?:{_FIELD_NAMES})(?P=q)[ \t]*:[ \t]*(?P<open>[\"']))(?:\\.|(?!(?P=open)).)*"
    # `access_token=x` in a query string or form body.
    rf"|(?P<param>(?<![\w-])(?:{_FIELD_NAMES})=)[^&\s\"'<>,;]+"
    # A credential after its scheme, wherever it appears.
    rf"|(?P<scheme>\b(?:Bearer|Basic|Digest)[ \t]+)(?P<credential>{_TOKEN_CHARS}{{8,}})"
    # A JWT: a JSON header (`{"` -> `eyJ`), then a JWE's four segments (the key may be empty) or a JWS's two.
    r"|\beyJ[\w-]{4,}\.(?:[\w-]*\.[\w-]+\.[\w-]+\.[\w-]+|[\w-]+\.[\w-]*)",
    re.IGNORECASE | re.ASCII,
)
_TRIGGERS = ("authorization", "cookie", "api-key", "api_key", "apikey", "token", "secret", "passw", "session",
             "bearer", "basic", "digest", "eyj")
"""Words every `_PATTERN` match contains (lower case): text without any skips the costlier regex scan."""
_SECRET_NAME = re.compile(r"pass(?:word|wd|phrase)?|pwd|token|secret|key|authori[sz]ation|cookie|credential|"
                          r"session|signature", re.IGNORECASE)


def looks_secret(name: str) -> bool:
    """True for an argument or header name whose value is likely a credential (`api_key`, `password`, ...)."""
    return _SECRET_NAME.search(name) is not None


def _looks_like_credential(value: str) -> bool:
    """A credential after `Bearer`/`Basic`, rather than a word ("Basic information"): random strings of
    eight or more characters have a digit, an inner capital or a base64 sign; prose words do not."""
    return any(c.isdigit() or c in "+/=" for c in value) or any(c.isupper() for c in value[1:])


def _replace(match: re.Match[str]) -> str:
    """The match with its secret part replaced: the name or scheme before it is kept, for the reader."""
    if match["scheme"] is not None and not _looks_like_credential(match["credential"]):
        return match[0]
    kept = match["header"] or match["field"] or match["param"] or match["scheme"] or ""
    return kept + REDACTED


_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]*")  # RFC 3986 unreserved: neither percent-encoding nor JSON changes them


def _forms(secrets: Iterable[str]) -> frozenset[str]:
    """Each secret long enough to search for, as written, percent-encoded and escaped inside a JSON string.

    A secret of unreserved characters only (a JWT, most API keys) is its own percent-encoded and
    JSON-escaped form; checking that is far cheaper than encoding a caller's token on every call."""
    forms = set()
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_LENGTH:
            forms.add(secret)
            if not _UNRESERVED.fullmatch(secret):
                forms.update((quote(secret, safe=""), json.dumps(secret)[1:-1]))
    return frozenset(forms)


class Redactor:
    """Cuts known secrets and recognisable credentials out of text.

    `secrets` are fixed values; each of `sources` is called on every use and yields values current at
    that moment (a backend's cached tokens). `add()` accepts more at run time.
    """

    def __init__(self, secrets: Iterable[str] = (), sources: Iterable[SecretSource] = ()) -> None:
        self._forms: frozenset[str] = frozenset()
        self._sources: list[SecretSource] = list(sources)
        # known() runs for every call and every log line, while the sources' values change rarely (a token
        # refresh): their forms are computed and sorted again only when those values change.
        self._seen: frozenset[str] | None = None
        self._all: frozenset[str] = frozenset()
        self._ordered: tuple[str, ...] = ()
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        self._forms = self._forms | _forms(secrets)
        self._seen = None

    def known(self, extra: Iterable[str] = ()) -> tuple[str, ...]:
        """Every known secret as it may appear in text (plain, percent-encoded, JSON-escaped), longest first."""
        values = frozenset(value for source in self._sources for value in source())
        if values != self._seen:
            self._all = self._forms | _forms(values)
            self._ordered = tuple(sorted(self._all, key=len, reverse=True))
            self._seen = values
        more = _forms(extra) - self._all
        return tuple(sorted((*self._ordered, *more), key=len, reverse=True)) if more else self._ordered

    def redact(self, text: str, extra: Iterable[str] = ()) -> str:
        """`text` with known secrets (and `extra` ones) and recognisable credentials replaced by "[redacted]"."""
        for secret in self.known(extra):
            if secret in text:
                text = text.replace(secret, REDACTED)
        lowered = text.lower()
        return _PATTERN.sub(_replace, text) if any(word in lowered for word in _TRIGGERS) else text

    def scrub(self, content: bytes, extra: Iterable[str] = ()) -> bytes:
        """`content` with known secrets replaced; the same object when none occurs (the usual case).

        Meant for upstream answers: only exact known values are replaced, so a JSON answer stays JSON
        ("[redacted]" needs no escaping) and an answer carrying no secret is never rewritten.
        """
        for secret in self.known(extra):
            raw = secret.encode()
            if raw in content:
                content = content.replace(raw, REDACTED.encode())
        return content


class RedactingFilter(logging.Filter):
    """Redacts a record's message (arguments merged in) and its traceback before any handler sees them."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed format: the handler reports it, the record has no text to leak
            return True
        cleaned = self.redactor.redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.redact(record.exc_text)
        return True


LOGGER_PREFIXES = ("gateway", "aiohttp", "httpx2", "httpcore2", "mcp", "uvicorn")


def install_log_redaction(redactor: Redactor, prefixes: Iterable[str] = LOGGER_PREFIXES) -> Callable[[], None]:
    """Add a `RedactingFilter` to every logger named by or under `prefixes`; returns the function that removes it.

    Filters sit on loggers, not handlers, so every handler (the console, pytest's caplog, a log shipper)
    gets the redacted record. A logger filter only sees records logged on that very logger, hence every
    existing descendant is covered: install it once the gateway's modules are imported (at server start).
    """
    prefixes = tuple(prefixes)
    for prefix in prefixes:
        logging.getLogger(prefix)
    names = [name for name, logger in logging.root.manager.loggerDict.items()
             if isinstance(logger, logging.Logger) and any(name == p or name.startswith(p + ".") for p in prefixes)]
    log_filter = RedactingFilter(redactor)
    loggers = [logging.getLogger(name) for name in names]
    for logger in loggers:
        logger.addFilter(log_filter)

    def remove() -> None:
        for logger in loggers:
            logger.removeFilter(log_filter)

    return remove
