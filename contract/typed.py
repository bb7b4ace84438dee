"""Decoding people's TOML and machines' JSON into frozen types, with errors that name the key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import msgspec.inspect

from contract.errors import ConfigError, WireError, WireLimitError
from contract.i18n import N_, _

T = TypeVar("T")
_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_OUT_OF_BOUNDS = re.compile(r"^Expected `(?:int|float)` [<>]=? ")
_PATH_STEP = re.compile(r"[^.\[\]]+|\[\d+\]")
# msgspec's refusals a person meets in a file they wrote, in their language; any other is shown as
# msgspec words it.
_READABLE: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"^Expected `(?P<expected>[^`]+)`, got `(?P<got>[^`]+)`$"),
        N_("expected a value of type `{expected}`, got `{got}`"),
    ),
    (
        re.compile(r"^Object contains unknown field `(?P<field>[^`]+)`$"),
        N_("unknown key `{field}` (a typo?)"),
    ),
    (
        re.compile(r"^Object missing required field `(?P<field>[^`]+)`$"),
        N_("the required key `{field}` is missing"),
    ),
    (re.compile(r"^Invalid enum value (?P<value>.+)$"), N_("{value} is not an allowed value")),
)


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
        raise ConfigError(str(path), _("file not found"), hint) from None
    except OSError as exc:
        raise ConfigError(
            str(path), _("cannot read ({reason})").format(reason=exc.strerror), hint
        ) from exc
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            str(path), _("not valid TOML ({reason})").format(reason=exc), _("fix the TOML syntax")
        ) from exc


def convert(table: object, type_: type[T], *, where: str, hint: str) -> T:
    """Validate plain tables into `type_`; ConfigError names `where` + the bad key's path.

    A number out of bounds is told with the value and its whole allowed range, not only the side
    it crossed.
    """
    try:
        return msgspec.convert(table, type=type_)
    except msgspec.ValidationError as exc:
        key, reason = split_validation_error(exc)
        if _OUT_OF_BOUNDS.match(reason):
            reason = _out_of_bounds(table, type_, key) or reason
        reason = _readable(reason)
        joined = f"{where}{key}" if key != "(top level)" else where.rstrip(". :")
        raise ConfigError(joined, reason, hint) from exc


def _readable(reason: str) -> str:
    for pattern, message in _READABLE:
        found = pattern.fullmatch(reason)
        if found:
            return _(message).format(**found.groupdict())
    return reason


def _out_of_bounds(table: object, type_: type[Any], key: str) -> str | None:
    """'<value> is out of range (allowed: >= 1 and <= 86400)' for the number at `key`."""
    info: msgspec.inspect.Type = msgspec.inspect.type_info(type_)
    value = table
    for step in _PATH_STEP.findall(key):
        info = _navigable(info)
        if step.startswith("["):
            index = int(step[1:-1])
            if not isinstance(info, msgspec.inspect.VarTupleType | msgspec.inspect.ListType):
                return None
            info = info.item_type
            value = value[index] if isinstance(value, list | tuple) and index < len(value) else None
        else:
            if not isinstance(info, msgspec.inspect.StructType):
                return None
            info = next((f.type for f in info.fields if f.encode_name == step), info)
            value = value.get(step) if isinstance(value, dict) else None
    number = _navigable(info)
    if not isinstance(number, msgspec.inspect.IntType | msgspec.inspect.FloatType):
        return None
    bounds = (("≥", number.ge), (">", number.gt), ("≤", number.le), ("<", number.lt))
    allowed = _(" and ").join(
        f"{sign} {_number(limit)}" for sign, limit in bounds if limit is not None
    )
    return _("{value} is out of range (allowed: {allowed})").format(
        value=_number(value), allowed=allowed
    )


def _navigable(info: msgspec.inspect.Type) -> msgspec.inspect.Type:
    """An optional value's type without its None."""
    if isinstance(info, msgspec.inspect.UnionType):
        return next(t for t in info.types if not isinstance(t, msgspec.inspect.NoneType))
    return info


def _number(value: object) -> str:
    """As a person would write it in TOML: 86_400, 0.01, 1e-09."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:_}"
    if isinstance(value, float):
        whole = value.is_integer() and abs(value) < 1e15  # noqa: PLR2004 - exact as an int
        return f"{int(value):_}" if whole else f"{value:g}"
    return repr(value)


def load_toml(path: Path, type_: type[T], *, hint: str) -> T:
    """Read a TOML file into `type_`; ConfigError names the file and the bad key."""
    return convert(read_toml(path, hint=hint), type_, where=f"{path}: ", hint=hint)
