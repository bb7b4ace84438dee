"""What a report covers: one area (the nation, a province, a commune or a village) and whole days.

A report is filed, so it covers complete days of Vietnam time (UTC+7, no daylight saving), from
the first day's midnight to the end of the last day: the window `evaluate --now END --window-days N`
reproduces. Area codes are today's (contract/places.py); a code of no province or commune is
refused with what would have been accepted.
"""

from __future__ import annotations

import difflib
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

import msgspec

from collector.verdicts import Area, Level
from contract.errors import QosfleetError
from contract.i18n import N_, _
from contract.places import province, provinces

VIETNAM: Final = timedelta(hours=7)
DEFAULT_DAYS: Final = 30
# A month is what the store keeps by default and what a national export can carry (export.py).
MAX_DAYS: Final = 92
COMMUNE_CODE_LENGTH: Final = 5
# A level as a reader names it.
LEVEL_NAMES: Final = {
    "nation": N_("the whole country"),
    "province": N_("province"),
    "commune": N_("commune"),
    "village": N_("village"),
}
_DAY_FIRST = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


class Scope(msgspec.Struct, frozen=True, kw_only=True):
    """The area judged; the codes of coarser areas are filled in from finer ones."""

    level: Level
    province: str = ""
    commune: str = ""
    village: str = ""

    def holds(self, area: Area) -> bool:
        """Whether a verdict's area is this one (any technology and operator)."""
        return (area.level, area.province, area.commune, area.village) == (
            self.level,
            self.province if self.level != "nation" else "",
            self.commune,
            self.village,
        )

    @property
    def labels(self) -> dict[str, str]:
        """The store's label filters that select this area's samples."""
        found = {"province": self.province, "commune": self.commune, "village": self.village}
        return {label: value for label, value in found.items() if value}

    def encloses(self, area: Area) -> bool:
        """Whether a verdict's area lies inside this one (or is it)."""
        inside = {
            "nation": True,
            "province": area.province == self.province,
            "commune": area.commune == self.commune,
            "village": area.commune == self.commune and area.village == self.village,
        }
        return inside[self.level]

    def name(self) -> str:
        """The area as a reader names it: "Xã Ngọc Đường, Tuyên Quang"."""
        if self.level == "nation":
            return _("Viet Nam (the whole country)")
        place = province(self.province)
        province_name = place.name_vi if place else self.province
        if self.level == "province":
            return province_name
        commune = place.communes.get(self.commune, self.commune) if place else self.commune
        if self.level == "commune":
            return f"{commune}, {province_name}"
        return f"{self.village}, {commune}, {province_name}"


LEVELS: Final[tuple[Level, ...]] = ("nation", "province", "commune", "village")


def choose_breakdown(scope: Scope, level: str | None) -> Level | None:
    """The finer level whose areas inside the scope are listed too (--level), if any."""
    if level is None or level == scope.level:
        return None
    finer = LEVELS[LEVELS.index(scope.level) + 1 :]
    if level not in finer:
        raise QosfleetError(
            _("--level {level} is not inside {area}").format(
                level=_(LEVEL_NAMES.get(level, level)), area=scope.name()
            ),
            _("list a finer level: {levels}").format(levels=", ".join(finer) or "-")
            if finer
            else _("a village holds no finer area: leave out --level"),
        )
    return LEVELS[LEVELS.index(level)]


class Period(msgspec.Struct, frozen=True, kw_only=True):
    first_day: date
    last_day: date

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def start(self) -> datetime:
        """Midnight of the first day, Vietnam time, in UTC."""
        return datetime.combine(self.first_day, time(), UTC) - VIETNAM

    @property
    def end(self) -> datetime:
        """The end of the last day, Vietnam time, in UTC: the window is (start, end]."""
        return self.start + timedelta(days=self.days)


def parse_day(text: str) -> date:
    """yyyy-mm-dd or dd/mm/yyyy (day first, as written in Vietnam)."""
    day_first = _DAY_FIRST.fullmatch(text.strip())
    try:
        if day_first:
            day, month, year = (int(group) for group in day_first.groups())
            return date(year, month, day)
        return date.fromisoformat(text.strip())
    except ValueError:
        raise QosfleetError(
            _("{text!r} is not a day").format(text=text),
            _("write a day as 2026-11-30 or 30/11/2026"),
        ) from None


def choose_period(
    first: str | None, last: str | None, *, today: date, latest: date | None = None
) -> Period:
    """The days asked for; by default the 30 days up to `latest` (a campaign's last day), else
    the last 30 complete days before `today`."""
    last_day = parse_day(last) if last else latest or today - timedelta(days=1)
    first_day = parse_day(first) if first else last_day - timedelta(days=DEFAULT_DAYS - 1)
    if first_day > last_day:
        raise QosfleetError(
            _("the period starts ({first}) after it ends ({last})").format(
                first=first_day.isoformat(), last=last_day.isoformat()
            ),
            _("give --from a day before --to, e.g. --from 2026-11-01 --to 2026-11-30"),
        )
    if last_day > today:
        raise QosfleetError(
            _("the period ends on {last}, after today ({today})").format(
                last=last_day.isoformat(), today=today.isoformat()
            ),
            _("a report covers days already measured: give --to {today} or earlier").format(
                today=today.isoformat()
            ),
        )
    period = Period(first_day=first_day, last_day=last_day)
    if period.days > MAX_DAYS:
        raise QosfleetError(
            _("the period is {days} days long, more than {most}").format(
                days=period.days, most=MAX_DAYS
            ),
            _("make one report per month or quarter"),
        )
    return period


def choose_scope(area: str | None) -> Scope:
    """The area --area names by its form (a province code, a commune code, or COMMUNE/VILLAGE);
    none at all is the whole country."""
    if area is None or not area.strip():
        return Scope(level="nation")
    area = area.strip()
    implied: Level = (
        "village" if "/" in area else "commune" if len(area) == COMMUNE_CODE_LENGTH else "province"
    )
    if implied == "province":
        if province(area) is None:
            raise QosfleetError(
                _("no province has the code {code!r}").format(code=area),
                _("today's province codes: {codes}").format(codes=" ".join(provinces())),
            )
        return Scope(level="province", province=area)
    commune_code, _slash, village = area.partition("/")
    owner = next((p for p in provinces().values() if commune_code in p.communes), None)
    if owner is None:
        known = [code for p in provinces().values() for code in p.communes]
        close = difflib.get_close_matches(commune_code, known, n=3)
        hint = _("a commune code has 5 digits, as in contract/data/provinces.json")
        if close:
            hint += "; " + _("did you mean {names}? ").format(names=", ".join(close)).strip()
        raise QosfleetError(_("no commune has the code {code!r}").format(code=commune_code), hint)
    if implied == "commune":
        return Scope(level="commune", province=owner.code, commune=commune_code)
    if not village.strip():
        raise QosfleetError(
            _("--area {area} names no village after the slash").format(area=area),
            _("write the village as the probes were enrolled: 00700/Bản Ná"),
        )
    return Scope(
        level="village", province=owner.code, commune=commune_code, village=village.strip()
    )
