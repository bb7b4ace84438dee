"""The collector's own Prometheus metrics, on a registry the caller owns (tests build their own)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class CollectorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.accepted = Counter(
            "qos_collector_results_accepted",
            "Results validated and durably stored",
            registry=registry,
        )
        self.rejected = Counter(
            "qos_collector_results_rejected",
            "Results refused, by reason",
            ["reason"],
            registry=registry,
        )
        self.write_errors = Counter(
            "qos_collector_store_write_errors",
            "Failed writes to the time-series store",
            registry=registry,
        )
        self.ingest_lag = Histogram(
            "qos_collector_ingest_lag_seconds",
            "From the end of a measurement to its durable write",
            buckets=(0.1, 0.5, 1, 2, 5, 30, 60, 600, 3600, 86400),
            registry=registry,
        )
        self.broker_connected = Gauge(
            "qos_collector_broker_connected", "1 while subscribed to the broker", registry=registry
        )
