"""Prometheus metrics for `followupd run`, served at ``GET /metrics``.

Follow-ups by state and rule are counted in the store at each scrape, so
they are right whichever instance did the work; pass durations and delivery
errors are this process's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from followupd.store.db import Store
from followupd.store.outbox import housekeeping


class FollowUpsByState(Collector):
    def __init__(self, store: Callable[[], Store]) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "followupd_followups", "Follow-ups by state and rule", labels=["state", "rule"]
        )
        with self.store().session() as session:
            counts = housekeeping.count_by_state_and_rule(session)
        for (state, rule), count in counts.items():
            family.add_metric([state, rule], count)
        yield family


class Metrics:
    def __init__(self, store: Callable[[], Store]) -> None:
        self.registry = CollectorRegistry()
        self.pass_seconds = Histogram(
            "followupd_pass_duration_seconds",
            "How long each pass took",
            ["pass"],
            registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300),
        )
        self.pass_failures = Counter(
            "followupd_pass_failures", "Passes that failed", ["pass"], registry=self.registry
        )
        self.delivery_errors = Counter(
            "followupd_delivery_errors",
            "Failed delivery attempts (retried or not), by channel",
            ["channel"],
            registry=self.registry,
        )
        self.registry.register(FollowUpsByState(store))

    def render(self) -> bytes:
        return generate_latest(self.registry)
