"""Shared by the collector's integration tests: an in-process collector, enrolled test probes."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry

from collector.service import serve
from collector.settings import CollectorSettings
from contract.fleet import ProbeMeta, ProbeStatus, encode, meta_topic, status_topic
from contract.mqtt import BrokerConfig
from contract.result import Link, Receipt, Result, decode_receipt, encode_result, result_topic
from contract.signing import new_private_key, public_key_text, sign_result
from lab.services import Service, free_port, require_binary, tcp_answers
from tests.certificates import make_certificates
from tests.strategies import sample_result

DEPLOY = Path(__file__).parents[3] / "deploy" / "mosquitto"


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


class Broker:
    """The shipped broker config running: its ports, CA and accounts."""

    def __init__(
        self, plain_port: int, tls_port: int, ca_file: Path, accounts: Mapping[str, str], etc: Path
    ) -> None:
        self.plain_port = plain_port
        self.tls_port = tls_port
        self.ca_file = ca_file
        self.accounts = dict(accounts)
        self.etc = etc
        self.service: Service | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.plain_port}"

    def config(self, username: str, *, tls: bool = False) -> BrokerConfig:
        url = f"mqtts://localhost:{self.tls_port}" if tls else self.url
        return BrokerConfig(
            url=url,
            username=username,
            password=self.accounts[username],
            ca_file=str(self.ca_file) if tls else None,
        )

    def remove_account(self, username: str) -> None:
        """As deploy/mosquitto/README.md says: mosquitto_passwd -D, then a reload (SIGHUP)."""
        binary = require_binary("mosquitto_passwd")
        subprocess.run([binary, "-D", str(self.etc / "passwd"), username], check=True, timeout=10)
        assert self.service is not None
        assert self.service.process is not None
        self.service.process.send_signal(signal.SIGHUP)


def _password_file(path: Path, accounts: Mapping[str, str]) -> Path:
    """Hashed with mosquitto_passwd, as deploy/mosquitto/README.md tells an operator to."""
    binary = require_binary("mosquitto_passwd")
    path.touch(mode=0o600)
    for username, password in accounts.items():
        subprocess.run([binary, "-b", str(path), username, password], check=True, timeout=10)
    return path


@contextmanager
def shipped_broker(workdir: Path, accounts: Mapping[str, str]) -> Iterator[Broker]:
    """mosquitto on deploy/mosquitto/mosquitto.conf and acl, with `workdir`'s paths and ports."""
    etc = workdir / "etc"
    etc.mkdir(parents=True)
    ca_file, _, _ = make_certificates(etc)
    _password_file(etc / "passwd", accounts)
    (etc / "acl").write_text((DEPLOY / "acl").read_text(encoding="utf-8"), encoding="utf-8")
    plain_port, tls_port = free_port(), free_port()
    config = (DEPLOY / "mosquitto.conf").read_text(encoding="utf-8")
    config = config.replace("/etc/mosquitto/qosfleet/", f"{etc}/")
    config = config.replace("/var/lib/mosquitto/", f"{workdir}/")
    for shipped, here in (
        (r"^listener 8883$", f"listener {tls_port} 127.0.0.1"),
        (r"^listener 1883 ", f"listener {plain_port} "),
        (r"^log_dest syslog$", "log_dest stdout"),
    ):
        config = re.sub(shipped, here, config, flags=re.MULTILINE)
    # Run as the user that owns the temp files (mosquitto drops root to `mosquitto` otherwise).
    config += "user root\n"
    conf = workdir / "mosquitto.conf"
    conf.write_text(config, encoding="utf-8")
    service = Service(
        "mosquitto", [require_binary("mosquitto"), "-c", str(conf)], workdir / "mosquitto.log"
    )
    broker = Broker(plain_port, tls_port, ca_file, accounts, etc)
    broker.service = service
    try:
        service.start(
            lambda: tcp_answers("127.0.0.1", plain_port) and tcp_answers("127.0.0.1", tls_port)
        )
        yield broker
    finally:
        service.stop()
