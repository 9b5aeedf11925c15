"""Secret references: `${ENV_VAR}` or `file:/path`, resolved once at start into a `Secret`.

Configuration files are read, copied and committed; secrets are not put in them. A secret field names
where the value lives instead: an environment variable (how container platforms inject secrets) or a
file (how Kubernetes and Docker mount them). An inline value is refused rather than accepted with a
warning, so a leaked config file never leaks a credential. Errors name the variable or the path, never
a value.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from gateway.auth.settings import Secret
from gateway.errors import ConfigError

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def resolve_secret(reference: str, where: str) -> Secret:
    """The secret `reference` points to; `ConfigError(where, ...)` if it is inline, missing or empty."""
    if not isinstance(reference, str):
        raise ConfigError(where, "secrets must be given as ${ENV_VAR} or file:/path, never inline")
    if match := _ENV_REFERENCE.fullmatch(reference):
        name = match.group(1)
        value = os.environ.get(name)
        if not value:
            state = "is not set" if value is None else "is empty"
            raise ConfigError(where, f"the environment variable {name} named by {reference} {state}")
        return Secret(value, reference)
    if reference.startswith("file:") and len(reference) > len("file:"):
        path = Path(reference[len("file:"):]).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
            raise ConfigError(where, f"cannot read the secret file {path}: {reason}") from None
        value = text[:-2] if text.endswith("\r\n") else text.removesuffix("\n")
        if not value:
            raise ConfigError(where, f"the secret file {path} is empty")
        return Secret(value, reference)
    raise ConfigError(where, "secrets must be given as ${ENV_VAR} or file:/path, never inline")
