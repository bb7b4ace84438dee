"""Parsing the HOST:PORT and URL strings people type on command lines."""

from __future__ import annotations

from urllib.parse import urlsplit

from contract.errors import ConfigError
from contract.i18n import N_, _

MAX_PORT = 65535
# A URL is logged, shown by status commands and stored: an account in it would leak everywhere.
CREDENTIALS_HINT = N_("remove user:password@ from the URL; give the account in its own settings")


def parse_host_port(text: str, *, option: str) -> tuple[str, int]:
    """'127.0.0.1:8080' or '[::1]:8080' -> (host, port); ConfigError naming the option."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ConfigError(
            option,
            _("{text!r} is not HOST:PORT").format(text=text),
            _("e.g. 127.0.0.1:8080 or [::]:8080"),
        )
    host = host.removeprefix("[").removesuffix("]")
    if not port_text.isdigit() or not 0 < int(port_text) <= MAX_PORT:
        raise ConfigError(
            option,
            _("port {port!r} is not a number from 1 to {most}").format(
                port=port_text, most=MAX_PORT
            ),
        )
    return host, int(port_text)


def parse_url(
    text: str,
    *,
    option: str,
    schemes: tuple[str, ...],
    credentials_hint: str | None = None,
) -> tuple[str, str, int | None]:
    """Split a URL into (scheme, host, port), refusing schemes we do not speak and credentials."""
    refuse_credentials(text, option=option, hint=credentials_hint)
    parts = urlsplit(text)
    if parts.scheme not in schemes or not parts.hostname:
        wanted = " or ".join(f"{s}://HOST:PORT" for s in schemes)
        raise ConfigError(
            option, _("{text!r} is not a URL of the form {wanted}").format(text=text, wanted=wanted)
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(
            option, _("{text!r} has a bad port ({reason})").format(text=text, reason=exc)
        ) from exc
    return parts.scheme, parts.hostname, port


def refuse_credentials(text: str, *, option: str, hint: str | None = None) -> None:
    """A URL with user:password@ is refused, and the refusal never repeats the password."""
    scheme, separator, rest = text.partition("://")
    authority = (rest if separator else text).split("/", 1)[0]
    if "@" not in authority:
        return
    shown = f"{scheme}{separator}***@{authority.rpartition('@')[2]}" if separator else "***@..."
    raise ConfigError(
        option,
        _("{url} holds an account (user:password@ in the URL)").format(url=shown),
        hint or _(CREDENTIALS_HINT),
    )
