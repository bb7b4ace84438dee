"""Reaching the broker the same way from probe and collector (agent or collector extra)."""

from __future__ import annotations

import asyncio
import ssl
from typing import Literal, NamedTuple

import aiomqtt

from contract.addresses import parse_url, refuse_credentials
from contract.errors import ConfigError
from contract.i18n import _
from contract.typed import Strict

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
# A broker's Unix socket, e.g. unix:///run/qosfleet/mqtt.sock: the lab's villages live in their own
# network namespaces and reach the broker on the host's loopback through the shared filesystem.
UNIX_PREFIX = "unix://"


class BrokerConfig(Strict, frozen=True, kw_only=True):
    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: str | None = None
    # PEM file of the CA that signed the broker's certificate (mqtts:// with a private CA).
    ca_file: str | None = None


class BrokerEndpoint(NamedTuple):
    host: str  # a host name, or the socket's path for transport "unix"
    port: int
    transport: Literal["tcp", "unix"]
    tls: bool


def broker_endpoint(
    url: str, *, option: str = "broker.url", credentials_hint: str | None = None
) -> BrokerEndpoint:
    """Check and split a broker URL: mqtt://HOST:PORT, mqtts://HOST:PORT or unix:///PATH."""
    refuse_credentials(url, option=option, hint=credentials_hint)
    if url.startswith(UNIX_PREFIX):
        path = url.removeprefix(UNIX_PREFIX)
        if not path.startswith("/"):
            raise ConfigError(
                option, _("{url!r} needs an absolute socket path: unix:///PATH").format(url=url)
            )
        # paho checks the port even for a socket path, then ignores it.
        return BrokerEndpoint(path, DEFAULT_PORTS["mqtt"], "unix", tls=False)
    scheme, host, port = parse_url(url, option=option, schemes=("mqtt", "mqtts"))
    return BrokerEndpoint(host, port or DEFAULT_PORTS[scheme], "tcp", tls=scheme == "mqtts")


def tls_context(ca_file: str | None, *, option: str = "broker.ca_file") -> ssl.SSLContext:
    """The TLS context for an mqtts:// broker; a CA file that is not PEM certificates is refused."""
    try:
        return ssl.create_default_context(cafile=ca_file)
    except OSError as exc:  # ssl.SSLError included
        reason = exc.strerror or str(exc)
        raise ConfigError(
            option,
            _("{path} holds no usable CA certificate ({reason})").format(
                path=ca_file, reason=reason
            ),
            _(
                "give the PEM file of the CA that signed the broker's certificate (it starts with "
                "-----BEGIN CERTIFICATE-----)"
            ),
        ) from exc


def mqtt_client(
    broker: BrokerConfig,
    *,
    identifier: str,
    will: aiomqtt.Will | None = None,
    protocol: aiomqtt.ProtocolVersion = aiomqtt.ProtocolVersion.V5,
    inbox: type[asyncio.Queue[aiomqtt.Message]] | None = None,
    max_in_flight: int | None = None,
    max_queued_outgoing: int | None = None,
) -> aiomqtt.Client:
    """An MQTT client for `broker` (TLS when the URL says mqtts://), v5 unless told otherwise.

    `inbox`: the queue class for received messages. `max_in_flight`: QoS 1 publishes sent before
    their acknowledgements (paho's default, 20, holds the rest back until earlier ones are
    answered); `max_queued_outgoing`: how many more may wait (default: no bound).
    """
    endpoint = broker_endpoint(broker.url)
    return aiomqtt.Client(
        endpoint.host,
        endpoint.port,
        transport=endpoint.transport,
        identifier=identifier,
        username=broker.username,
        password=broker.password,
        protocol=protocol,
        tls_context=tls_context(broker.ca_file) if endpoint.tls else None,
        will=will,
        timeout=10,
        queue_type=inbox,
        max_inflight_messages=max_in_flight,
        max_queued_outgoing_messages=max_queued_outgoing,
    )
