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
        self.fleet_rejected = Counter(
            "qos_collector_fleet_messages_rejected",
            "Probe meta or status messages refused, by kind and reason",
            ["kind", "reason"],
            registry=registry,
        )
        self.receipts = Counter(
            "qos_collector_receipts_sent",
            "Receipts sent to probes (handed to the broker connection), by status "
            "(stored / rejected)",
            ["status"],
            registry=registry,
        )
        self.write_errors = Counter(
            "qos_collector_store_write_errors",
            "Failed writes to the time-series store",
            registry=registry,
        )
        self.replayed = Counter(
            "qos_collector_store_replayed_lines",
            "Lines written again after a store restart, which may have lost them",
            registry=registry,
        )
        self.store_restarts = Counter(
            "qos_collector_store_restarts",
            "Store restarts seen (another start time), each followed by a replay",
            registry=registry,
        )
        self.unconfirmed = Gauge(
            "qos_collector_store_unconfirmed_lines",
            "Lines the store acknowledged but may hold only in memory, kept for a replay",
            registry=registry,
        )
        self.enrollments_refused = Counter(
            "qos_collector_enrollment_changes_refused",
            "Meta messages with another key or location than the probe's pinned enrollment",
            registry=registry,
        )
        self.enrollment_disputed = Gauge(
            "qos_collector_probe_enrollment_disputed",
            "1 for each probe whose changed enrollment waits for an operator's decision",
            ["probe"],
            registry=registry,
        )
        self.ingest_lag = Histogram(
            "qos_collector_ingest_lag_seconds",
            "From the end of a measurement to its durable write",
            buckets=(0.1, 0.5, 1, 2, 5, 30, 60, 600, 3600, 86400),
            registry=registry,
        )
        self.buffer_depth = Gauge(
            "qos_collector_buffer_depth",
            "Accepted results waiting in the local journal for the store",
            registry=registry,
        )
        self.queue_depth = Gauge(
            "qos_collector_pipeline_queue_depth",
            "Items waiting in the queue into each pipeline stage (check: messages; verify, "
            "journal: results; store: journal commits; receipt: receipts)",
            ["queue"],
            registry=registry,
        )
        self.queue_capacity = Gauge(
            "qos_collector_pipeline_queue_capacity",
            "Items the queue into each pipeline stage holds before the stage feeding it waits",
            ["queue"],
            registry=registry,
        )
        self.queue_blocked = Counter(
            "qos_collector_pipeline_blocked_seconds",
            "Time the stage feeding each queue waited for room in it (backpressure)",
            ["queue"],
            registry=registry,
        )
        self.probes_online = Gauge(
            "qos_collector_probes_online",
            "Probes whose last retained status says online",
            registry=registry,
        )
        self.probes_enrolled = Gauge(
            "qos_collector_probes_enrolled",
            "Probes with a retained enrollment (meta) message",
            registry=registry,
        )
        self.broker_connected = Gauge(
            "qos_collector_broker_connected", "1 while subscribed to the broker", registry=registry
        )
        self.store_up = Gauge(
            "qos_collector_store_up",
            "1 while the last write to the store succeeded",
            registry=registry,
        )
