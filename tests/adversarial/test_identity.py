"""Identity is the enrollment: a stolen broker password cannot re-key a probe, move it, or have
its genuine results deleted; only the operator's approval changes a pinned key or place, and it
reaches every collector.

The shipped broker config (deploy/mosquitto: accounts, ACL) on real mosquitto, qos-collector
processes with the production policy, a real VictoriaMetrics, and the real `qos-collector probes`
command with the operator's account.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import msgspec
import pytest

from collector.registry import key_fingerprint
from contract.mqtt import mqtt_client
from contract.result import Result, receipt_topic
from contract.signing import new_private_key, public_key_text
from lab.services import Endpoint, VictoriaMetrics, qos_collector, venv_script
from tests.adversarial.conftest import metric
from tests.integration.agent.conftest import wait_until
from tests.integration.collector.support import Broker, EnrolledProbe, receipts, shipped_broker

pytestmark = [pytest.mark.integration, pytest.mark.adversarial]

PROBE = "vn-01-ban-thuong"
OPERATOR = "qosfleet.operator"
ACCOUNTS = {
    PROBE: "probe-secret",
    "collector.1": "collector-secret-1",
    "collector.2": "collector-secret-2",
    OPERATOR: "operator-secret",
}
SENT = 20
# How long a refusal without a receipt is given to show that no receipt comes.
QUIET_S = 1.5


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with shipped_broker(tmp_path / "broker", ACCOUNTS) as running:
        yield running


@dataclass
class Collectors:
    """Named collector processes on the shipped broker, each with its own state directory."""

    workdir: Path
    broker: Broker
    store: VictoriaMetrics
    stack: ExitStack

    def start(self, name: str, account: str = "collector.1") -> Endpoint:
        secret = self.workdir / f"{name}.password"
        secret.write_text(ACCOUNTS[account], encoding="utf-8")
        extra = ("--broker-username", account, "--broker-password-file", str(secret))
        endpoint = qos_collector(
            self.workdir,
            broker_url=self.broker.url,
            store_url=self.store.url,
            name=name,
            extra_args=extra,
        )
        return self.stack.enter_context(endpoint)

    def state_dir(self, name: str) -> Path:
        return self.workdir / f"{name}-state"


@pytest.fixture
def collectors(tmp_path: Path, broker: Broker, store: VictoriaMetrics) -> Iterator[Collectors]:
    with ExitStack() as stack:
        yield Collectors(tmp_path, broker, store, stack)


def probes_command(broker: Broker, *args: str) -> subprocess.CompletedProcess[str]:
    """`qos-collector probes ...` as the operator runs it (approve and revoke: their account)."""
    argv = [venv_script("qos-collector"), "probes", *args]
    if args[0] in {"approve", "revoke"}:
        argv += ["--broker", broker.url, "--broker-username", OPERATOR]
        argv += ["--broker-password", ACCOUNTS[OPERATOR]]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


async def no_receipt(client: aiomqtt.Client) -> bool:
    """Nothing comes within a while (refusals without a receipt)."""
    return await receipts(client, 1, timeout_s=QUIET_S) == []


async def dropped(client: aiomqtt.Client) -> bool:
    """Whether the broker ends the client's connection within a while."""
    try:
        async with asyncio.timeout(10):
            async for _ in client.messages:
                pass
    except aiomqtt.MqttError:
        return True
    except TimeoutError:
        return False
    return False


def stored_seqs(store: VictoriaMetrics) -> set[int]:
    store.flush()
    return {int(v) for s in store.export(f'qos_seq{{probe="{PROBE}"}}') for v in s["values"]}


async def test_a_stolen_password_cannot_re_key_a_probe_or_delete_its_results(
    broker: Broker, collectors: Collectors, store: VictoriaMetrics
) -> None:
    genuine = EnrolledProbe.new(PROBE)
    thief = EnrolledProbe(PROBE, new_private_key())
    first = collectors.start("collector-a", "collector.1")
    second = collectors.start("collector-b", "collector.2")
    async with (
        mqtt_client(broker.config(PROBE), identifier="genuine") as probe,
        mqtt_client(broker.config(PROBE), identifier="thief") as stolen,
    ):
        await probe.subscribe(receipt_topic(PROBE), qos=1)
        await genuine.enroll(probe)
        await genuine.send(probe, genuine.result(seq=1))
        assert [r.status for r in await receipts(probe, 1, timeout_s=10)] == ["stored"]

        # The thief re-enrolls the probe with its own key and a village of its choosing.
        meta = msgspec.structs.replace(
            genuine.meta(),
            public_key=public_key_text(thief.key),
            location=msgspec.structs.replace(genuine.meta().location, village="Làng Giả"),
        )
        await stolen.publish(f"qos/v1/{PROBE}/meta", msgspec.json.encode(meta), qos=1, retain=True)
        for endpoint in (first, second):
            wait_until(
                lambda e=endpoint: (
                    metric(  # type: ignore[misc]
                        e, "qos_collector_probe_enrollment_disputed", probe=PROBE
                    )
                    == 1.0
                ),
                timeout_s=10,
                what="the dispute on every collector",
            )
            assert metric(endpoint, "qos_collector_enrollment_changes_refused_total") == 1
        forged = [thief.result(seq=100 + n, location=meta.location) for n in range(SENT)]
        for result in forged:
            await thief.send(stolen, result)
        # The genuine probe goes on measuring while the key is disputed.
        sent = [genuine.result(seq=2 + n) for n in range(SENT)]
        for result in sent:
            await genuine.send(probe, result)
        got = await receipts(probe, SENT, timeout_s=20)
        assert await no_receipt(probe)  # and none for a forged result
    by_status: dict[str, set[str]] = {}
    for receipt in got:
        for result_id in (receipt.id, *receipt.also):
            by_status.setdefault(receipt.status, set()).add(str(result_id))
    assert by_status == {"stored": {str(r.id) for r in sent}}  # never "rejected" for forgeries
    disputed = sum(
        metric(e, "qos_collector_results_rejected_total", reason="disputed")
        for e in (first, second)
    )
    assert disputed == SENT
    assert stored_seqs(store) == {1} | {r.seq for r in sent}
    print(
        f"ATTACK re-key with a stolen password: forged sent {SENT}, stored 0 (disputed "
        f"{disputed:.0f}, no receipt); genuine sent {SENT + 1}, stored {len(stored_seqs(store))}"
    )


async def test_an_approval_reaches_every_collector_and_a_new_one(
    broker: Broker, collectors: Collectors, store: VictoriaMetrics
) -> None:
    """The probe really was re-keyed (a new SD card): the operator approves the new key once."""
    old = EnrolledProbe.new(PROBE)
    new = EnrolledProbe(PROBE, new_private_key())
    first = collectors.start("collector-a", "collector.1")
    second = collectors.start("collector-b", "collector.2")
    async with mqtt_client(broker.config(PROBE), identifier="probe") as probe:
        await probe.subscribe(receipt_topic(PROBE), qos=1)
        await old.enroll(probe)
        await old.send(probe, old.result(seq=1))
        assert [r.status for r in await receipts(probe, 1, timeout_s=10)] == ["stored"]
        await new.enroll(probe)
        waiting = [new.result(seq=2 + n) for n in range(SENT)]
        for result in waiting:
            await new.send(probe, result)
        assert await no_receipt(probe)  # kept in the probe's spool
        state_dir = str(collectors.state_dir("collector-a"))
        (record,) = list_probes(broker, collectors.state_dir("collector-a"))
        fingerprint = key_fingerprint(public_key_text(new.key))
        assert (record["standing"], record["pending_key"]) == ("disputed", fingerprint)
        wrong = probes_command(
            broker, "approve", PROBE, "--key", "0123456789abcdef", "--state-dir", state_dir
        )
        assert wrong.returncode == 2
        assert fingerprint in wrong.stderr
        done = probes_command(
            broker, "approve", PROBE, "--key", fingerprint, "--state-dir", state_dir,
            "--note", "SD card replaced, checked with the site",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        for endpoint in (first, second):
            wait_until(
                lambda e=endpoint: (
                    metric(  # type: ignore[misc]
                        e, "qos_collector_probe_enrollment_disputed", probe=PROBE
                    )
                    == 0.0
                ),
                timeout_s=10,
                what="the approval on every collector",
            )
        for result in waiting:  # the probe re-sends what waited in its spool
            await new.send(probe, result)
        got = await receipts(probe, SENT, timeout_s=20)
        # A thief publishes yet another key; a collector started now learns the approval from
        # the broker (retained, before any meta), instead of trusting that meta on first use.
        thief = EnrolledProbe(PROBE, new_private_key())
        await thief.enroll(probe)
        third = collectors.start("collector-c", "collector.1")
        wait_until(
            lambda: metric(third, "qos_collector_probe_enrollment_disputed", probe=PROBE) == 1.0,
            timeout_s=10,
            what="the new collector to see the dispute",
        )
    assert {str(i) for r in got for i in (r.id, *r.also)} == {str(r.id) for r in waiting}
    assert {r.status for r in got} == {"stored"}
    assert stored_seqs(store) == set(range(1, 2 + SENT))
    (record,) = list_probes(broker, collectors.state_dir("collector-c"))
    assert (record["standing"], record["key"]) == ("disputed", fingerprint)
    assert record["pending_key"] == key_fingerprint(public_key_text(thief.key))


async def test_a_revoked_probe_is_refused_everywhere_and_its_account_removed(
    broker: Broker, collectors: Collectors, store: VictoriaMetrics
) -> None:
    probe_keys = EnrolledProbe.new(PROBE)
    first = collectors.start("collector-a", "collector.1")
    async with mqtt_client(broker.config(PROBE), identifier="probe") as probe:
        await probe.subscribe(receipt_topic(PROBE), qos=1)
        await probe_keys.enroll(probe)
        await probe_keys.send(probe, probe_keys.result(seq=1))
        assert [r.status for r in await receipts(probe, 1, timeout_s=10)] == ["stored"]
        done = probes_command(broker, "revoke", PROBE, "--note", "stolen from the pole")
        assert done.returncode == 0, done.stderr
        wait_until(
            lambda: (
                list_probes(broker, collectors.state_dir("collector-a"))[0]["standing"] == "revoked"
            ),
            timeout_s=10,
            what="the revocation",
        )
        for seq in range(2, 2 + SENT):
            await probe_keys.send(probe, probe_keys.result(seq=seq))
        assert await no_receipt(probe)  # refused, kept on the probe
        assert metric(first, "qos_collector_results_rejected_total", reason="revoked") == SENT
        # The rest of docs/operate-central.md: remove the account (the reload drops the live
        # connection too), clear the retained messages.
        broker.remove_account(PROBE)
        assert await dropped(probe)
    async with mqtt_client(broker.config(OPERATOR), identifier="operator") as operator:
        for kind in ("meta", "status"):
            await operator.publish(f"qos/v1/{PROBE}/{kind}", b"", qos=1, retain=True)
    with pytest.raises(aiomqtt.MqttError):
        async with mqtt_client(broker.config(PROBE), identifier="probe-again"):
            pass
    assert stored_seqs(store) == {1}
    # A collector started later knows the probe is revoked (the retained decision stays).
    later = collectors.start("collector-b", "collector.2")
    del later
    wait_until(
        lambda: (
            list_probes(broker, collectors.state_dir("collector-b"))[0]["standing"] == "revoked"
        ),
        timeout_s=10,
        what="a new collector to learn the revocation",
    )


async def test_a_result_claiming_another_place_or_an_impossible_rate_is_refused(
    broker: Broker, collectors: Collectors, store: VictoriaMetrics
) -> None:
    probe_keys = EnrolledProbe.new(PROBE)
    first = collectors.start("collector-a", "collector.1")
    location = probe_keys.meta().location
    elsewhere = msgspec.structs.replace(location, village="Làng Khác", commune_code="00001")
    base = probe_keys.result(seq=1)
    assert base.measurements.download is not None
    impossible = msgspec.structs.replace(
        base.measurements,
        download=msgspec.structs.replace(base.measurements.download, mbps=99_999.0, bytes=1),
    )
    attacks: dict[str, list[Result]] = {
        "location-mismatch": [probe_keys.result(seq=10 + n, location=elsewhere) for n in range(5)],
        "inconsistent": [probe_keys.result(seq=20 + n, measurements=impossible) for n in range(5)],
    }
    async with mqtt_client(broker.config(PROBE), identifier="probe") as probe:
        await probe.subscribe(receipt_topic(PROBE), qos=1)
        await probe_keys.enroll(probe)
        for results in attacks.values():
            for result in results:
                await probe_keys.send(probe, result)
        got = await receipts(probe, 10, timeout_s=20)
    rejected = {str(r.id): r.reason or "" for r in got if r.status == "rejected"}
    for reason, results in attacks.items():
        assert {str(r.id) for r in results} <= set(rejected)
        assert metric(first, "qos_collector_results_rejected_total", reason=reason) == 5
    assert len(got) == 10
    assert stored_seqs(store) == set()


def list_probes(broker: Broker, state_dir: Path) -> list[dict[str, object]]:
    listing = probes_command(broker, "list", "--state-dir", str(state_dir), "--json")
    assert listing.returncode == 0, listing.stderr
    return [json.loads(line) for line in listing.stdout.splitlines()]


async def test_approved_at_installation_a_thief_connecting_first_is_not_trusted(
    broker: Broker, collectors: Collectors, store: VictoriaMetrics, tmp_path: Path
) -> None:
    """The password leaks before the probe ever connects: trust on first use would pin the
    thief's key; the enrollment approved from `qos-agent enroll --json` wins."""
    genuine = EnrolledProbe.new(PROBE)
    thief = EnrolledProbe(PROBE, new_private_key())
    enrollment = tmp_path / "enroll.json"
    enrollment.write_bytes(msgspec.json.encode(genuine.meta()))
    done = probes_command(broker, "approve", PROBE, "--meta", str(enrollment))
    assert done.returncode == 0, done.stderr
    first = collectors.start("collector-a", "collector.1")
    async with mqtt_client(broker.config(PROBE), identifier="probe") as probe:
        await probe.subscribe(receipt_topic(PROBE), qos=1)
        await thief.enroll(probe)
        wait_until(
            lambda: metric(first, "qos_collector_probe_enrollment_disputed", probe=PROBE) == 1.0,
            timeout_s=10,
            what="the thief's enrollment to be disputed",
        )
        for seq in range(1, 1 + SENT):
            await thief.send(probe, thief.result(seq=seq))
        assert await no_receipt(probe)
        await genuine.enroll(probe)
        await genuine.send(probe, genuine.result(seq=100))
        assert [r.status for r in await receipts(probe, 1, timeout_s=10)] == ["stored"]
    assert stored_seqs(store) == {100}
