"""Reaching the broker the same way from probe and collector (agent or collector extra)."""

from __future__ import annotations

import ssl

import aiomqtt

from contract.addresses import parse_url
from contract.typed import Strict

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


class BrokerConfig(Strict, frozen=True, kw_only=True):
    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: str | None = None


def mqtt_client(
    broker: BrokerConfig, *, identifier: str, will: aiomqtt.Will | None = None
) -> aiomqtt.Client:
    """An MQTT v5 client for `broker` (TLS when the URL says mqtts://)."""
    scheme, host, port = parse_url(broker.url, option="broker.url", schemes=("mqtt", "mqtts"))
    return aiomqtt.Client(
        host,
        port or DEFAULT_PORTS[scheme],
        identifier=identifier,
        username=broker.username,
        password=broker.password,
        protocol=aiomqtt.ProtocolVersion.V5,
        tls_context=ssl.create_default_context() if scheme == "mqtts" else None,
        will=will,
        timeout=10,
    )
