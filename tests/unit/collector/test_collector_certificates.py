"""Certificate expiry as metrics: PEM files and bundles, hostile files, a real TLS listener, and a
watch that keeps reporting when a source fails."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from collector.certificates import (
    BROKER_CA,
    BROKER_SERVER,
    MAX_CERTIFICATES,
    MAX_FILE_BYTES,
    OPERATOR_FILE,
    PEM_MARKER,
    CertificateRefusedError,
    CertificateWatch,
    Expiry,
    PemFile,
    PresentedCertificate,
    broker_sources,
    certificates_in_pem,
)
from contract.mqtt import BrokerConfig
from lab.services import free_port
from tests.certificates import make_certificates

NOT_AFTER = "qos_collector_certificate_not_after_timestamp_seconds"


def not_after_of(path: Path) -> float:
    return x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc.timestamp()


def refused(reason: str, data: bytes) -> None:
    with pytest.raises(CertificateRefusedError) as caught:
        certificates_in_pem(data)
    assert caught.value.reason == reason


def test_a_bundle_gives_every_certificate_with_its_subject_serial_and_expiry(
    tmp_path: Path,
) -> None:
    ca, server, _ = make_certificates(
        tmp_path,
        ca_valid_for=dt.timedelta(days=3650),
        server_valid_for=dt.timedelta(days=10),
    )
    found = certificates_in_pem(ca.read_bytes() + server.read_bytes())
    assert [expiry.subject for expiry in found] == ["CN=qosfleet test CA", "CN=localhost"]
    assert [expiry.not_after_s for expiry in found] == [not_after_of(ca), not_after_of(server)]
    serial = x509.load_pem_x509_certificate(server.read_bytes()).serial_number
    assert found[1].serial == f"{serial:x}"
    days_left = (found[1].not_after_s - dt.datetime.now(dt.UTC).timestamp()) / 86_400
    assert 9.9 < days_left <= 10


def test_files_without_a_usable_certificate_are_refused_with_their_reason(tmp_path: Path) -> None:
    refused("not-pem", b"")
    refused("not-pem", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    refused("malformed", PEM_MARKER + b"\nnot base64 at all\n-----END CERTIFICATE-----\n")
    ca, _, _ = make_certificates(tmp_path)
    refused("too-many", ca.read_bytes() * (MAX_CERTIFICATES + 1))
    assert len(certificates_in_pem(ca.read_bytes() * MAX_CERTIFICATES)) == MAX_CERTIFICATES


@given(st.binary(max_size=4096))
def test_random_bytes_are_read_or_refused_never_anything_else(data: bytes) -> None:
    try:
        certificates_in_pem(data)
    except CertificateRefusedError as exc:
        assert exc.reason in {"not-pem", "malformed", "too-many"}


@given(st.binary(max_size=512))
def test_a_certificate_block_of_random_bytes_is_refused(body: bytes) -> None:
    refused("malformed", PEM_MARKER + b"\n" + body + b"\n-----END CERTIFICATE-----\n")


async def test_a_missing_or_oversized_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CertificateRefusedError) as missing:
        await PemFile(BROKER_CA, tmp_path / "absent.crt").read()
    assert missing.value.reason == "unreadable"
    huge = tmp_path / "huge.crt"
    huge.write_bytes(PEM_MARKER + b"A" * MAX_FILE_BYTES)
    with pytest.raises(CertificateRefusedError) as oversized:
        await PemFile(BROKER_CA, huge).read()
    assert oversized.value.reason == "too-large"


async def test_the_certificate_a_tls_listener_presents_is_read(tmp_path: Path) -> None:
    _, server, key = make_certificates(tmp_path, server_valid_for=dt.timedelta(days=5))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server, key)

    async def hang_up(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    listener = await asyncio.start_server(hang_up, "127.0.0.1", 0, ssl=context)
    port = listener.sockets[0].getsockname()[1]
    async with listener:
        found = await PresentedCertificate("127.0.0.1", port).read()
    assert [(expiry.subject, expiry.not_after_s) for expiry in found] == [
        ("CN=localhost", not_after_of(server))
    ]


async def test_a_closed_port_or_a_listener_without_tls_is_unreachable() -> None:
    with pytest.raises(CertificateRefusedError) as closed:
        await PresentedCertificate("127.0.0.1", free_port()).read()
    assert closed.value.reason == "unreachable"

    async def plain(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"not TLS\r\n")
        writer.close()

    listener = await asyncio.start_server(plain, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    async with listener:
        with pytest.raises(CertificateRefusedError) as cleartext:
            await PresentedCertificate("127.0.0.1", port, timeout_s=2.0).read()
    assert cleartext.value.reason == "unreachable"


def test_the_broker_sources_follow_the_collectors_broker_options() -> None:
    tls = BrokerConfig(url="mqtts://mosquitto:8883", ca_file="/run/secrets/broker_ca")
    assert broker_sources(tls, ["/etc/proxy.crt"]) == [
        PemFile(BROKER_CA, Path("/run/secrets/broker_ca")),
        PresentedCertificate("mosquitto", 8883),
        PemFile(OPERATOR_FILE, Path("/etc/proxy.crt")),
    ]
    assert broker_sources(BrokerConfig(url="mqtt://127.0.0.1:1883"), []) == []


@dataclass(frozen=True)
class Scripted:
    """A source answering from a list: an Expiry list, or an exception to raise."""

    name: str
    answers: list[list[Expiry] | Exception] = field(hash=False, compare=False)
    role: str = BROKER_SERVER

    async def read(self) -> list[Expiry]:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_the_watch_keeps_the_last_expiry_and_counts_each_refusal() -> None:
    first = Expiry("CN=mqtt.example.vn", "1a", 1_900_000_000.0)
    broker = Scripted(
        "mqtt.example.vn:8883",
        [[first], CertificateRefusedError("unreachable", "down"), RuntimeError("a bug")],
    )
    ca = Scripted("/etc/ca.crt", [[Expiry("CN=ca", "2b", 2_000_000_000.0)]] * 3, role=BROKER_CA)
    registry = CollectorRegistry()
    watch = CertificateWatch([broker, ca], registry=registry)
    labels = {"role": BROKER_SERVER, "source": broker.name, "subject": first.subject}
    labels["serial"] = "1a"

    await watch.check()
    assert registry.get_sample_value(NOT_AFTER, labels) == first.not_after_s
    ok = {"role": BROKER_SERVER, "source": broker.name}
    assert registry.get_sample_value("qos_collector_certificate_check_ok", ok) == 1

    await watch.check()
    await watch.check()
    # The broker went away, then a bug: its last known expiry stays, the CA is still read.
    assert registry.get_sample_value(NOT_AFTER, labels) == first.not_after_s
    assert registry.get_sample_value("qos_collector_certificate_check_ok", ok) == 0
    for reason in ("unreachable", "internal"):
        assert (
            registry.get_sample_value(
                "qos_collector_certificate_checks_refused_total",
                {"role": BROKER_SERVER, "reason": reason},
            )
            == 1
        )
    ca_ok = {"role": BROKER_CA, "source": ca.name}
    assert registry.get_sample_value("qos_collector_certificate_check_ok", ca_ok) == 1


async def test_the_checks_run_beside_the_collector_and_end_with_it() -> None:
    broker = Scripted("b:8883", [[Expiry("CN=b", "1", 1.0)]] * 100)
    watch = CertificateWatch([broker], interval_s=0.01)

    async def collector() -> None:
        await asyncio.sleep(0.1)

    await watch.alongside(collector())
    left = len(broker.answers)
    assert left < 99, "the checks did not repeat"
    await asyncio.sleep(0.05)
    assert len(broker.answers) == left, "the checks outlived the collector"

    async def failing() -> None:
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        await watch.alongside(failing())
