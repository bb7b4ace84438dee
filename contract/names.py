"""One spelling per technology and operator, from the canonical list contract/data/names.toml.

`technology("LTE")` is "4g" and `operator("viettel telecom")` is "Viettel": what a person types is
matched ignoring case, spacing and punctuation against each canonical name and its aliases. A name
that matches nothing is refused with the closest canonical names, so a typo never becomes a new
operator whose results split an area's.
"""

from __future__ import annotations

import difflib
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Literal, get_args

from contract.errors import ConfigError
from contract.i18n import _
from contract.places import DATA
from contract.result import Technology

NAMES_FILE = DATA / "names.toml"
Kind = Literal["technologies", "operators"]
_IGNORED = re.compile(r"[\s._\-/]+")
# How alike a misspelling and a name must be (difflib's ratio) for the name to be suggested.
SUGGEST_CUTOFF = 0.6


def _key(text: str) -> str:
    return _IGNORED.sub("", unicodedata.normalize("NFC", text).casefold())


@cache
def canonical_names(kind: Kind) -> Mapping[str, tuple[str, ...]]:
    """Each canonical name of `kind` with its aliases, as names.toml lists them."""
    table = tomllib.loads(NAMES_FILE.read_text(encoding="utf-8"))[kind]
    return {name: tuple(aliases) for name, aliases in table.items()}


@cache
def _lookup(kind: Kind) -> Mapping[str, str]:
    return {
        _key(spelling): name
        for name, aliases in canonical_names(kind).items()
        for spelling in (name, *aliases)
    }


def canonical(kind: Kind, text: str) -> str | None:
    """The canonical name `text` spells, or None."""
    return _lookup(kind).get(_key(text))


def closest(kind: Kind, text: str) -> list[str]:
    """The canonical names nearest to a misspelling, best first: those about as near as the
    nearest, so "Viettell" suggests Viettel and not also Wintel."""
    typed = _key(text)
    scores: dict[str, float] = {}
    for spelling, name in _lookup(kind).items():
        ratio = difflib.SequenceMatcher(None, typed, spelling).ratio()
        scores[name] = max(scores.get(name, 0.0), ratio)
    best = max(scores.values(), default=0.0)
    near = [name for name, score in scores.items() if score >= max(SUGGEST_CUTOFF, best - 0.05)]
    return sorted(near, key=lambda name: -scores[name])[:3]


def _refuse(field: str, kind: Kind, text: str, example: str) -> ConfigError:
    near = closest(kind, text)
    known = ", ".join(canonical_names(kind))
    if kind == "technologies":
        reason = _("{text!r} is not a known technology")
        hint = _(
            "write one of {known} (e.g. {example}); a new technology is added to "
            "contract/data/names.toml"
        )
    else:
        reason = _("{text!r} is not a known operator")
        hint = _(
            "write one of {known} (e.g. {example}); a new operator is added to "
            "contract/data/names.toml"
        )
    hint = hint.format(known=known, example=example)
    if near:
        hint = _("did you mean {names}? ").format(names=_(" or ").join(near)) + hint
    return ConfigError(field, reason.format(text=text), hint)


def technology(text: str, *, field: str = "technology") -> Technology:
    """The canonical technology, e.g. "4G", "lte" -> "4g"; ConfigError otherwise."""
    name = canonical("technologies", text)
    technologies: tuple[Technology, ...] = get_args(Technology)
    for value in technologies:
        if value == name:
            return value
    raise _refuse(field, "technologies", text, "4g")


def operator(text: str, *, field: str = "operator") -> str:
    """The canonical operator, e.g. "viettel", "VIETTEL", "Viettel Telecom" -> "Viettel"."""
    name = canonical("operators", text)
    if name is None:
        raise _refuse(field, "operators", text, "Viettel")
    return name


@lru_cache(maxsize=1024)  # every stored result asks; a fleet has a handful of spellings
def operator_label(text: str) -> str:
    """An operator as a result is labelled: canonical when known, else as the probe sent it.

    The collector cannot refuse a result for an operator that enrolled before this list (or one
    the list lacks): its measurement stays, under the name it came with.
    """
    return canonical("operators", text) or text
