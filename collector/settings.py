"""The collector process's settings, from the command line (collector/cli.py)."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from collector.ingest import IngestPolicy
from contract.mqtt import BrokerConfig


class CollectorSettings(msgspec.Struct, frozen=True, kw_only=True):
    broker: BrokerConfig
    store_url: str
    # The journal and the probe registry; one directory per collector process.
    state_dir: str
    group: str = "collectors"
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9108
    # The export API; None leaves it off.
    api_host: str | None = None
    api_port: int = 9109
    # Bearer tokens that may read raw results (None: only aggregates are served).
    api_token_file: str | None = None
    # Seconds between refreshes of the per-area verdict series; 0 leaves it to another instance.
    verdict_interval_s: float = 60.0
    # Seconds between writes of the fleet-state series (qos_probe_online, budgets).
    fleet_interval_s: float = 60.0
    profiles_path: str | None = None
    policy: IngestPolicy = IngestPolicy()
    # Lines per write to the store.
    batch_size: int = 5000
    # The /metrics of every store process that holds acknowledged rows in memory (default: the
    # store's own), and how often to ask them which run answers.
    store_metrics_urls: tuple[str, ...] = ()
    store_check_interval_s: float = 1.0
    # How long after a write a store run that is still up holds the row on disk. VictoriaMetrics
    # 1.79 moves rows to disk 6 to 11 s after it acknowledged them (raw rows every second, then
    # in-memory parts once 5 s old, checked every 5 s); later versions within
    # -inmemoryDataFlushInterval (5 s). Measured on kill -9: nothing older than 5 s was lost.
    store_persist_s: float = 30.0
    ledger_ttl_s: float = timedelta(days=2).total_seconds()
