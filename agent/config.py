"""The probe's configuration: one TOML file -> one frozen, validated object."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec

from contract.addresses import parse_url
from contract.errors import ConfigError
from contract.mqtt import BrokerConfig
from contract.result import Link, Location, ProbeId
from contract.typed import Strict, load_toml

DEFAULT_PATH = Path("/etc/qosfleet/agent.toml")
DEFAULT_STATE_DIR = Path("/var/lib/qosfleet")


class TargetConfig(Strict, frozen=True, kw_only=True):
    id: Annotated[str, msgspec.Meta(min_length=1)]
    url: str


class AgentConfig(Strict, frozen=True, kw_only=True):
    probe_id: ProbeId
    location: Location
    links: Annotated[tuple[Link, ...], msgspec.Meta(min_length=1)]
    targets: Annotated[tuple[TargetConfig, ...], msgspec.Meta(min_length=1)]
    broker: BrokerConfig = BrokerConfig()
    state_dir: str = str(DEFAULT_STATE_DIR)

    def link(self, interface: str | None) -> Link:
        """The configured link on `interface`, or the first one when none is named."""
        if interface is None:
            return self.links[0]
        for link in self.links:
            if link.interface == interface:
                return link
        known = ", ".join(link.interface for link in self.links)
        raise ConfigError("links", f"no link on interface {interface!r}", f"configured: {known}")


def load_config(path: Path) -> AgentConfig:
    """Read and validate the agent's TOML; a bad key raises ConfigError naming it."""
    config = load_toml(
        path, AgentConfig, hint="see deploy/agent.example.toml, or run `qos-agent enroll`"
    )
    parse_url(config.broker.url, option=f"{path}: broker.url", schemes=("mqtt", "mqtts"))
    for index, target in enumerate(config.targets):
        parse_url(target.url, option=f"{path}: targets[{index}].url", schemes=("http", "https"))
    return config
