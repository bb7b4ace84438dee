"""What an enrollment must get right: a place in Vietnam under today's codes, a probe id that
agrees with it, and a plan for every fixed line. Pure checks; each refusal says what to type.

Only new enrollments are held to today's codes (contract/places.py): results and retained metas
of probes enrolled before 2025-07-01 keep their old codes on the wire, and a pre-2025 code in an
existing probe id stays valid where it names the same area (its identity is pinned centrally).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Protocol

from contract.errors import ConfigError
from contract.i18n import N_, _
from contract.places import (
    REFORM_DATE,
    Province,
    in_vietnam,
    old_province,
    province,
    provinces,
    successor,
)
from contract.result import Access, Plan

# A probe id names its province: vn-<two-digit province code>-<place>, e.g. vn-11-ban-na-hin.
PROBE_ID = re.compile(r"^vn-(?P<province>\d{2})-(?P<place>[a-z0-9][a-z0-9-]*)$")
EXAMPLE_PROBE_ID = "vn-11-ban-na-hin"
_WORD = re.compile(r"[^a-z0-9]+")

# What a person is told: marked here, translated where it is said.
UNKNOWN_PROVINCE = N_("{code!r} is not a province code")
UNKNOWN_PROVINCE_HINT = N_("give one of the 34 codes in force since {reform}: {provinces}")
NAMED_PROVINCE_HINT = N_("{name} is province {code}: use --province {code}")
OLD_PROVINCE = N_("{code} is the code of {old} before {reform}; {old} is now part of {new}")
OLD_PROVINCE_HINT = N_("use --province {new_code} (and a probe id vn-{new_code}-...)")
BAD_PROBE_ID = N_("{probe_id!r} does not name its province as vn-<province code>-<place>")
BAD_PROBE_ID_HINT = N_("e.g. --probe-id vn-{code}-{place} for a probe in {name}")
CONTRADICTING_PROBE_ID = N_(
    "{probe_id!r} names province {id_code} ({id_name}), not {code} ({name})"
)
CONTRADICTING_PROBE_ID_HINT = N_(
    "use --probe-id vn-{code}-{place}, or the --province of the probe id"
)
OUTSIDE = N_("({lat}, {lon}) is outside Vietnam")
OUTSIDE_HINT = N_(
    "give the probe's position in decimal degrees, --lat about 8.5 to 23.4 and --lon about 102 to "
    "110 (e.g. --lat 21.39 --lon 103.02); a phone's map app shows them on a long press"
)
SWAPPED_HINT = N_("latitude and longitude look swapped: use --lat {lon} --lon {lat}")
NO_PLAN = N_("{interface} is a fixed line without its subscribed plan")
NO_PLAN_HINT = N_(
    "add the subscribed plan in Mb/s (down/up) from the contract, e.g. --link "
    "{interface}:fixed:{technology}:{operator}:300/300: QCVN 34 judges a fixed line against it"
)
UNLISTED_COMMUNE = N_(
    "warning: commune {commune} is not in the official list of {name} since {reform}; check the "
    "code (contract/data/provinces.json lists the {count} communes of {name})"
)
OTHER_PROVINCE_COMMUNE = N_(
    "warning: commune {commune} is {commune_name} of {other}, not of {name}; check --commune and "
    "--province"
)


class EnrolledLink(Protocol):
    @property
    def interface(self) -> str: ...
    @property
    def access(self) -> Access: ...
    @property
    def technology(self) -> str: ...
    @property
    def operator(self) -> str: ...
    @property
    def plan(self) -> Plan | None: ...


def _slug(text: str) -> str:
    """A place as a probe id's last part: "Bản Nà Hin" -> "ban-na-hin"."""
    return _WORD.sub("-", _ascii(text).casefold()).strip("-")


def province_code_of(text: str) -> str:
    """A --province as given -> today's two-digit code; ConfigError with what to type instead."""
    if province(text) is not None:
        return text
    new = successor(text)
    old = old_province(text)
    if old is not None and new is not None:
        raise ConfigError(
            "--province",
            _(OLD_PROVINCE).format(code=text, old=old.name_vi, new=new.label, reform=REFORM_DATE),
            _(OLD_PROVINCE_HINT).format(new_code=new.code),
        )
    named = _by_name(text)
    everyone = ", ".join(p.label for p in provinces().values())
    hint = (
        _(NAMED_PROVINCE_HINT).format(name=named.name_vi, code=named.code)
        if named
        else _(UNKNOWN_PROVINCE_HINT).format(reform=REFORM_DATE, provinces=everyone)
    )
    raise ConfigError("--province", _(UNKNOWN_PROVINCE).format(code=text), hint)


def _by_name(text: str) -> Province | None:
    """A province typed by name ("Hà Nội", "ha noi", "Hanoi") instead of its code."""
    wanted = _key(text)
    return next(
        (
            candidate
            for candidate in provinces().values()
            if wanted in {_key(candidate.name_vi), _key(candidate.name_en)}
            or wanted == _key(candidate.official_name_vi)
        ),
        None,
    )


def _ascii(text: str) -> str:
    folded = text.replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in unicodedata.normalize("NFD", folded) if not unicodedata.combining(c))


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", _ascii(text).casefold())


def check_probe_id(probe_id: str, code: str, village: str) -> None:
    """The id's province is the enrolled one (or, for an id from before 2025, its old code)."""
    today = provinces()[code]
    match = PROBE_ID.match(probe_id)
    if match is None:
        place = _slug(village) or "village"
        raise ConfigError(
            "--probe-id",
            _(BAD_PROBE_ID).format(probe_id=probe_id),
            _(BAD_PROBE_ID_HINT).format(code=code, place=place, name=today.name_vi),
        )
    id_code = match["province"]
    if id_code == code or successor(id_code) == today:
        return
    named = province(id_code) or successor(id_code)
    raise ConfigError(
        "--probe-id",
        _(CONTRADICTING_PROBE_ID).format(
            probe_id=probe_id,
            id_code=id_code,
            id_name=named.name_vi if named else _("no province"),
            code=code,
            name=today.name_vi,
        ),
        _(CONTRADICTING_PROBE_ID_HINT).format(code=code, place=match["place"]),
    )


def check_position(lat: float, lon: float) -> None:
    if in_vietnam(lat, lon):
        return
    hint = _(SWAPPED_HINT).format(lat=lat, lon=lon) if in_vietnam(lon, lat) else _(OUTSIDE_HINT)
    raise ConfigError("--lat/--lon", _(OUTSIDE).format(lat=lat, lon=lon), hint)


def check_plans(links: Sequence[EnrolledLink]) -> None:
    for index, link in enumerate(links):
        if link.access == "fixed" and link.plan is None:
            raise ConfigError(
                f"links[{index}].plan",
                _(NO_PLAN).format(interface=link.interface),
                _(NO_PLAN_HINT).format(
                    interface=link.interface, technology=link.technology, operator=link.operator
                ),
            )


def check_place(
    *, probe_id: str, province_code: str, commune_code: str, village: str, lat: float, lon: float
) -> list[str]:
    """Refuse (ConfigError) a place that cannot be right; return warnings for what may be."""
    code = province_code_of(province_code)
    check_probe_id(probe_id, code, village)
    check_position(lat, lon)
    today = provinces()[code]
    if commune_code in today.communes:
        return []
    other = next((p for p in provinces().values() if commune_code in p.communes), None)
    if other is not None:
        return [
            _(OTHER_PROVINCE_COMMUNE).format(
                commune=commune_code,
                commune_name=other.communes[commune_code],
                other=other.label,
                name=today.label,
            )
        ]
    return [
        _(UNLISTED_COMMUNE).format(
            commune=commune_code, name=today.name_vi, reform=REFORM_DATE, count=len(today.communes)
        )
    ]
