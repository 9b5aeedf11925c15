"""Errors raised at start-up: each one says what is wrong and where (file, line or JSON pointer)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """A problem found while loading a spec or a mapping.

    `where` is a human-readable location: `file:line`, or `file#/json/pointer`.
    Warnings are kept on the loaded model and printed by `gateway check`; errors stop loading.
    """

    where: str
    message: str
    severity: str = "warning"  # "warning" | "error"

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class GatewayError(Exception):
    """Base class for start-up errors; `str()` is a complete, user-facing message."""


class SpecError(GatewayError):
    """The OpenAPI document cannot be used at all (unreadable, not OpenAPI, no usable operations)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


class ConfigError(GatewayError):
    """A mapping or gateway configuration file is invalid; the message names file:line and the field."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message
