"""Publishing results over MQTT (QoS 1) and waiting for the collector's receipt."""

from __future__ import annotations

import asyncio

import aiomqtt

from contract.errors import ServiceError, WireError
from contract.mqtt import BrokerConfig, mqtt_client
from contract.result import (
    Receipt,
    Result,
    decode_receipt,
    encode_result,
    receipt_topic,
    result_topic,
)


async def publish_result(
    broker: BrokerConfig, result: Result, *, receipt_timeout_s: float | None = 10.0
) -> Receipt | None:
    """Publish one result; return the collector's receipt, or None when not waiting for one."""
    try:
        async with mqtt_client(broker, identifier=f"{result.probe_id}-check") as client:
            if receipt_timeout_s is not None:
                await client.subscribe(receipt_topic(result.probe_id), qos=1)
            await client.publish(result_topic(result.probe_id), encode_result(result), qos=1)
            if receipt_timeout_s is None:
                return None
            return await _await_receipt(client, result, receipt_timeout_s)
    except aiomqtt.MqttError as exc:
        raise ServiceError(
            f"cannot reach the MQTT broker at {broker.url}: {exc}",
            "check that the broker runs and broker.url / credentials in the config are right",
        ) from exc


async def _await_receipt(client: aiomqtt.Client, result: Result, timeout_s: float) -> Receipt:
    try:
        async with asyncio.timeout(timeout_s):
            async for message in client.messages:
                if not isinstance(message.payload, bytes | bytearray):
                    continue
                try:
                    receipt = decode_receipt(bytes(message.payload))
                except WireError:
                    continue
                if receipt.id == result.id:
                    return receipt
    except TimeoutError:
        pass
    raise ServiceError(
        f"no receipt for result {result.id} within {timeout_s:g} s",
        "the broker took the result, but no collector confirmed storing it: is qos-collector up?",
    )
