"""What a report says about each technology x operator of its area, and what its charts draw.

The verdict is the one engine's (collector/compliance.py): live, from the store's rollups as the
collector writes it for the dashboards (collector/verdicts.py); offline, from the campaign's
samples as `evaluate` judges them. Live, the evidence file is judged offline too, and the report
says whether the two agree (they do, by construction: docs/qcvn-method.md, section 8).
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import aiohttp
import msgspec

from collector.compliance import Sample, Verdict, evaluate_compliance, sample_classes
from collector.report.evidence import Evidence, evidence_name, read_evidence
from collector.report.scope import VIETNAM, Period, Scope
from collector.verdicts import Area, Level, judge_window
from contract.errors import QosfleetError
from contract.i18n import Language, _
from contract.profiles import BUNDLED, Profile
from contract.result import Plan


class ProbeShare(msgspec.Struct, frozen=True, kw_only=True):
    """One probe's part in a verdict: its attempts in the window and how many were counted."""

    probe: str
    village: str
    commune: str
    attempts: int
    counted: int


class DailyMean(msgspec.Struct, frozen=True, kw_only=True):
    day: date  # Vietnam time
    mean_mbps: float
    n: int


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    technology: str
    operator: str
    profile_name: str
    profile: Profile
    verdict: Verdict
    # Live only: whether `evaluate` on the evidence file gives the same verdict (None offline).
    offline_agrees: bool | None
    evidence_file: str
    fingerprint: str
    rows: int
    evaluate_command: str
    probes: tuple[ProbeShare, ...]
    daily: tuple[DailyMean, ...]
    counted_download_mbps: tuple[float, ...]
    target_mbps: float | None
    period: Period
    plan: Plan | None


class AreaVerdict(msgspec.Struct, frozen=True, kw_only=True):
    """One finer area's verdict, listed under the report's own (--level)."""

    name: str
    technology: str
    operator: str
    verdict: Verdict


class Report(msgspec.Struct, frozen=True, kw_only=True):
    scope: Scope
    area_name: str
    period: Period
    language: Language
    generated_at: datetime
    source: str
    tool_version: str
    profiles_file: str
    profiles_sha256: str
    findings: tuple[Finding, ...]
    breakdown_level: Level | None = None
    breakdown: tuple[AreaVerdict, ...] = ()


def _in_window(sample: Sample, period: Period) -> bool:
    return period.start < sample.timestamp <= period.end


def _counted(evidence: Evidence, profile: Profile, period: Period) -> list[tuple[Sample, bool]]:
    """The window's samples (duplicates left out), each with whether the method counted it."""
    samples = evidence.campaign.samples
    return [
        (sample, sample_class == "counted")
        for sample, sample_class in zip(samples, sample_classes(samples, profile), strict=True)
        if sample_class is not None and _in_window(sample, period)
    ]


def _daily(judged: list[tuple[Sample, bool]]) -> tuple[DailyMean, ...]:
    days: dict[date, list[float]] = {}
    for sample, counted in judged:
        if counted and sample.download_mbps is not None:
            days.setdefault((sample.timestamp + VIETNAM).date(), []).append(sample.download_mbps)
    return tuple(
        DailyMean(day=day, mean_mbps=sum(rates) / len(rates), n=len(rates))
        for day, rates in sorted(days.items())
    )


def _probes(evidence: Evidence, judged: list[tuple[Sample, bool]]) -> tuple[ProbeShare, ...]:
    attempts: dict[str, list[bool]] = {}
    for sample, counted in judged:
        attempts.setdefault(sample.device, []).append(counted)
    shares = []
    for probe, classes in sorted(attempts.items()):
        place = evidence.places.get(probe)
        shares.append(
            ProbeShare(
                probe=probe or "-",
                village=place.village if place else "",
                commune=place.commune if place else "",
                attempts=len(classes),
                counted=sum(classes),
            )
        )
    return tuple(shares)


def _target(verdict: Verdict) -> float | None:
    """The download line the regulation holds the mean to (the plan's, or the profile's)."""
    for judged in verdict.criteria:
        if judged.id in {"download.plan", "download.mean"} and judged.threshold is not None:
            return judged.threshold
    return None


def _command(evidence_file: str, name: str, period: Period, evidence: Evidence) -> str:
    words = ["qos-collector", "evaluate", "--profile", name, "--input", evidence_file]
    words += ["--now", period.end.isoformat().replace("+00:00", "Z")]
    words += ["--window-days", str(period.days)]
    plan = evidence.plan
    if plan is not None:
        words += ["--plan-download-mbps", f"{plan.download_mbps:g}"]
        words += ["--plan-upload-mbps", f"{plan.upload_mbps:g}"]
    return shlex.join(words)


def _finding(
    evidence: Evidence,
    profile: Profile,
    name: str,
    period: Period,
    *,
    live: Verdict | None,
    evidence_file: str,
) -> Finding:
    offline = evaluate_compliance(
        evidence.campaign.samples,
        profile,
        now=period.end,
        window=period.end - period.start,
        plan=evidence.plan,
    )
    verdict = live or offline
    judged = _counted(evidence, profile, period)
    return Finding(
        technology=evidence.technology,
        operator=evidence.operator,
        profile_name=name,
        profile=profile,
        verdict=verdict,
        offline_agrees=None if live is None else _same(live, offline),
        evidence_file=evidence_file,
        fingerprint=evidence.fingerprint,
        rows=evidence.campaign.rows,
        evaluate_command=_command(evidence_file, name, period, evidence),
        probes=_probes(evidence, judged),
        daily=_daily(judged),
        counted_download_mbps=tuple(
            s.download_mbps for s, counted in judged if counted and s.download_mbps is not None
        ),
        target_mbps=_target(verdict),
        period=period,
        plan=evidence.plan,
    )


def _same(live: Verdict, offline: Verdict) -> bool:
    """The same verdict: every count and status equal, every figure to 1e-9 (sums are exact;
    only the last division's rounding may differ between the store and Python)."""
    for field in msgspec.structs.fields(Verdict):
        mine, theirs = getattr(live, field.name), getattr(offline, field.name)
        if isinstance(mine, float) and isinstance(theirs, float):
            if abs(mine - theirs) > 1e-9 * max(1.0, abs(theirs)):
                return False
        elif field.name != "criteria" and mine != theirs:
            return False
    return True


def _no_samples(scope_name: str, period: Period) -> QosfleetError:
    return QosfleetError(
        _("no speed sample of {area} from {first} to {last}").format(
            area=scope_name, first=period.first_day.isoformat(), last=period.last_day.isoformat()
        ),
        _("check --area and the period (--from, --to); the probes of the area may be silent"),
    )


def breakdown_of(
    verdicts: Mapping[Area, Verdict], scope: Scope, level: Level | None
) -> tuple[AreaVerdict, ...]:
    """The verdicts of the areas at `level` inside the scope, failing ones first."""
    if level is None:
        return ()
    found = [
        AreaVerdict(
            name=Scope(
                level=area.level,
                province=area.province,
                commune=area.commune,
                village=area.village,
            ).name(),
            technology=area.technology,
            operator=area.operator,
            verdict=verdict,
        )
        for area, verdict in verdicts.items()
        if area.level == level and scope.encloses(area)
    ]
    order = {"fail": 0, "insufficient-data": 1, "pass": 2}
    found.sort(key=lambda row: (order[row.verdict.status], row.name, row.technology, row.operator))
    return tuple(found)


async def live_findings(
    store_url: str,
    profiles: Mapping[str, Profile],
    scope: Scope,
    period: Period,
    *,
    stem: str,
    breakdown: Level | None = None,
) -> tuple[list[tuple[Finding, Evidence]], tuple[AreaVerdict, ...]]:
    """Each technology x operator of the area judged from the store, with its evidence, and the
    verdicts of the finer areas at `breakdown` inside it."""
    window = period.end - period.start
    lead_in = max((p.min_gap_s for p in profiles.values()), default=0.0)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
        verdicts = await judge_window(session, store_url, profiles, now=period.end, window=window)
        evidence = await read_evidence(
            session,
            store_url,
            scope.labels,
            start=period.start,
            end=period.end,
            lead_in=timedelta(seconds=lead_in),
        )
    found = []
    for area, verdict in sorted(verdicts.items()):
        if not scope.holds(area) or verdict.n_attempts + verdict.n_too_close == 0:
            continue
        group = evidence.get((area.technology, area.operator))
        if group is None:
            continue
        profile = profiles[verdict.profile]
        name = evidence_name(stem, area.technology, area.operator)
        found.append(
            (
                _finding(group, profile, verdict.profile, period, live=verdict, evidence_file=name),
                group,
            )
        )
    if not found:
        raise _no_samples(scope.name(), period)
    return found, breakdown_of(verdicts, scope, breakdown)


def offline_finding(evidence: Evidence, profile: Profile, name: str, period: Period) -> Finding:
    """A campaign CSV judged as `evaluate` judges it."""
    finding = _finding(evidence, profile, name, period, live=None, evidence_file=evidence.source)
    if finding.verdict.n_attempts + finding.verdict.n_too_close == 0:
        raise _no_samples(evidence.source, period)
    return finding


def profiles_fingerprint(path: Path | None) -> tuple[str, str]:
    """The profiles file the targets came from, and its SHA-256 (the targets' version)."""
    chosen = path or BUNDLED
    return str(chosen if path else "contract/profiles.toml"), hashlib.sha256(
        chosen.read_bytes()
    ).hexdigest()


def report_of(
    findings: list[Finding],
    *,
    scope: Scope,
    period: Period,
    language: Language,
    generated_at: datetime,
    source: str,
    profiles_path: Path | None,
    breakdown_level: Level | None = None,
    breakdown: tuple[AreaVerdict, ...] = (),
) -> Report:
    profiles_file, profiles_sha256 = profiles_fingerprint(profiles_path)
    return Report(
        scope=scope,
        area_name=scope.name(),
        period=period,
        language=language,
        generated_at=generated_at,
        source=source,
        tool_version=version("qosfleet"),
        profiles_file=profiles_file,
        profiles_sha256=profiles_sha256,
        findings=tuple(findings),
        breakdown_level=breakdown_level,
        breakdown=breakdown,
    )
