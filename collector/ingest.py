"""From an MQTT message to a stored result: validate, store, acknowledge with a receipt."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from contract.errors import QosfleetError, WireError
from contract.result import Result, decode_result

log = logging.getLogger("qosfleet.collector")

MAX_PAYLOAD_BYTES = 64 * 1024


class ResultRejectedError(QosfleetError):
    """A result refused for good; `reason` is the counter label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def probe_id_of(topic: str) -> str:
    """'qos/v1/<probe_id>/result' -> '<probe_id>' ('' when the topic has another shape)."""
    parts = topic.split("/")
    return parts[2] if len(parts) == 4 else ""  # noqa: PLR2004 - the v1 topic has four levels


def validate(topic: str, payload: bytes, *, now: datetime | None = None) -> Result:
    """Accept a result only if it is well-formed, sane, and sent by the probe it names."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ResultRejectedError("too-large", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        result = decode_result(payload, now=now or datetime.now(UTC))
    except WireError as exc:
        raise ResultRejectedError("malformed", exc.message) from exc
    sender = probe_id_of(topic)
    if sender != result.probe_id:
        raise ResultRejectedError(
            "topic-mismatch", f"topic {topic!r} carries a result of probe {result.probe_id!r}"
        )
    if result.location is None:
        raise ResultRejectedError(
            "not-enrolled", f"probe {result.probe_id} sent a result with no location"
        )
    return result
