"""The probe's configuration: one TOML file -> one frozen, validated object."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import msgspec

from contract import names
from contract.addresses import parse_url
from contract.errors import ConfigError, WireError
from contract.i18n import N_, _
from contract.mqtt import BrokerConfig, broker_endpoint, tls_context
from contract.result import (
    Access,
    Link,
    Location,
    Name,
    Plan,
    ProbeId,
    Radio,
    Setting,
    Technology,
    check_names,
)
from contract.typed import Strict, convert, read_toml

DEFAULT_PATH = Path("/etc/qosfleet/agent.toml")
DEFAULT_STATE_DIR = Path("/var/lib/qosfleet")
HINT = N_("see deploy/agent.example.toml, or run `qos-agent enroll`")
BROKER_ACCOUNT_HINT = N_(
    "put the account in [broker] username and password (agent.toml is readable by root and the "
    "daemon only; `qos-agent enroll --password` writes it there), and the URL without it"
)
# Mobile data costs money in villages: a mobile link with no stated budget gets this one.
DEFAULT_MOBILE_BUDGET_BYTES = 2 * 1000**3

# Every number people write has bounds: beyond them a value is a typo (or an attack on the
# probe: a status interval of 1e-9 s published and fsynced without pause). Means and floors go
# down to milliseconds for the "accelerated" schedule of tests and the lab.
DAY_S = 86_400.0
Gap = Annotated[float, msgspec.Meta(ge=0.0, le=90 * DAY_S)]
MeanGap = Annotated[float, msgspec.Meta(ge=0.01, le=90 * DAY_S)]
TestSeconds = Annotated[float, msgspec.Meta(ge=0.1, le=120.0)]
ReceiptWait = Annotated[float, msgspec.Meta(ge=0.1, le=DAY_S)]
Backoff = Annotated[float, msgspec.Meta(ge=0.01, le=DAY_S)]
MonthlyBytes = Annotated[int, msgspec.Meta(ge=0, le=10 * 1000**4)]
TestBytes = Annotated[int, msgspec.Meta(ge=1000, le=10 * 1000**3)]


class PlanConfig(Plan, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The wire's Plan as people write it: a mistyped key is refused, not ignored."""


class LocationConfig(Location, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The wire's Location as people write it: a mistyped key is refused, not ignored."""


class LinkConfig(Strict, frozen=True, kw_only=True):
    interface: Annotated[str, msgspec.Meta(min_length=1, max_length=15)]
    access: Access
    technology: Technology
    operator: Name
    plan: PlanConfig | None = None
    # Where the probe takes its samples (QCVN 81/126 sample mix): indoor, outdoor_fixed, or
    # outdoor_moving (drive tests); unset, its samples count in no part of the mix.
    setting: Setting | None = None
    # Monthly byte cap of the tests on this link (default: 2 GB on mobile, none on fixed).
    monthly_budget_bytes: MonthlyBytes | None = None
    # ModemManager modem index; by default the modem whose network port is `interface`.
    modem: str | None = None

    @property
    def budget_bytes(self) -> int | None:
        if self.monthly_budget_bytes is not None:
            return self.monthly_budget_bytes
        return DEFAULT_MOBILE_BUDGET_BYTES if self.access == "mobile" else None

    def as_link(self, radio: Radio | None = None) -> Link:
        """The link as it travels in a result."""
        plan = self.plan
        return Link(
            interface=self.interface,
            access=self.access,
            technology=self.technology,
            operator=self.operator,
            plan=Plan(download_mbps=plan.download_mbps, upload_mbps=plan.upload_mbps)
            if plan
            else None,
            radio=radio,
            setting=self.setting,
        )


class TargetConfig(Strict, frozen=True, kw_only=True):
    id: Annotated[str, msgspec.Meta(min_length=1)]
    url: str


class ScheduleConfig(Strict, frozen=True, kw_only=True):
    """Gaps between tests on one link: a floor plus an exponential draw, so the mean is `*_mean_s`.

    Random gaps sample every hour of the day and keep a fleet from testing in step. Small values
    (an "accelerated" schedule) let tests and the lab run many tests quickly.
    """

    speed_mean_s: MeanGap = 6 * 3600.0
    speed_floor_s: Gap = 30 * 60.0
    # Latency and IPv6 checks cost little, so they run more often than speed tests.
    light_mean_s: MeanGap = 3600.0
    light_floor_s: Gap = 5 * 60.0
    speed_duration_s: TestSeconds = 10.0
    flows: Annotated[int, msgspec.Meta(ge=1, le=64)] = 4


class BudgetConfig(Strict, frozen=True, kw_only=True):
    """What a test is assumed to spend before its link has a history to estimate from."""

    speed_test_estimate_bytes: TestBytes = 100 * 1000**2
    light_test_estimate_bytes: TestBytes = 1000**2


class SpoolConfig(Strict, frozen=True, kw_only=True):
    """Caps of the local spool; beyond them the oldest results are dropped, counted and reported."""

    max_results: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] = 100_000
    max_bytes: Annotated[int, msgspec.Meta(ge=100_000, le=100 * 1000**3)] = 200 * 1000**2
    # Disk held back for a full disk (agent/spool.py): results keep being kept while it lasts.
    reserve_bytes: Annotated[int, msgspec.Meta(ge=0, le=1024**3)] = 16 * 1024**2


class PublishConfig(Strict, frozen=True, kw_only=True):
    # A result with no receipt after this long is sent again (the wait doubles up to the cap).
    receipt_timeout_s: ReceiptWait = 60.0
    resend_cap_s: ReceiptWait = 1800.0
    # Results sent and awaiting a receipt at once: flow control towards broker and collector.
    window: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 50
    reconnect_first_s: Backoff = 1.0
    reconnect_cap_s: Backoff = 120.0
    # How often the retained status (health, spool, budgets) is refreshed: each refresh is a
    # retained publish and an fsync of the state database.
    status_interval_s: Annotated[float, msgspec.Meta(ge=1.0, le=DAY_S)] = 300.0


class AgentConfig(Strict, frozen=True, kw_only=True):
    probe_id: ProbeId
    location: LocationConfig
    links: Annotated[tuple[LinkConfig, ...], msgspec.Meta(min_length=1)]
    targets: Annotated[tuple[TargetConfig, ...], msgspec.Meta(min_length=1)]
    broker: BrokerConfig = BrokerConfig()
    state_dir: str = str(DEFAULT_STATE_DIR)
    # The probe's Ed25519 key (default: probe.key in state_dir), made by `qos-agent enroll`.
    key_file: str | None = None
    schedule: ScheduleConfig = ScheduleConfig()
    budget: BudgetConfig = BudgetConfig()
    spool: SpoolConfig = SpoolConfig()
    publish: PublishConfig = PublishConfig()

    @property
    def key_path(self) -> Path:
        return Path(self.key_file) if self.key_file else Path(self.state_dir) / "probe.key"

    def link(self, interface: str | None) -> Link:
        """The configured link on `interface`, or the first one when none is named."""
        return self.link_config(interface).as_link()

    def link_config(self, interface: str | None) -> LinkConfig:
        if interface is None:
            return self.links[0]
        for link in self.links:
            if link.interface == interface:
                return link
        known = ", ".join(link.interface for link in self.links)
        raise ConfigError(
            "links",
            _("no link on interface {interface!r}").format(interface=interface),
            _("configured: {known}").format(known=known),
        )


def load_config(path: Path) -> AgentConfig:
    """Read and validate the agent's TOML; a bad key raises ConfigError naming it."""
    where = f"{path}: "
    table = read_toml(path, hint=_(HINT))
    config = convert(
        canonical_link_names(table, where=where), AgentConfig, where=where, hint=_(HINT)
    )
    check_config(config, where=where)
    return config


def canonical_link_names(table: dict[str, Any], *, where: str = "") -> dict[str, Any]:
    """The links' technology and operator in their canonical spelling (contract/names.py), as
    `enroll` writes them: a hand-written "LTE" or "viettel" is 4g and Viettel, so one operator's
    results never split into two series. A name the list does not know is refused by its key,
    with the nearest canonical names. Values of the wrong type are left to the types' refusal."""
    links = table.get("links")
    if not isinstance(links, list):
        return table
    canonical: list[object] = []
    for index, link in enumerate(links):
        if isinstance(link, dict):
            link = dict(link)  # noqa: PLW2901 - the same link, its names made canonical
            if isinstance(technology := link.get("technology"), str):
                field = f"{where}links[{index}].technology"
                link["technology"] = names.technology(technology, field=field)
            if isinstance(operator := link.get("operator"), str):
                link["operator"] = names.operator(operator, field=f"{where}links[{index}].operator")
        canonical.append(link)
    return table | {"links": canonical}


def check_config(config: AgentConfig, *, where: str = "") -> None:
    """Rules across keys that the types cannot express."""
    broker_endpoint(
        config.broker.url, option=f"{where}broker.url", credentials_hint=_(BROKER_ACCOUNT_HINT)
    )
    ca_file = config.broker.ca_file
    if ca_file is not None:
        if not os.access(ca_file, os.R_OK):
            raise ConfigError(
                f"{where}broker.ca_file",
                _("cannot read {path}").format(path=ca_file),
                _("give the PEM file of the CA that signed the broker's certificate"),
            )
        tls_context(ca_file, option=f"{where}broker.ca_file")
    for index, target in enumerate(config.targets):
        parse_url(target.url, option=f"{where}targets[{index}].url", schemes=("http", "https"))
    interfaces = [link.interface for link in config.links]
    for index, interface in enumerate(interfaces):
        if interface in interfaces[:index]:
            raise ConfigError(
                f"{where}links[{index}].interface",
                _("{interface!r} is configured twice").format(interface=interface),
                _("one [[links]] table per interface"),
            )
    schedule = config.schedule
    for kind in ("speed", "light"):
        floor: float = getattr(schedule, f"{kind}_floor_s")
        mean: float = getattr(schedule, f"{kind}_mean_s")
        if floor > mean:
            raise ConfigError(
                f"{where}schedule.{kind}_floor_s",
                _("{floor} s is above {kind}_mean_s ({mean} s)").format(
                    floor=f"{floor:g}", kind=kind, mean=f"{mean:g}"
                ),
                _("the floor is the shortest gap; make it at most the mean"),
            )
    publish = config.publish
    if publish.reconnect_first_s > publish.reconnect_cap_s:
        raise ConfigError(
            f"{where}publish.reconnect_first_s",
            _("is above reconnect_cap_s"),
            _("the first reconnect delay must not exceed the cap"),
        )
    if publish.receipt_timeout_s > publish.resend_cap_s:
        raise ConfigError(
            f"{where}publish.receipt_timeout_s",
            _("{timeout} s is above resend_cap_s ({cap} s)").format(
                timeout=f"{publish.receipt_timeout_s:g}", cap=f"{publish.resend_cap_s:g}"
            ),
            _("the first wait for a receipt must not exceed the cap of the waits"),
        )
    _check_names(config, where)


def _check_names(config: AgentConfig, where: str) -> None:
    """The names that travel in every result are plain text, as the collector requires."""
    names = {"location.village": config.location.village}
    for index, link in enumerate(config.links):
        names[f"links[{index}].interface"] = link.interface
        names[f"links[{index}].operator"] = link.operator
    for index, target in enumerate(config.targets):
        names[f"targets[{index}].id"] = target.id
    try:
        check_names(names)
    except WireError as exc:
        raise ConfigError(f"{where}{exc.field}", exc.reason, exc.hint) from exc
