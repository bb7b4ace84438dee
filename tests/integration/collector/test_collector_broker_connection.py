"""The collector's broker adapter against real mosquitto: a receipt made before the connection
(results the journal held, written at start) waits for it instead of being dropped."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from collector.metrics import CollectorMetrics
from collector.pipeline import mqtt
from collector.pipeline.mqtt import MqttBroker, NotConnectedError
from contract.mqtt import BrokerConfig, mqtt_client
from contract.result import Receipt, decode_receipt, encode_receipt, receipt_topic
from lab.services import Mosquitto
from tests.strategies import sample_result

pytestmark = pytest.mark.integration

PROBE = "vn-79-early-receipt"


async def _consume(broker: MqttBroker) -> None:
    async for _ in broker.messages():
        pass


async def test_a_receipt_made_before_the_connection_waits_for_it(broker: Mosquitto) -> None:
    adapter = MqttBroker(
        BrokerConfig(url=broker.url), "collectors", CollectorMetrics(CollectorRegistry())
    )
    receipt = Receipt(id=sample_result(PROBE).id, status="stored")
    async with mqtt_client(BrokerConfig(url=broker.url), identifier="early-probe") as probe:
        await probe.subscribe(receipt_topic(PROBE), qos=1)
        sending = asyncio.create_task(
            adapter.publish(receipt_topic(PROBE), encode_receipt(receipt))
        )
        await asyncio.sleep(0.5)
        assert not sending.done()  # waiting for the connection, not refused
        consuming = asyncio.create_task(_consume(adapter))
        try:
            await asyncio.wait_for(sending, timeout=10)
            async with asyncio.timeout(10):
                message = await anext(aiter(probe.messages))
        finally:
            consuming.cancel()
    assert isinstance(message.payload, bytes)
    assert decode_receipt(message.payload) == receipt


async def test_with_no_connection_a_receipt_is_given_up_after_the_wait(
    broker: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mqtt, "CONNECTION_WAIT_S", 0.2)
    adapter = MqttBroker(
        BrokerConfig(url=broker.url), "collectors", CollectorMetrics(CollectorRegistry())
    )
    with pytest.raises(NotConnectedError):
        await adapter.publish(receipt_topic(PROBE), b"{}")
