"""The publisher against a real mosquitto, with the test acting as the collector.

A window of results goes out at once (in batches); when receipts stop coming, only the oldest
result is sent again (with a doubling wait) instead of the whole backlog; the next receipt opens
the window. The spooled payloads here are JSON strings (result ids) standing in for results.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

import aiomqtt
import pytest
from uuid6 import uuid7

from agent.daemon import probe_meta
from agent.publish import Publisher
from agent.spool import Spool
from agent.state import open_state_db
from contract.fleet import ProbeStatus
from contract.mqtt import BrokerConfig, mqtt_client
from contract.result import (
    MAX_BATCH,
    Receipt,
    encode_receipt,
    receipt_topic,
    result_topic,
    results_topic,
)
from contract.signing import new_private_key
from lab.services import Mosquitto
from tests.unit.agent.builders import PROBE_ID, config_table, write_config

pytestmark = [pytest.mark.integration]

WINDOW = 10
RECEIPT_TIMEOUT_S = 0.3


async def _status(state: Literal["online", "offline"]) -> ProbeStatus:
    return ProbeStatus(probe_id=PROBE_ID, state=state)


class Arrivals:
    """What the fake collector saw: result ids in arrival order, and each message's size."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.batch_sizes: list[int] = []  # 1 for a result on the single-result topic


@asynccontextmanager
async def collector_side(broker: Mosquitto) -> AsyncIterator[tuple[aiomqtt.Client, Arrivals]]:
    """A client seeing every result sent, alone or in a batch, and able to send receipts."""
    seen = Arrivals()
    async with mqtt_client(BrokerConfig(url=broker.url), identifier="fake-collector") as client:
        await client.subscribe(result_topic(PROBE_ID), qos=1)
        await client.subscribe(results_topic(PROBE_ID), qos=1)

        async def listen() -> None:
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                document = json.loads(message.payload)
                ids = document["results"] if isinstance(document, dict) else [document]
                seen.ids.extend(ids)
                seen.batch_sizes.append(len(ids))

        listener = asyncio.create_task(listen())
        try:
            yield client, seen
        finally:
            listener.cancel()


async def _receipt(client: aiomqtt.Client, result_id: str, *also: str) -> None:
    receipt = Receipt(
        id=uuid.UUID(result_id), status="stored", also=tuple(uuid.UUID(i) for i in also)
    )
    await client.publish(receipt_topic(PROBE_ID), encode_receipt(receipt), qos=1)


def _spooled(tmp_path: Path, count: int) -> tuple[Spool, list[str]]:
    spool = Spool(open_state_db(tmp_path / "state"), max_results=1000, max_bytes=10**7)
    ids = [str(uuid7()) for _ in range(count)]
    for seq, result_id in enumerate(ids):
        spool.add(result_id, seq, json.dumps(result_id).encode(), now=float(seq))
    return spool, ids


async def test_window_closes_while_no_receipts_come_and_reopens_with_one(
    tmp_path: Path, broker: Mosquitto
) -> None:
    publish = {
        "window": WINDOW,
        "receipt_timeout_s": RECEIPT_TIMEOUT_S,
        "resend_cap_s": 2 * RECEIPT_TIMEOUT_S,
        "reconnect_first_s": 0.1,
        "reconnect_cap_s": 0.2,
        "status_interval_s": 60.0,
    }
    table = config_table(tmp_path / "state", broker_url=broker.url, publish=publish)
    config = write_config(tmp_path / "agent.toml", table)
    spool, ids = _spooled(tmp_path, 35)
    meta = probe_meta(config, new_private_key())
    publisher = Publisher(config, spool, meta=meta, status=_status)
    async with collector_side(broker) as (collector, seen):
        running = asyncio.create_task(publisher.run())
        try:
            await asyncio.sleep(RECEIPT_TIMEOUT_S / 2)
            assert seen.ids == ids[:WINDOW], "the oldest results first, a window at a time"
            assert seen.batch_sizes == [WINDOW], "a backlog goes in a batch"
            await asyncio.sleep(5 * RECEIPT_TIMEOUT_S)
            resent = seen.ids[WINDOW:]
            # No receipts: only the oldest result goes out again, with a doubling wait.
            assert resent, "nothing sent again"
            assert set(resent) == {ids[0]}
            assert len(resent) <= 4
            await _receipt(collector, ids[0])
            await asyncio.sleep(RECEIPT_TIMEOUT_S / 2)
            assert set(seen.ids) == set(ids[: WINDOW + 1]), "one receipt opens the window again"
            # Now act as a collector that stores everything it sees.
            for _ in range(50):
                for result_id in set(seen.ids):
                    await _receipt(collector, result_id)
                if spool.depth == 0:
                    break
                await asyncio.sleep(0.1)
            assert spool.depth == 0
            assert spool.report().delivered == len(ids)
            firsts = list(dict.fromkeys(seen.ids))
            assert firsts == ids, "drained in the order spooled"
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)


async def test_a_backlog_drains_in_batches_each_result_once(
    tmp_path: Path, broker: Mosquitto
) -> None:
    publish = {"window": 4 * MAX_BATCH, "receipt_timeout_s": 10.0, "status_interval_s": 60.0}
    table = config_table(tmp_path / "state", broker_url=broker.url, publish=publish)
    config = write_config(tmp_path / "agent.toml", table)
    spool, ids = _spooled(tmp_path, 7 * MAX_BATCH + 3)
    publisher = Publisher(config, spool, meta=probe_meta(config, new_private_key()), status=_status)
    async with collector_side(broker) as (collector, seen):
        running = asyncio.create_task(publisher.run())
        try:
            answered = 0
            async with asyncio.timeout(10):
                while spool.depth:
                    # Store what arrived so far, answered as a collector does: grouped.
                    while answered < len(seen.ids):
                        group = seen.ids[answered : answered + MAX_BATCH]
                        await _receipt(collector, *group)
                        answered += len(group)
                    await asyncio.sleep(0.05)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    assert seen.ids == ids, "each result once, in the order spooled"
    assert max(seen.batch_sizes) == MAX_BATCH
    assert seen.batch_sizes[:4] == [MAX_BATCH] * 4, "the first window in full batches"
    assert len(seen.batch_sizes) < len(ids) / 5, "drained in batches, not one by one"
    assert spool.report().delivered == len(ids)
