"""The shipped broker config (deploy/mosquitto) on real mosquitto: accounts, ACL, TLS."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from collector.registry import approval_topic
from contract.mqtt import BrokerConfig, mqtt_client
from contract.result import receipt_topic, result_topic, results_topic
from lab.services import qos_collector, venv_script
from tests.integration.collector.support import Broker, shipped_broker

pytestmark = pytest.mark.integration

ACCOUNTS = {
    "vn-01-probe-a": "secret-a",
    "vn-01-probe-b": "secret-b",
    "collector.1": "secret-c",
    "qosfleet.operator": "secret-o",
}


@pytest.fixture
def secured_broker(tmp_path: Path) -> Iterator[Broker]:
    with shipped_broker(tmp_path, ACCOUNTS) as broker:
        yield broker


async def _next_topic(client: aiomqtt.Client, timeout_s: float) -> str | None:
    try:
        async with asyncio.timeout(timeout_s):
            async for message in client.messages:
                return message.topic.value
    except TimeoutError:
        return None
    return None


async def test_a_probe_cannot_publish_as_another_or_read_its_receipts(
    secured_broker: Broker,
) -> None:
    a, b = "vn-01-probe-a", "vn-01-probe-b"
    async with (
        mqtt_client(secured_broker.config("collector.1"), identifier="collector") as collector,
        mqtt_client(secured_broker.config(a), identifier=a) as probe_a,
    ):
        await collector.subscribe("$share/collectors/qos/v1/+/result", qos=1)
        await collector.subscribe("$share/collectors/qos/v1/+/results", qos=1)
        await probe_a.subscribe(receipt_topic(b), qos=1)  # refused by the ACL
        await probe_a.subscribe(receipt_topic(a), qos=1)

        await probe_a.publish(result_topic(b), b"forged", qos=1)
        assert await _next_topic(collector, timeout_s=1.0) is None  # never delivered

        await probe_a.publish(results_topic(b), b"forged batch", qos=1)
        assert await _next_topic(collector, timeout_s=1.0) is None

        await probe_a.publish(result_topic(a), b"own", qos=1)
        assert await _next_topic(collector, timeout_s=5.0) == result_topic(a)
        await probe_a.publish(results_topic(a), b"own batch", qos=1)
        assert await _next_topic(collector, timeout_s=5.0) == results_topic(a)

        await collector.publish(receipt_topic(b), b"{}", qos=1)
        assert await _next_topic(probe_a, timeout_s=1.0) is None
        await collector.publish(receipt_topic(a), b"{}", qos=1)
        assert await _next_topic(probe_a, timeout_s=5.0) == receipt_topic(a)


async def test_wrong_password_and_anonymous_clients_are_refused(secured_broker: Broker) -> None:
    wrong = BrokerConfig(
        url=f"mqtt://127.0.0.1:{secured_broker.plain_port}",
        username="vn-01-probe-a",
        password="guess",
    )
    anonymous = BrokerConfig(url=wrong.url)
    for config in (wrong, anonymous):
        with pytest.raises(aiomqtt.MqttError):
            async with mqtt_client(config, identifier="intruder"):
                pass


async def test_tls_listener_with_the_fleet_ca(secured_broker: Broker) -> None:
    a = "vn-01-probe-a"
    async with (
        mqtt_client(secured_broker.config("collector.1"), identifier="collector") as collector,
        mqtt_client(secured_broker.config(a, tls=True), identifier=a) as probe,
    ):
        await collector.subscribe("$share/collectors/qos/v1/+/result", qos=1)
        await probe.publish(result_topic(a), b"over tls", qos=1)
        assert await _next_topic(collector, timeout_s=5.0) == result_topic(a)
    # Without the fleet CA the server certificate is not trusted.
    untrusted = BrokerConfig(
        url=f"mqtts://localhost:{secured_broker.tls_port}", username=a, password=ACCOUNTS[a]
    )
    with pytest.raises((aiomqtt.MqttError, ssl.SSLError)):
        async with mqtt_client(untrusted, identifier=a):
            pass


def test_the_collector_reads_its_password_from_a_file(
    secured_broker: Broker, tmp_path: Path
) -> None:
    # As compose runs it: the password is a secret file, never on the command line.
    secret = tmp_path / "collector_broker_password"
    secret.write_text(f"{ACCOUNTS['collector.1']}\n", encoding="utf-8")
    account = ("--broker-username", "collector.1", "--broker-password-file", str(secret))
    with qos_collector(
        tmp_path,
        broker_url=f"mqtt://127.0.0.1:{secured_broker.plain_port}",
        store_url="http://127.0.0.1:9",  # not needed to subscribe
        extra_args=account,
    ) as collector:
        assert collector.service.process is not None
        command_line = " ".join(map(str, collector.service.argv))
        assert str(secret) in command_line
        assert ACCOUNTS["collector.1"] not in command_line


@pytest.mark.parametrize("content", [None, "", "\nsecret-c\n"])
def test_a_missing_or_empty_password_file_is_a_clear_error(
    tmp_path: Path, content: str | None
) -> None:
    secret = tmp_path / "password"
    if content is not None:
        secret.write_text(content, encoding="utf-8")
    done = subprocess.run(
        [
            venv_script("qos-collector"), "serve", "--broker-username", "collector.1",
            "--broker-password-file", str(secret), "--state-dir", str(tmp_path / "state"),
        ],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--broker-password-file" in done.stderr
    assert str(secret) in done.stderr


async def test_only_the_operator_account_may_write_an_approval(secured_broker: Broker) -> None:
    """A stolen probe password cannot approve its own new key: the ACL drops the publish."""
    a = "vn-01-probe-a"
    async with (
        mqtt_client(secured_broker.config("collector.1"), identifier="collector") as collector,
        mqtt_client(secured_broker.config(a), identifier=a) as probe,
        mqtt_client(secured_broker.config("qosfleet.operator"), identifier="op") as operator,
    ):
        await collector.subscribe(approval_topic("+"), qos=1)
        for topic in (approval_topic(a), approval_topic("vn-01-probe-b")):
            await probe.publish(topic, b"{}", qos=1, retain=True)
            assert await _next_topic(collector, timeout_s=1.0) is None
        await collector.publish(approval_topic(a), b"{}", qos=1, retain=True)
        assert await _next_topic(collector, timeout_s=1.0) is None
        await operator.publish(approval_topic(a), b"{}", qos=1, retain=True)
        assert await _next_topic(collector, timeout_s=5.0) == approval_topic(a)
