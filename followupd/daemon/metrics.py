"""Prometheus metrics for `followupd run`, served at ``GET /metrics``.

Follow-ups by state and rule, and the receivables (what is unpaid by currency
and days past due, and how many invoices are overdue), are read from the
store at each scrape, so they are right whichever instance did the work; pass
durations and delivery errors are this process's own. The receivables are
those of the day the service's clock gives, in the first owner's time zone;
the scrape reads only the invoices open on that day.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from followupd.domain.receivables import Bucket, aging_by_currency
from followupd.store.db import Store
from followupd.store.outbox import housekeeping
from followupd.store.receivables import invoice_facts


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


class Receivables(Collector):
    """What clients owe on the day `today` gives, every owner's, by currency and bucket."""

    def __init__(self, store: Callable[[], Store], today: Callable[[], date]) -> None:
        self.store = store
        self.today = today

    def collect(self) -> Iterator[Metric]:
        amounts = GaugeMetricFamily(
            "followupd_receivables",
            "Unpaid on open invoices, by currency and days past due (bucket: "
            + ", ".join(Bucket)
            + ")",
            labels=["currency", "bucket"],
        )
        day = self.today()
        with self.store().session() as session:
            by_currency = aging_by_currency(invoice_facts(session, day, history=False), day)
        for currency, aging in by_currency.items():
            for bucket in Bucket:
                amounts.add_metric([currency, bucket], float(aging.amounts[bucket]))
        yield amounts
        yield GaugeMetricFamily(
            "followupd_receivables_overdue_invoices",
            "Invoices open and past their due date",
            value=sum(aging.overdue_invoices for aging in by_currency.values()),
        )


class Metrics:
    def __init__(self, store: Callable[[], Store], today: Callable[[], date]) -> None:
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
        self.registry.register(Receivables(store, today))

    def render(self) -> bytes:
        return generate_latest(self.registry)
