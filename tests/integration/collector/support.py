"""Shared by the collector's integration tests: an in-process collector, enrolled test probes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry

from collector.service import CollectorSettings, serve
from contract.fleet import ProbeMeta, ProbeStatus, encode, meta_topic, status_topic
from contract.mqtt import BrokerConfig
from contract.result import Link, Receipt, Result, decode_receipt, encode_result, result_topic
from contract.signing import new_private_key, public_key_text, sign_result
from lab.services import free_port
from tests.strategies import sample_result


@asynccontextmanager
async def running_collector(settings: CollectorSettings) -> AsyncIterator[CollectorRegistry]:
    """`serve` in this process until the block ends; yields its metrics registry."""
    registry = CollectorRegistry()
    task = asyncio.create_task(serve(settings, registry))
    async with asyncio.timeout(10):
        while registry.get_sample_value("qos_collector_broker_connected") != 1.0:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
    try:
        yield registry
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def settings_for(
    broker_url: str, store_url: str, state_dir: Path, **overrides: object
) -> CollectorSettings:
    base = CollectorSettings(
        broker=BrokerConfig(url=broker_url),
        store_url=store_url,
        state_dir=str(state_dir),
        metrics_port=free_port(),
        verdict_interval_s=0,
    )
    return msgspec.structs.replace(base, **overrides)


@dataclass
class EnrolledProbe:
    """A probe with its own key, enrolled by publishing its retained meta."""

    probe_id: str
    key: Ed25519PrivateKey
    village: str = "Ấp Thạnh Hòa"
    operator: str = "Viettel"

    @classmethod
    def new(cls, probe_id: str, **names: str) -> EnrolledProbe:
        """A new key; `names` may set `village` and `operator`."""
        return cls(probe_id, new_private_key(), **names)

    @property
    def link(self) -> Link:
        return Link(interface="wwan0", access="mobile", technology="4g", operator=self.operator)

    def meta(self) -> ProbeMeta:
        location = sample_result(self.probe_id, village=self.village).location
        assert location is not None
        return ProbeMeta(
            probe_id=self.probe_id,
            location=location,
            links=(self.link,),
            public_key=public_key_text(self.key),
            agent_version="0.1.0",
        )

    async def enroll(self, client: aiomqtt.Client, *, retain: bool = True) -> None:
        await client.publish(meta_topic(self.probe_id), encode(self.meta()), qos=1, retain=retain)

    async def announce(self, client: aiomqtt.Client, state: str) -> None:
        status = ProbeStatus(probe_id=self.probe_id, state=state)  # type: ignore[arg-type]
        await client.publish(status_topic(self.probe_id), encode(status), qos=1, retain=True)

    def result(self, seq: int = 1, **changes: object) -> Result:
        """A signed result; results of one probe differ by `seq` and by one second per seq.

        Two results of one link with the same timestamp would be one sample in the store.
        """
        finished = datetime.now(UTC) - timedelta(seconds=seq)
        result = sample_result(self.probe_id, finished_at=finished, village=self.village)
        changes = {"seq": seq, "link": self.link, **changes}
        return sign_result(msgspec.structs.replace(result, **changes), self.key)

    async def send(self, client: aiomqtt.Client, result: Result | bytes) -> None:
        payload = result if isinstance(result, bytes) else encode_result(result)
        await client.publish(result_topic(self.probe_id), payload, qos=1)


async def receipts(client: aiomqtt.Client, wanted: int, timeout_s: float) -> list[Receipt]:
    """Receipts arriving on the client's subscriptions, until `wanted` or the timeout."""
    received: list[Receipt] = []
    try:
        async with asyncio.timeout(timeout_s):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                received.append(decode_receipt(message.payload))
                if len(received) >= wanted:
                    break
    except TimeoutError:
        pass
    return received
