"""Decoding people's TOML and machines' JSON into frozen types, with errors that name the key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from contract.errors import ConfigError

T = TypeVar("T")
_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")


class Strict(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of types people write: an unknown key is a typo, so it is refused by name."""


def split_validation_error(exc: msgspec.ValidationError) -> tuple[str, str]:
    """msgspec's 'Expected int - at `$.a.b`' -> ('a.b', 'Expected int')."""
    text = str(exc)
    match = _AT.search(text)
    return (match.group("path") or "(top level)") if match else "(top level)", _AT.sub("", text)


def read_toml(path: Path, *, hint: str) -> dict[str, Any]:
    """Read a TOML file as plain tables; ConfigError says why it could not be read."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(str(path), "file not found", hint) from None
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read ({exc.strerror})", hint) from exc
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"not valid TOML ({exc})", "fix the TOML syntax") from exc


def convert(table: object, type_: type[T], *, where: str, hint: str) -> T:
    """Validate plain tables into `type_`; ConfigError names `where` + the bad key's path."""
    try:
        return msgspec.convert(table, type=type_)
    except msgspec.ValidationError as exc:
        key, reason = split_validation_error(exc)
        joined = f"{where}{key}" if key != "(top level)" else where.rstrip(". :")
        raise ConfigError(joined, reason, hint) from exc


def load_toml(path: Path, type_: type[T], *, hint: str) -> T:
    """Read a TOML file into `type_`; ConfigError names the file and the bad key."""
    return convert(read_toml(path, hint=hint), type_, where=f"{path}: ", hint=hint)
