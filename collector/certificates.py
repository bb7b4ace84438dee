"""When the certificates the fleet depends on expire, as metrics for the expiry alerts.

Watched: the CA file the collector trusts for the broker (`--broker-ca`, the fleet CA every probe
holds), the certificate the broker presents on its TLS listener (the one every probe checks;
read from a TLS handshake, so a renewed file the broker has not reloaded still shows the old
date), and any other PEM file named with `--certificate`. They are read at start and then every
`--certificate-interval` seconds, never during a scrape, so /metrics stays fast; the last
certificates read from a source stay exported while a later read fails.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from cryptography import x509
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from contract.errors import QosfleetError
from contract.mqtt import BrokerConfig, broker_endpoint

log = logging.getLogger(__name__)

# What a certificate is to the fleet (the `role` label).
BROKER_CA = "broker-ca"
BROKER_SERVER = "broker-server"
OPERATOR_FILE = "file"

DEFAULT_INTERVAL_S = 3600.0
HANDSHAKE_TIMEOUT_S = 10.0
# A CA bundle is a few kB; anything far larger is not one of ours.
MAX_FILE_BYTES = 1 << 20
# Bounds the series one file can create (one per certificate).
MAX_CERTIFICATES = 32
MAX_SUBJECT_CHARS = 200
PEM_MARKER = b"-----BEGIN CERTIFICATE-----"


CertificateRefusal = Literal[
    "unreadable",
    "too-large",
    "not-pem",
    "malformed",
    "too-many",
    "unreachable",
    "no-certificate",
    "internal",
]
# What the operator reading the collector's log does about each refusal.
_REFUSAL_HINTS: dict[CertificateRefusal, str] = {
    "unreadable": "check the path given to --broker-ca or --certificate and that the collector's "
    "user may read it",
    "too-large": f"give the certificate itself (PEM, under {MAX_FILE_BYTES} bytes), not an archive",
    "not-pem": "give a PEM file starting with -----BEGIN CERTIFICATE----- (not a key or DER)",
    "malformed": "the file is damaged: copy the certificate again from where it was issued",
    "too-many": "give the fleet's own CA, not a system bundle (a public CA needs no --broker-ca)",
    "unreachable": "check that the broker runs and its TLS listener answers (CollectorDisconnected "
    "says the same)",
    "no-certificate": "the listener presented no certificate: check certfile in mosquitto.conf",
    "internal": "a collector bug: report it with this log line",
}


class CertificateRefusedError(QosfleetError):
    """A source that gave no certificate; `reason` is the refusal's label."""

    def __init__(self, reason: CertificateRefusal, detail: str) -> None:
        super().__init__(f"{reason}: {detail}", _REFUSAL_HINTS[reason])
        self.reason: CertificateRefusal = reason


@dataclass(frozen=True)
class Expiry:
    subject: str
    serial: str
    not_after_s: float


def expiry_of(certificate: x509.Certificate) -> Expiry:
    subject = certificate.subject.rfc4514_string()
    # rfc4514 escapes separators but not control characters: none may reach a label.
    printable = "".join(char if char.isprintable() else "?" for char in subject)
    return Expiry(
        subject=printable[:MAX_SUBJECT_CHARS],
        serial=f"{certificate.serial_number:x}",
        not_after_s=certificate.not_valid_after_utc.timestamp(),
    )


def certificates_in_pem(data: bytes) -> list[Expiry]:
    """Every certificate of a PEM file or bundle; refused when there is none or it is unreadable."""
    count = data.count(PEM_MARKER)
    if count == 0:
        raise CertificateRefusedError("not-pem", "no -----BEGIN CERTIFICATE----- block")
    if count > MAX_CERTIFICATES:
        raise CertificateRefusedError(
            "too-many", f"{count} certificates, more than the {MAX_CERTIFICATES} watched per file"
        )
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise CertificateRefusedError("malformed", f"not a valid certificate: {exc}") from exc
    return [expiry_of(certificate) for certificate in certificates]


class CertificateSource(Protocol):
    """Somewhere certificates are read from (a file, a TLS listener); tests pass their own."""

    @property
    def role(self) -> str: ...

    @property
    def name(self) -> str: ...

    async def read(self) -> list[Expiry]: ...


@dataclass(frozen=True)
class PemFile:
    role: str
    path: Path

    @property
    def name(self) -> str:
        return str(self.path)

    async def read(self) -> list[Expiry]:
        return await asyncio.to_thread(self._read)

    def _read(self) -> list[Expiry]:
        try:
            with self.path.open("rb") as file:
                data = file.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise CertificateRefusedError("unreadable", f"cannot read: {exc.strerror}") from exc
        if len(data) > MAX_FILE_BYTES:
            raise CertificateRefusedError("too-large", f"larger than {MAX_FILE_BYTES} bytes")
        return certificates_in_pem(data)


@dataclass(frozen=True)
class PresentedCertificate:
    """The certificate a TLS listener presents, as a client connecting to it sees it."""

    host: str
    port: int
    role: str = BROKER_SERVER
    timeout_s: float = HANDSHAKE_TIMEOUT_S

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"

    async def read(self) -> list[Expiry]:
        # Not verified: an expired or otherwise invalid certificate is exactly what must be read.
        # Nothing is sent over this connection; the collector's own MQTT connection verifies.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            async with asyncio.timeout(self.timeout_s):
                _, writer = await asyncio.open_connection(
                    self.host, self.port, ssl=context, server_hostname=self.host
                )
        except (OSError, TimeoutError) as exc:
            raise CertificateRefusedError("unreachable", f"no TLS handshake: {exc}") from exc
        try:
            tls = writer.get_extra_info("ssl_object")
            der = tls.getpeercert(binary_form=True) if tls is not None else None
        finally:
            writer.close()
            with suppress(OSError, TimeoutError):
                async with asyncio.timeout(self.timeout_s):
                    await writer.wait_closed()
        if not der:
            raise CertificateRefusedError("no-certificate", "the listener presented none")
        try:
            return [expiry_of(x509.load_der_x509_certificate(der))]
        except ValueError as exc:
            raise CertificateRefusedError("malformed", f"not a valid certificate: {exc}") from exc


def broker_sources(broker: BrokerConfig, files: Sequence[str]) -> list[CertificateSource]:
    """The fleet CA and the broker's listener (over mqtts://), then the operator's files."""
    sources: list[CertificateSource] = []
    if broker.ca_file:
        sources.append(PemFile(BROKER_CA, Path(broker.ca_file)))
    endpoint = broker_endpoint(broker.url)
    if endpoint.tls:
        sources.append(PresentedCertificate(endpoint.host, endpoint.port))
    sources.extend(PemFile(OPERATOR_FILE, Path(path)) for path in files)
    return sources


class CertificateWatch(Collector):
    """Reads its sources every `interval_s` and yields what it read on each scrape."""

    def __init__(
        self,
        sources: Sequence[CertificateSource],
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.sources = tuple(sources)
        self.interval_s = interval_s
        self._read: dict[CertificateSource, list[Expiry]] = {}
        self._ok: dict[CertificateSource, bool] = {}
        self._refused: dict[tuple[str, str], int] = {}
        if registry is not None:
            registry.register(self)

    async def check(self) -> None:
        for source in self.sources:
            try:
                found = await source.read()
            except CertificateRefusedError as exc:
                self._refuse(source, exc)
            except Exception as exc:  # noqa: BLE001 - a bug here must never stop the ingest
                self._refuse(source, CertificateRefusedError("internal", repr(exc)))
            else:
                self._read[source] = found
                self._ok[source] = True

    def _refuse(self, source: CertificateSource, refusal: CertificateRefusedError) -> None:
        self._ok[source] = False
        key = (source.role, refusal.reason)
        self._refused[key] = self._refused.get(key, 0) + 1
        log.warning(
            "certificate check of %s %s refused: %s (its last known expiry stays exported)",
            source.role,
            source.name,
            refusal,
        )

    async def run(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.interval_s)

    async def alongside(self, main: Coroutine[Any, Any, None]) -> None:
        """Run `main` (the collector) with the checks beside it; they end when it does."""
        checks = asyncio.create_task(self.run(), name="certificates")
        try:
            await main
        finally:
            checks.cancel()
            with suppress(asyncio.CancelledError):
                await checks

    def collect(self) -> Iterator[Metric]:
        not_after = GaugeMetricFamily(
            "qos_collector_certificate_not_after_timestamp_seconds",
            "When each watched certificate expires (its notAfter), by role and source",
            labels=["role", "source", "subject", "serial"],
        )
        for source, found in self._read.items():
            for expiry in found:
                not_after.add_metric(
                    [source.role, source.name, expiry.subject, expiry.serial], expiry.not_after_s
                )
        checked = GaugeMetricFamily(
            "qos_collector_certificate_check_ok",
            "1 when the last check of a certificate source read it, 0 when it was refused",
            labels=["role", "source"],
        )
        for source, ok in self._ok.items():
            checked.add_metric([source.role, source.name], 1.0 if ok else 0.0)
        refused = CounterMetricFamily(
            "qos_collector_certificate_checks_refused",
            "Certificate checks that read nothing, by role and reason",
            labels=["role", "reason"],
        )
        for (role, reason), count in self._refused.items():
            refused.add_metric([role, reason], count)
        yield from (not_after, checked, refused)
