"""QCVN profiles: the targets from contract/profiles.toml as typed, frozen objects."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Annotated

import msgspec

from contract.errors import ConfigError
from contract.i18n import _, current
from contract.quantities import REINSTALL_HINT, Quantity, declared, declared_quantities
from contract.result import MAX_MBPS, Access, Technology
from contract.typed import Strict, convert, read_toml

BUNDLED = Path(__file__).with_name("profiles.toml")

PositiveMbps = Annotated[float, msgspec.Meta(gt=0.0)]
PositiveLimit = Annotated[float, msgspec.Meta(gt=0.0, le=1e9)]
Share = Annotated[float, msgspec.Meta(gt=0.0, le=1.0)]


class DirectionTarget(Strict, frozen=True, kw_only=True):
    """What one direction (download or upload) must reach."""

    mean_min_mbps: PositiveMbps | None = None
    share_min_mbps: PositiveMbps | None = None
    share_required: Share | None = None
    plan_ratio: Share | None = None


class SampleMix(Strict, frozen=True, kw_only=True):
    indoor: Annotated[int, msgspec.Meta(ge=0)] = 0
    outdoor_fixed: Annotated[int, msgspec.Meta(ge=0)] = 0
    outdoor_moving: Annotated[int, msgspec.Meta(ge=0)] = 0


class Profile(Strict, frozen=True, kw_only=True):
    """One QCVN profile. Every field is read by the verdict (contract.criteria, collector)."""

    title: str
    # Shown instead of `title` to a reader of Vietnamese (`shown_title`).
    title_vi: str = ""
    source: str
    verify: bool = False
    access: Access
    default_for: tuple[Technology, ...] = ()
    n_required: Annotated[int, msgspec.Meta(ge=1)]
    min_gap_s: Annotated[float, msgspec.Meta(ge=0.0)] = 0.0
    access_failure_max: Share | None = None
    latency_mean_max_ms: PositiveMbps | None = None
    # The mean a quantity declared by a measurement kind (contract.quantities) must respect, by
    # `<name>_<unit>` (access_delay_ms = 5000.0: a mean access delay of at most 5 s); the kind
    # declares which way is better.
    mean_limits: dict[str, PositiveLimit] = msgspec.field(default_factory=dict)
    sample_mix: SampleMix | None = None
    # QCVN 34's "spread over different hours of the day": each of the four six-hour parts of the
    # day (Vietnam time) must hold at least this share of the counted samples.
    day_part_min_share: Annotated[float, msgspec.Meta(ge=0.0, le=0.25)] | None = None
    # The physical ceiling of each technology this profile judges: a sample above it is kept as
    # evidence but excluded from every statistic (counted as implausible).
    ceilings_mbps: dict[Technology, PositiveMbps] = msgspec.field(default_factory=dict)
    # Criteria (contract.criteria ids) that are national programme indicators, not the regulation:
    # judged and stored apart, never merged into the verdict's status.
    programme: tuple[str, ...] = ()
    download: DirectionTarget | None = None
    upload: DirectionTarget | None = None
    # Filled from the table's key when loaded; not written in the file.
    name: str = ""


def shown_title(profile: Profile) -> str:
    """The profile's title in the reader's language (English where the file gives no other)."""
    return profile.title_vi if current() == "vi" and profile.title_vi else profile.title


def load_profiles(path: Path = BUNDLED) -> dict[str, Profile]:
    """Load a profiles file; a bad key or value raises ConfigError naming it."""
    hint = _("see the comment at the top of contract/profiles.toml")
    tables = read_toml(path, hint=hint).get("profiles")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"{path}: profiles", _("no [profiles.NAME] tables"), hint)
    profiles: dict[str, Profile] = {}
    for name, table in tables.items():
        profile = convert(table, Profile, where=f"{path.name}: profiles.{name}.", hint=hint)
        _check_profile(path.name, name, profile)
        profiles[name] = msgspec.structs.replace(profile, name=name)
    return profiles


# Radio technologies are mobile access; every other technology is fixed (fwa: fixed wireless).
MOBILE_TECHNOLOGIES = frozenset({"3g", "4g", "5g"})
CRITERION_IDS = frozenset(
    {"download.mean", "download.share", "download.plan", "upload.mean", "upload.share",
     "upload.plan", "access_failure", "latency.mean"}
)  # fmt: skip


def limited_quantities(profile: Profile) -> tuple[tuple[Quantity, float], ...]:
    """The declared quantities whose mean the profile limits, with each limit, in file order."""
    by_field = {quantity.field: quantity for quantity in declared_quantities().values()}
    return tuple(
        (by_field[key], limit) for key, limit in profile.mean_limits.items() if key in by_field
    )


def _check_profile(file: str, name: str, profile: Profile) -> None:
    for technology in profile.default_for:
        access = "mobile" if technology in MOBILE_TECHNOLOGIES else "fixed"
        if access != profile.access:
            raise ConfigError(
                f"{file}: profiles.{name}.default_for",
                _("{technology} is {access} access, but the profile judges {judged} links").format(
                    technology=technology, access=access, judged=profile.access
                ),
                _("list only technologies of the profile's access"),
            )
    known = CRITERION_IDS | _check_mean_limits(file, name, profile)
    for criterion in profile.programme:
        if criterion not in known:
            raise ConfigError(
                f"{file}: profiles.{name}.programme",
                _("{criterion!r} is not a criterion").format(criterion=criterion),
                _("use one of {names}").format(names=", ".join(sorted(known))),
            )
    _check_method(file, name, profile)
    for direction in ("download", "upload"):
        target: DirectionTarget | None = getattr(profile, direction)
        if target is None:
            continue
        if (target.share_min_mbps is None) != (target.share_required is None):
            raise ConfigError(
                f"{file}: profiles.{name}.{direction}",
                _("share_min_mbps and share_required go together"),
                _("set both, or neither"),
            )
        if not any((target.mean_min_mbps, target.share_min_mbps, target.plan_ratio)):
            raise ConfigError(
                f"{file}: profiles.{name}.{direction}",
                _("names no target"),
                _("set mean_min_mbps, share_min_mbps + share_required, or plan_ratio"),
            )


def _check_mean_limits(file: str, name: str, profile: Profile) -> set[str]:
    """Each limited quantity must be declared by an installed kind; its criterion ids."""
    found = declared()
    fields = {quantity.field: quantity for quantity in found.quantities.values()}
    for key in profile.mean_limits:
        if key not in fields:
            unusable = "".join(
                "; " + _("not usable: {reason}").format(reason=reason) for reason in found.unusable
            )
            choices = (
                _("use one of {names}").format(names=", ".join(sorted(fields)))
                if fields
                else _(REINSTALL_HINT)
            )
            raise ConfigError(
                f"{file}: profiles.{name}.mean_limits.{key}",
                _("names no quantity a measurement kind declares"),
                f"{choices}{unusable}",
            )
    return {fields[key].criterion_id for key in profile.mean_limits}


def _check_method(file: str, name: str, profile: Profile) -> None:
    """Figures the engine cannot honour are refused, not silently misjudged."""
    for criterion in profile.programme:
        if criterion.endswith(".plan"):
            # Plan conformity is QCVN 34 itself: as a programme indicator it would be a
            # regulation status that the verdict's status ignores.
            raise ConfigError(
                f"{file}: profiles.{name}.programme",
                _("{criterion!r} is QCVN 34 plan conformity, the regulation").format(
                    criterion=criterion
                ),
                _("list only national programme indicators, such as download.mean"),
            )
    if profile.upload is not None and profile.upload.share_min_mbps is not None:
        # Neither engine counts upload samples at a rate: the criterion could never be judged.
        raise ConfigError(
            f"{file}: profiles.{name}.upload",
            _("a share of upload samples is not a criterion the verdict computes"),
            _("remove share_min_mbps and share_required from upload"),
        )


def ceiling_mbps(profile: Profile, technology: str) -> float:
    """The fastest rate a sample of this technology may claim under this profile."""
    return next(
        (ceiling for name, ceiling in profile.ceilings_mbps.items() if name == technology),
        MAX_MBPS,
    )


def default_technology(profile: Profile) -> str:
    """The technology a sample that names none is judged as (offline `evaluate`): the profile's
    first default, else its first ceiling's, so a profile no link defaults to (a draft) still
    applies its ceiling."""
    return next(iter((*profile.default_for, *profile.ceilings_mbps)), "")


@cache
def bundled_profiles() -> dict[str, Profile]:
    return load_profiles(BUNDLED)


def profile_for(technology: str, profiles: Mapping[str, Profile] | None = None) -> Profile | None:
    """The profile a link of this technology is judged against by default."""
    for profile in (profiles or bundled_profiles()).values():
        if technology in profile.default_for:
            return profile
    return None
