"""The publisher against a real mosquitto, with the test acting as the collector.

A window of results goes out at once; when receipts stop coming, only the oldest result is sent
again (with a doubling wait) instead of the whole backlog; the next receipt opens the window.
"""

from __future__ import annotations

import asyncio
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
from contract.result import Receipt, encode_receipt, receipt_topic, result_topic
from contract.signing import new_private_key
from lab.services import Mosquitto
from tests.unit.agent.builders import PROBE_ID, config_table, write_config

pytestmark = [pytest.mark.integration]

WINDOW = 10
RECEIPT_TIMEOUT_S = 0.3


async def _status(state: Literal["online", "offline"]) -> ProbeStatus:
    return ProbeStatus(probe_id=PROBE_ID, state=state)


@asynccontextmanager
async def collector_side(broker: Mosquitto) -> AsyncIterator[tuple[aiomqtt.Client, list[str]]]:
    """A client seeing every result sent (ids, in arrival order) and able to send receipts."""
    seen: list[str] = []
    async with mqtt_client(BrokerConfig(url=broker.url), identifier="fake-collector") as client:
        await client.subscribe(result_topic(PROBE_ID), qos=1)

        async def listen() -> None:
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                seen.append(message.payload.decode())

        listener = asyncio.create_task(listen())
        try:
            yield client, seen
        finally:
            listener.cancel()


async def _receipt(client: aiomqtt.Client, result_id: str) -> None:
    receipt = Receipt(id=uuid.UUID(result_id), status="stored")
    await client.publish(receipt_topic(PROBE_ID), encode_receipt(receipt), qos=1)


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
    spool = Spool(open_state_db(tmp_path / "state"), max_results=1000, max_bytes=10**7)
    ids = [str(uuid7()) for _ in range(35)]
    for seq, result_id in enumerate(ids):
        spool.add(result_id, seq, result_id.encode(), now=float(seq))
    meta = probe_meta(config, new_private_key())
    publisher = Publisher(config, spool, meta=meta, status=_status)
    async with collector_side(broker) as (collector, seen):
        running = asyncio.create_task(publisher.run())
        try:
            await asyncio.sleep(RECEIPT_TIMEOUT_S / 2)
            assert seen == ids[:WINDOW], "the oldest results first, a window at a time"
            await asyncio.sleep(5 * RECEIPT_TIMEOUT_S)
            resent = seen[WINDOW:]
            # No receipts: only the oldest result goes out again, with a doubling wait.
            assert resent, "nothing sent again"
            assert set(resent) == {ids[0]}
            assert len(resent) <= 4
            await _receipt(collector, ids[0])
            await asyncio.sleep(RECEIPT_TIMEOUT_S / 2)
            assert set(seen) == set(ids[: WINDOW + 1]), "one receipt opens the window again"
            # Now act as a collector that stores everything it sees.
            for _ in range(50):
                for result_id in set(seen):
                    await _receipt(collector, result_id)
                if spool.depth == 0:
                    break
                await asyncio.sleep(0.1)
            assert spool.depth == 0
            assert spool.report().delivered == len(ids)
            firsts = list(dict.fromkeys(seen))
            assert firsts == ids, "drained in the order spooled"
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
