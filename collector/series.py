"""The one mapping between a Result and its stored series (dashboards/SERIES.md lists them).

Used by the store writer, the verdicts (which read the derived `sample_*` / `counted_*` series
back as rollups), the export API and the dashboard seed. Labels identify the sample: where, which
link, which target, the link's setting and plan. Fields are the numbers; beside the measured ones,
the method's sample rules are applied here, once, at ingest (contract.sampling):

- `sample_class`: the class of a speed attempt (1 counted, 2 failed, 3 probe-limited,
  4 implausible, 5 too close to the previous counted sample of its device, 6 unconverged);
- `counted_download_10kbps`, `counted_upload_10kbps`, `counted_latency_10us`: a counted sample's
  values in whole units, so the store's sums over any window are exact;
- `counted_day_part`: the six-hour part of the day (Vietnam time) of a counted sample: 1 for
  00-06, 2 for 06-12, 3 for 12-18, 4 for 18-24.

Each quantity a measurement kind declares (contract.quantities, e.g. access delay) adds its
measured field `<name>_<unit>` and, for a counted sample, `counted_<name>_<whole_unit>`, from its
declaration alone.
"""

from __future__ import annotations

from collections.abc import Mapping

from contract.names import operator_label
from contract.profiles import Profile, profile_for
from contract.quantities import declared_quantities, value_in
from contract.result import Location, Plan, Result
from contract.sampling import (
    CLASS_CODES,
    attempt_failed,
    day_part,
    latency_units,
    rate_units,
    sample_class,
    unconverged,
)

MEASUREMENT = "qos"
# The labels and fields `labels` and `fields` produce, in their order (readers use these).
LABEL_NAMES = (
    "probe",
    "province",
    "commune",
    "village",
    "access",
    "technology",
    "operator",
    "setting",
    "plan",
    "interface",
    "target",
    "ip_version",
)
# The labels a verdict groups by: an area, its technology and operator, and what the verdict needs
# to tell apart (the sample-mix setting, the plan QCVN 34 compares with).
AREA_LABELS = ("province", "commune", "village", "technology", "operator", "setting", "plan")
MEASURED_FIELDS = (
    "download_mbps",
    "upload_mbps",
    "latency_idle_median_ms",
    "latency_loaded_median_ms",
    "attempt_failed",
    "probe_limited",
    "unconverged",
    "errors",
    "bytes_used",
    "clock_synced",
    "ipv6_works",
    "lat",
    "lon",
    "plan_download_mbps",
    "plan_upload_mbps",
    "seq",
)
SAMPLE_FIELDS = (
    "sample_class",
    "counted_download_10kbps",
    "counted_upload_10kbps",
    "counted_latency_10us",
    "counted_day_part",
)
QUANTITIES = tuple(declared_quantities().values())
QUANTITY_FIELDS = tuple(
    name for quantity in QUANTITIES for name in (quantity.field, quantity.counted_field)
)
FIELD_NAMES = MEASURED_FIELDS + SAMPLE_FIELDS + QUANTITY_FIELDS


def plan_label(plan: Plan | None) -> str:
    """A plan as a label value ('300.0/100.0'), read back exactly by `plan_of_label`."""
    return "" if plan is None else f"{plan.download_mbps!r}/{plan.upload_mbps!r}"


def plan_of_label(text: str) -> Plan | None:
    download, _, upload = text.partition("/")
    try:
        return Plan(download_mbps=float(download), upload_mbps=float(upload))
    except ValueError:
        return None


def labels(result: Result, location: Location | None = None) -> dict[str, str]:
    """The series identity of a result: where, which link, which target."""
    location = result.location or location
    return {
        "probe": result.probe_id,
        "province": location.province_code if location else "",
        "commune": location.commune_code if location else "",
        "village": location.village if location else "",
        "access": result.link.access,
        "technology": result.link.technology,
        "operator": operator_label(result.link.operator),  # "viettel" and "Viettel" are one
        "setting": result.link.setting or "",
        "plan": plan_label(result.link.plan),
        "interface": result.link.interface,
        "target": result.target.id,
        "ip_version": str(result.target.ip_version),
    }


def sample_fields(result: Result, profile: Profile | None) -> dict[str, float]:
    """The method's view of a result (module docstring); empty when it is no speed attempt."""
    chosen = None if profile is None else sample_class(result, profile)
    if chosen is None:
        return {}
    values = {"sample_class": float(CLASS_CODES[chosen])}
    if chosen != "counted":
        return values
    measurements = result.measurements
    if measurements.download is not None:
        values["counted_download_10kbps"] = float(rate_units(measurements.download.mbps))
        # 1 to 4, never 0: a histogram bucket of the store holds exactly one of them.
        values["counted_day_part"] = float(day_part(result.finished_at) + 1)
    if measurements.upload is not None:
        values["counted_upload_10kbps"] = float(rate_units(measurements.upload.mbps))
    latency = measurements.latency
    if latency is not None and latency.idle is not None:
        values["counted_latency_10us"] = float(latency_units(latency.idle.median_ms))
    if measurements.kinds:
        for quantity in QUANTITIES:
            value = value_in(measurements, quantity.name)
            if value is not None:
                values[quantity.counted_field] = float(quantity.units(value))
    return values


def fields(
    result: Result, location: Location | None = None, profiles: Mapping[str, Profile] | None = None
) -> dict[str, float]:
    """The numbers of one result; absent measurements are absent fields, not zeros."""
    measurements = result.measurements
    location = result.location or location
    values: dict[str, float] = {
        "bytes_used": float(result.provenance.bytes_used),
        "probe_limited": float(result.provenance.probe_limited),
        "unconverged": float(unconverged(result)),
        "errors": float(len(result.errors)),
        "attempt_failed": float(attempt_failed(result)),
        "seq": float(result.seq),
    }
    optional: dict[str, float | None] = {
        "download_mbps": measurements.download.mbps if measurements.download else None,
        "upload_mbps": measurements.upload.mbps if measurements.upload else None,
        "clock_synced": None if result.clock.synced is None else float(result.clock.synced),
        "ipv6_works": float(measurements.ipv6.status == "works") if measurements.ipv6 else None,
        "lat": location.lat if location else None,
        "lon": location.lon if location else None,
        "plan_download_mbps": result.link.plan.download_mbps if result.link.plan else None,
        "plan_upload_mbps": result.link.plan.upload_mbps if result.link.plan else None,
    }
    latency = measurements.latency
    if latency and latency.idle:
        optional["latency_idle_median_ms"] = latency.idle.median_ms
    if latency and latency.loaded:
        optional["latency_loaded_median_ms"] = latency.loaded.median_ms
    if measurements.kinds:
        for quantity in QUANTITIES:
            optional[quantity.field] = value_in(measurements, quantity.name)
    values.update({key: value for key, value in optional.items() if value is not None})
    values.update(sample_fields(result, profile_for(result.link.technology, profiles)))
    return values
