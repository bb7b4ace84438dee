"""Every error a user can see: what was wrong, and what to do about it."""

from __future__ import annotations

from typing import Literal

from contract.i18n import _


class QosfleetError(Exception):
    """Base error: a message saying what was wrong and a hint saying what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  -> {self.hint}" if self.hint else self.message


class WireError(QosfleetError):
    """A result on the wire that does not follow schema v1; `field` names where."""

    def __init__(self, field: str, reason: str, hint: str = "") -> None:
        super().__init__(f"{field}: {reason}", hint)
        self.field = field
        self.reason = reason


class WireLimitError(WireError):
    """A message beyond a bound of the contract; `limit` is the refusal's reason label."""

    def __init__(self, limit: Literal["too-large", "too-deep"], reason: str, hint: str) -> None:
        super().__init__("$", reason, hint)
        self.limit: Literal["too-large", "too-deep"] = limit


class ConfigError(QosfleetError):
    """A configuration or profiles file with a bad key or value; `key` names it."""

    def __init__(self, key: str, reason: str, hint: str = "") -> None:
        super().__init__(_("config {key}: {reason}").format(key=key, reason=reason), hint)
        self.key = key


class ServiceError(QosfleetError):
    """A service we depend on (broker, store, target, tool) is missing or down."""
