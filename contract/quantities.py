"""Measured quantities a verdict can judge, declared by the measurement kinds that measure them.

A kind added as a plugin (agent/measurements, entry point group `qosfleet.measurements`) lists
its quantities; from each declaration alone follow the profile key that sets its limit
(`mean_limits.<name>_<unit>` in contract/profiles.toml), the criterion (contract.criteria), the
measured series `qos_<name>_<unit>`, the whole-unit series `qos_counted_<name>_<whole_unit>` the
store sums exactly (collector/series.py), the verdict's rollup (collector/verdicts.py) and the CSV
column `evaluate` reads. The next kind then needs no edit in any of those.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Literal, NamedTuple

from contract.errors import ConfigError
from contract.i18n import N_, _
from contract.result import Measurements

ENTRY_POINT_GROUP = "qosfleet.measurements"
Comparison = Literal[">=", "<="]
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_UNIT = re.compile(r"^[a-z0-9]{1,8}$")
MAX_UNITS_PER = 1_000_000
# Marked only: shown translated with `_(REINSTALL_HINT)`.
REINSTALL_HINT = N_(
    "reinstall the package so its entry points are current (pip install -e . in the checkout, "
    "or scripts/setup)"
)


class Quantity(NamedTuple):
    """One measured quantity: its name, unit, whole unit (for exact sums) and which way is better.

    `units_per` whole units make one `unit` (100: hundredths); `comparison` is how its mean is
    held against a profile's limit (`<=`: at most, lower is better).
    """

    name: str
    title: str
    unit: str
    whole_unit: str
    units_per: int
    comparison: Comparison

    @property
    def field(self) -> str:
        """The measured series' field, the profile key and the CSV column: e.g. access_delay_ms."""
        return f"{self.name}_{self.unit}"

    @property
    def counted_field(self) -> str:
        """The series of a counted sample's value in whole units (exact sums in the store)."""
        return f"counted_{self.name}_{self.whole_unit}"

    @property
    def criterion_id(self) -> str:
        return f"{self.name}.mean"

    def units(self, value: float) -> int:
        return round(value * self.units_per)


def check_quantity(quantity: object, where: str) -> Quantity:
    """A declaration from a plugin, checked: its names end up in series and profile keys."""
    if not isinstance(quantity, Quantity):
        raise ConfigError(where, f"{quantity!r} is not a contract.quantities.Quantity", "")
    if not _NAME.match(quantity.name):
        raise ConfigError(
            where,
            f"quantity name {quantity.name!r} is not lower-case letters, digits and _",
            "name it like access_delay",
        )
    for unit in (quantity.unit, quantity.whole_unit):
        if not _UNIT.match(unit):
            raise ConfigError(where, f"unit {unit!r} is not 1-8 letters or digits", "e.g. ms")
    if not 1 <= quantity.units_per <= MAX_UNITS_PER or quantity.comparison not in {">=", "<="}:
        raise ConfigError(
            where,
            f"{quantity.name}: units_per {quantity.units_per} or comparison "
            f"{quantity.comparison!r} out of range",
            "units_per from 1 to 1,000,000; comparison >= or <=",
        )
    return quantity


class Declared(NamedTuple):
    """The quantities usable kinds declare, by name, and why each unusable entry point is not."""

    quantities: Mapping[str, Quantity]
    unusable: tuple[str, ...] = ()


def _declared_by(entry: EntryPoint) -> tuple[Quantity, ...]:
    where = f"entry point {entry.name} = {entry.value} ({ENTRY_POINT_GROUP})"
    try:
        kind = entry.load()
    except Exception as exc:
        raise ConfigError(where, f"cannot be loaded: {exc!r}", _(REINSTALL_HINT)) from exc
    return tuple(check_quantity(quantity, where) for quantity in getattr(kind, "quantities", ()))


def quantities_of(found: Iterable[EntryPoint]) -> Declared:
    """The quantities the kinds behind these entry points declare (attribute `quantities`); a
    kind that cannot be loaded, or declares a bad quantity, declares nothing and says why."""
    quantities: dict[str, Quantity] = {}
    unusable: list[str] = []
    for entry in found:
        try:
            declarations = _declared_by(entry)
        except ConfigError as exc:
            unusable.append(str(exc))
            continue
        clashes = [q for q in declarations if quantities.setdefault(q.name, q) != q]
        unusable += [
            f"entry point {entry.name}: quantity {q.name!r} is declared differently elsewhere"
            for q in clashes
        ]
    return Declared(quantities, tuple(unusable))


@cache
def declared() -> Declared:
    return quantities_of(entry_points(group=ENTRY_POINT_GROUP))


def declared_quantities() -> Mapping[str, Quantity]:
    """Every quantity the installed measurement kinds declare, by name."""
    return declared().quantities


def value_in(measurements: Measurements, name: str) -> float | None:
    """A result's value of a declared quantity: from the block of whichever kind measured it."""
    for block in measurements.kinds.values():
        value = block.values.get(name)
        if value is not None:
            return value
    return None
