"""Poison messages from a probe's broker account: each refused with its reason, none stops ingest.

One stack (mosquitto, VictoriaMetrics, a production collector process) serves the module; every
test attacks with its own probe ids, checks the refusal's counter, and then checks that a genuine
probe's result is still stored and receipted - the collector went on.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import msgspec
import pytest

from contract.fleet import LinkBudget, ProbeHealth, ProbeStatus, encode, meta_topic, status_topic
from contract.mqtt import BrokerConfig, mqtt_client
from contract.result import Clock, receipt_topic, result_topic, results_topic
from lab.services import Endpoint, VictoriaMetrics, mosquitto, victoria_metrics
from tests.adversarial.conftest import (
    ADVERSARIAL,
    metric,
    production_collector,
    restart,
    running,
    wait_for_metric,
)
from tests.integration.agent.conftest import wait_until
from tests.integration.collector.support import EnrolledProbe, receipts

pytestmark = [ADVERSARIAL, pytest.mark.integration]

# 30,000 levels in 60 kB: under every size bound, far past any recursion limit.
DEPTH = 30_000
NESTED = b"[" * DEPTH + b"]" * DEPTH


def deep(schema: str, field: str = "x") -> bytes:
    return f'{{"schema": "{schema}", "{field}": '.encode() + NESTED + b"}"


@dataclass
class Stack:
    broker_url: str
    store: VictoriaMetrics
    collector: Endpoint
    log: Path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("adversarial-messages")
    with (
        mosquitto(workdir / "mosquitto") as broker,
        victoria_metrics(workdir / "victoria-metrics") as store,
        production_collector(workdir, broker.url, store.url) as collector,
    ):
        yield Stack(broker.url, store, collector, workdir / "collector.log")


_seq = itertools.count(1)
# One key for the whole module: the collector pins a probe's key at its first enrollment.
GENUINE = EnrolledProbe.new("vn-79-genuine")


async def still_ingesting(stack: Stack, client: aiomqtt.Client) -> None:
    """A genuine probe's next result is stored and receipted: the collector went on."""
    assert running(stack.collector), "the collector process ended"
    genuine = GENUINE
    await genuine.enroll(client)
    await client.subscribe(receipt_topic(genuine.probe_id), qos=1)
    result = genuine.result(seq=next(_seq))
    await genuine.send(client, result)
    got = await receipts(client, 1, timeout_s=15)
    assert [(r.id, r.status) for r in got] == [(result.id, "stored")]


def counted(stack: Stack, reason: str, kind: str | None = None) -> float:
    if kind is None:
        return metric(stack.collector, "qos_collector_results_rejected_total", reason=reason)
    return metric(
        stack.collector, "qos_collector_fleet_messages_rejected_total", kind=kind, reason=reason
    )


@pytest.mark.parametrize(
    ("topic", "payload", "kind"),
    [
        (result_topic("vn-79-deep"), deep("qosfleet.result/1"), None),
        (
            results_topic("vn-79-deep"),
            b'{"schema": "qosfleet.batch/1", "results": [' + NESTED + b"]}",
            None,
        ),
        (status_topic("vn-79-deep"), deep("qosfleet.status/1"), "status"),
        (meta_topic("vn-79-deep"), deep("qosfleet.meta/1"), "meta"),
    ],
    ids=["result", "batch", "status", "meta"],
)
async def test_json_nested_30000_deep_is_refused_as_too_deep(
    stack: Stack, topic: str, payload: bytes, kind: str | None
) -> None:
    before = counted(stack, "too-deep", kind)
    async with mqtt_client(BrokerConfig(url=stack.broker_url), identifier="deep") as client:
        await client.publish(topic, payload, qos=1)
        wait_until(
            lambda: counted(stack, "too-deep", kind) >= before + 1,
            timeout_s=15,
            what=f"the {kind or 'result'} refused as too-deep",
        )
        await still_ingesting(stack, client)


def _status(probe_id: str, interfaces: int) -> bytes:
    budgets = tuple(
        LinkBudget(interface="wwan0" if n == 0 else f"i{n}", used_bytes=n, cap_bytes=10**9)
        for n in range(interfaces)
    )
    health = ProbeHealth(clock=Clock(synced=True), budgets=budgets)
    return encode(ProbeStatus(probe_id=probe_id, state="online", health=health))


def budget_series(stack: Stack, probe_id: str) -> int:
    stack.store.flush()
    return len(stack.store.export(f'qos_probe_budget_remaining_ratio{{probe="{probe_id}"}}'))


async def test_a_status_with_2000_made_up_interfaces_creates_no_series(stack: Stack) -> None:
    probe = EnrolledProbe.new("vn-79-interfaces")
    topic = status_topic(probe.probe_id)
    async with mqtt_client(BrokerConfig(url=stack.broker_url), identifier="ifaces") as client:
        await probe.enroll(client)
        await client.publish(topic, _status(probe.probe_id, 1), qos=1, retain=True)
        wait_until(
            lambda: budget_series(stack, probe.probe_id) == 1,
            timeout_s=15,
            what="the enrolled link's budget series",
        )

        for interfaces, reason in ((2000, "too-large"), (9, "malformed")):
            before = counted(stack, reason, "status")
            payload = _status(probe.probe_id, interfaces)
            await client.publish(topic, payload, qos=1, retain=True)
            wait_for_metric(
                stack.collector,
                "qos_collector_fleet_messages_rejected_total",
                before + 1,
                kind="status",
                reason=reason,
            )
        # Eight links, the most a status may list, but not the ones the probe enrolled.
        before = counted(stack, "unknown-interface", "status")
        await client.publish(topic, _status(probe.probe_id, 8), qos=1, retain=True)
        wait_for_metric(
            stack.collector,
            "qos_collector_fleet_messages_rejected_total",
            before + 1,
            kind="status",
            reason="unknown-interface",
        )
        await client.publish(topic, b"", qos=1, retain=True)  # leave no retained poison behind
        await still_ingesting(stack, client)
    assert budget_series(stack, probe.probe_id) == 1


FORGED = "2026-11-24 12:00:00,000 INFO qosfleet.collector probe vn-79-x enrolled"


async def test_a_control_character_in_a_name_is_refused_and_forges_no_log_line(
    stack: Stack,
) -> None:
    village = EnrolledProbe.new("vn-79-newline", village=f"Ấp A\n{FORGED}")
    operator = EnrolledProbe.new("vn-79-separator", operator=f"Viettel\u2028{FORGED}")
    async with mqtt_client(BrokerConfig(url=stack.broker_url), identifier="names") as client:
        before = counted(stack, "malformed", "meta")
        await village.enroll(client)
        await operator.enroll(client)
        wait_for_metric(
            stack.collector,
            "qos_collector_fleet_messages_rejected_total",
            before + 2,
            kind="meta",
            reason="malformed",
        )
        for probe in (village, operator):
            await client.publish(meta_topic(probe.probe_id), b"", qos=1, retain=True)

        # Its result names a village with a newline: refused for good, so it gets a receipt.
        signed = EnrolledProbe.new("vn-79-result-newline")
        await signed.enroll(client)
        await client.subscribe(receipt_topic(signed.probe_id), qos=1)
        location = signed.result().location
        assert location is not None
        forged = msgspec.structs.replace(location, village=f"Ấp A\n{FORGED}")
        await signed.send(client, signed.result(seq=1, location=forged))
        got = await receipts(client, 1, timeout_s=15)
        assert [r.status for r in got] == ["rejected"]
        assert got[0].reason is not None
        assert "$.location.village" in got[0].reason
        await still_ingesting(stack, client)
    log = stack.log.read_text(encoding="utf-8")
    assert not [line for line in log.splitlines() if line.startswith(FORGED)]


async def test_a_poison_retained_meta_cannot_make_a_restart_loop(
    stack: Stack,
) -> None:
    topic = meta_topic("vn-79-poison")
    async with mqtt_client(BrokerConfig(url=stack.broker_url), identifier="poison") as client:
        await client.publish(topic, deep("qosfleet.meta/1"), qos=1, retain=True)
        before = counted(stack, "too-deep", "meta")
        wait_for_metric(
            stack.collector,
            "qos_collector_fleet_messages_rejected_total",
            before + 1,
            kind="meta",
            reason="too-deep",
        )
        # Restarted, the collector gets the retained poison again first thing, and goes on.
        restart(stack.collector)
        wait_for_metric(
            stack.collector,
            "qos_collector_fleet_messages_rejected_total",
            1,
            kind="meta",
            reason="too-deep",
        )
        await still_ingesting(stack, client)
        await client.publish(topic, b"", qos=1, retain=True)
