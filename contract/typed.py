"""Decoding people's TOML and machines' JSON into frozen types, with errors that name the key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from contract.errors import ConfigError, WireError, WireLimitError

T = TypeVar("T")
_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")


class Strict(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of types people write: an unknown key is a typo, so it is refused by name."""


def split_validation_error(exc: msgspec.ValidationError) -> tuple[str, str]:
    """msgspec's 'Expected int - at `$.a.b`' -> ('a.b', 'Expected int')."""
    text = str(exc)
    match = _AT.search(text)
    return (match.group("path") or "(top level)") if match else "(top level)", _AT.sub("", text)


def decode_json(
    decoder: msgspec.json.Decoder[T], data: bytes | str, *, max_bytes: int, hint: str = ""
) -> T:
    """Decode one message from outside; WireError names the offending field.

    Bounded in size (`max_bytes`, checked before any parsing) and in depth: msgspec enters every
    nesting level through CPython's recursion guard, so JSON nested deeper than the interpreter's
    recursion limit (1,000 levels; nothing in this project raises it) stops with RecursionError
    before the C stack is at risk. That exception unwinds like any other - the decoder keeps no
    state between calls - and costs nothing on a valid message, where scanning the bytes for
    their depth first would cost a pass in Python per message. No wire type nests more than
    a few levels, so nothing genuine comes near the bound.
    """
    if len(data) > max_bytes:
        raise WireLimitError(
            "too-large", f"{len(data)} bytes > {max_bytes}", "send smaller messages"
        )
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        path, reason = split_validation_error(exc)
        raise WireError(f"$.{path}", reason, hint) from exc
    except msgspec.DecodeError as exc:
        raise WireError("$", f"not valid JSON ({exc})", "send one UTF-8 JSON object") from exc
    except RecursionError:
        raise WireLimitError(
            "too-deep", "JSON nested too deeply", "no message of the contract nests like this"
        ) from None


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
