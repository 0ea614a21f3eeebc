"""Delivery through a real SMTP server (aiosmtpd on loopback), on both databases."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from followupd.channels.email.message import message_id
from followupd.config.load import parse_settings
from followupd.config.settings import Settings
from followupd.delivery import deliverer as deliverer_module
from followupd.delivery.deliverer import (
    BATCH,
    SUB_BATCH,
    Deliverer,
    DeliveryReport,
    RetryPolicy,
    claim,
)
from followupd.engine.evaluation import evaluate
from followupd.rules.registry import enabled_rules
from followupd.sources.files.importer import import_files
from followupd.store.db import Store
from followupd.store.models import FollowUp
from followupd.store.outbox.sent_record import SentRecord
from followupd.store.updates import mark_invoice_paid
from tests.conftest import MINIMAL_CONFIG, ONE_EMAIL_PER_INVOICE, sample_followup
from tests.rulekit import ACME
from tests.smtpserver import CountingController, Recorder, free_port, smtp_server

PARIS = ZoneInfo("Europe/Paris")
DATA = (
    ACME
    + """\
[[invoices]]
number = "F-1"
mission = "acme-audit"
amount = 12000.00
issued = 2026-10-31
due = 2026-11-30
[[invoices]]
number = "F-2"
mission = "acme-audit"
amount = 500
issued = 2026-10-31
due = 2026-11-30
"""
)


def paris(day: int, month: int = 12, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=PARIS)


@pytest.fixture
def server() -> Iterator[tuple[Recorder, int]]:
    with smtp_server() as running:
        yield running


def settings_for(tmp_path: Path, port: int | None) -> Settings:
    """The settings of these tests: one email per invoice (tests/test_client_nudges.py groups)."""
    smtp = f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\ntimeout_seconds = 5\n'
    text = MINIMAL_CONFIG + (smtp if port else "") + ONE_EMAIL_PER_INVOICE
    return parse_settings(text, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})


def side_by_side(tmp_path: Path, port: int, connections: int) -> Settings:
    """Settings sending over `connections` connections to the server at `port`, no rate limit."""
    text = (
        MINIMAL_CONFIG
        + f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        + f"connections = {connections}\nrate_per_minute = 1000000\n"
    )
    return parse_settings(text, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})


@pytest.fixture
def loaded(store: Store, tmp_path: Path) -> Store:
    path = tmp_path / "data.toml"
    path.write_text(DATA, encoding="utf-8")
    import_files(store, [path], PARIS)
    return store


def record(store: Store, settings: Settings, at: datetime) -> None:
    rules = [r for r in enabled_rules(settings.rules) if r.name == "invoice_due"]
    with store.session() as session:
        evaluate(session, settings, rules, at)


def deliver(store: Store, settings: Settings, at: datetime, worker: str = "w1") -> DeliveryReport:
    deliverer = Deliverer(store, settings, worker, rng=random.Random(1))
    return asyncio.run(deliverer.run(at))


def states(store: Store) -> dict[str, FollowUp]:
    with store.session() as session:
        return {row.key: row for row in session.scalars(select(FollowUp))}


@pytest.mark.slow
def test_emails_arrive_with_headers_and_thread(
    loaded: Store, tmp_path: Path, server: tuple[Recorder, int]
) -> None:
    recorder, port = server
    settings = settings_for(tmp_path, port)
    record(loaded, settings, paris(1))
    report = deliver(loaded, settings, paris(1))
    assert sorted(report.sent) == [
        "invoice_due:F-1:heads-up", "invoice_due:F-1:nudge-1",
        "invoice_due:F-2:heads-up", "invoice_due:F-2:nudge-1",
    ]  # fmt: skip
    assert len(recorder.messages) == 2, "heads-ups are calendar items, in the feed"
    first = next(m for m in recorder.messages if "F-1" in str(m["Subject"]))
    assert first["From"] == "Claire Martin <claire@cabinet.example>"
    assert first["To"] == "jeanne.dupont@acme.example"
    assert first["Reply-To"] == "claire@cabinet.example"
    assert first["Subject"] == "Facture F-1 : échéance du 30 novembre 2026"
    assert first["In-Reply-To"] is None
    body = first.get_body(("plain",))
    assert body is not None and "Sauf erreur de ma part" in body.get_content()
    row = states(loaded)["invoice_due:F-1:nudge-1"]
    assert (row.state, row.message_id) == ("sent", first["Message-ID"])

    record(loaded, settings, paris(8))
    deliver(loaded, settings, paris(8))
    second = next(m for m in recorder.messages[2:] if "F-1" in str(m["Subject"]))
    assert second["In-Reply-To"] == first["Message-ID"]
    assert second["References"] == first["Message-ID"]
    body = second.get_body(("plain",))
    assert body is not None and "Je reviens vers vous" in body.get_content()


@pytest.mark.slow
def test_451_is_retried_after_backoff_and_arrives_once(
    loaded: Store, tmp_path: Path, server: tuple[Recorder, int]
) -> None:
    recorder, port = server
    settings = settings_for(tmp_path, port)
    record(loaded, settings, paris(1))
    recorder.refuse(451, times=2)
    report = deliver(loaded, settings, paris(1))
    assert set(report.retrying) == {"invoice_due:F-1:nudge-1", "invoice_due:F-2:nudge-1"}
    assert all(reason.startswith("SMTP 451") for reason in report.retrying.values())
    assert recorder.messages == []
    row = states(loaded)["invoice_due:F-1:nudge-1"]
    assert row.state == "pending"
    assert row.next_attempt_at is not None and row.next_attempt_at > paris(1)
    assert deliver(loaded, settings, paris(1, minute=0) + timedelta(seconds=10)).sent == []
    later = deliver(loaded, settings, paris(1, hour=10))
    assert sorted(later.sent) == ["invoice_due:F-1:nudge-1", "invoice_due:F-2:nudge-1"]
    assert len(recorder.messages) == 2
    assert len({m["Message-ID"] for m in recorder.messages}) == 2


@pytest.mark.slow
def test_550_fails_that_message_and_blocks_nothing_else(
    loaded: Store, tmp_path: Path, server: tuple[Recorder, int]
) -> None:
    recorder, port = server
    settings = settings_for(tmp_path, port)
    record(loaded, settings, paris(1))
    recorder.refuse(550)
    report = deliver(loaded, settings, paris(1))
    assert len(report.failed) == 1
    (failed_key, reason) = next(iter(report.failed.items()))
    assert reason.startswith("SMTP 550")
    assert states(loaded)[failed_key].state == "failed"
    assert len(recorder.messages) == 1
    assert len([k for k in report.sent if "nudge" in k]) == 1


@pytest.mark.slow
def test_a_server_down_loses_nothing(loaded: Store, tmp_path: Path) -> None:
    port = free_port()
    settings = settings_for(tmp_path, port)
    record(loaded, settings, paris(1))
    report = deliver(loaded, settings, paris(1))
    assert set(report.retrying) == {"invoice_due:F-1:nudge-1", "invoice_due:F-2:nudge-1"}
    row = states(loaded)["invoice_due:F-1:nudge-1"]
    assert row.state == "pending"
    assert row.last_error is not None
    with smtp_server(port) as (recorder, _):
        later = deliver(loaded, settings, paris(1, hour=12))
    assert sorted(later.sent) == ["invoice_due:F-1:nudge-1", "invoice_due:F-2:nudge-1"]
    assert len(recorder.messages) == 2


def test_without_smtp_mail_goes_to_a_maildir(loaded: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, None)
    record(loaded, settings, paris(1))
    report = deliver(loaded, settings, paris(1))
    assert "invoice_due:F-1:nudge-1" in report.sent
    written = list((settings.state_dir / "Maildir" / "new").iterdir())
    assert len(written) == 2
    assert any(b"Facture F-1" in path.read_bytes() for path in written)


def test_client_emails_wait_for_the_send_window(
    loaded: Store, tmp_path: Path, server: tuple[Recorder, int]
) -> None:
    recorder, port = server
    settings = settings_for(tmp_path, port)
    record(loaded, settings, paris(1))
    report = deliver(loaded, settings, paris(1, hour=20))  # 20:00 in Paris
    assert report.held["invoice_due:F-1:nudge-1"] == "outside the send window"
    assert "invoice_due:F-1:heads-up" in report.sent  # the owner's calendar item does not wait
    assert recorder.messages == []
    assert states(loaded)["invoice_due:F-1:nudge-1"].attempts == 0
    morning = deliver(loaded, settings, paris(2, hour=9))
    assert "invoice_due:F-1:nudge-1" in morning.sent


def test_a_paid_invoice_is_cancelled_at_delivery_and_grace_is_enforced(
    loaded: Store, tmp_path: Path, server: tuple[Recorder, int]
) -> None:
    recorder, port = server
    settings = settings_for(tmp_path, port)
    record(loaded, settings, paris(1))
    with loaded.session() as session:
        mark_invoice_paid(session, "F-1", paris(1).date())
    report = deliver(loaded, settings, paris(1))
    assert report.cancelled["invoice_due:F-1:nudge-1"] == "invoice F-1 paid on 2026-12-01"
    assert [str(m["Subject"]) for m in recorder.messages] == [
        "Facture F-2 : échéance du 30 novembre 2026"
    ]
    record(loaded, settings, paris(8))  # F-2 nudge-2, then nobody delivers for weeks
    late = deliver(loaded, settings, paris(28))
    assert "invoice_due:F-2:nudge-2" in late.expired
    expired = states(loaded)["invoice_due:F-2:nudge-2"]
    assert expired.attempts == 0, "never tried: claimed only to be found past its grace"
    assert expired.reason is not None
    assert expired.reason.startswith("missed: its grace ended 2026-12-")
    assert not expired.reason.endswith("UTC")


def test_an_expired_lease_is_taken_over(
    loaded: Store, tmp_path: Path, server: tuple[Recorder, int]
) -> None:
    recorder, port = server
    settings = settings_for(tmp_path, port)
    record(loaded, settings, paris(1))
    with loaded.session() as session:
        taken = claim(session, paris(1), "crashed-worker", ("email", "calendar"))
    assert len(taken) == 4
    assert deliver(loaded, settings, paris(1, minute=2), worker="w2").sent == []
    report = deliver(loaded, settings, paris(1, minute=10), worker="w2")
    assert [key for key in sorted(report.sent) if "nudge" in key] == [
        "invoice_due:F-1:nudge-1", "invoice_due:F-2:nudge-1"
    ]  # fmt: skip
    assert states(loaded)["invoice_due:F-1:nudge-1"].attempts == 2
    assert len(recorder.messages) == 2


class LeaseWatcher(Recorder):
    """Notes, as each message arrives, when the leases of the rows then sending end."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.leases: list[datetime] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.store.session() as reading:
            query = select(FollowUp.lease_expires_at).where(
                FollowUp.state == "sending", FollowUp.channel == "email"
            )
            self.leases += [end for end in reading.scalars(query) if end is not None]
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.slow
def test_a_pass_longer_than_a_lease_renews_the_leases_of_what_it_is_sending(
    loaded: Store, tmp_path: Path
) -> None:
    """A pass's instant is fixed, but the leases it renews run from the time it has taken:
    another instance never finds them expired and sends the same messages again."""
    watcher = LeaseWatcher(loaded)
    with smtp_server(handler=watcher) as (_, port):
        settings = settings_for(tmp_path, port)
        record(loaded, settings, paris(1))
        elapsed = iter([0.0, 0.0] + [600.0] * 10)  # built, started, then 10 minutes in
        deliverer = Deliverer(loaded, settings, "w1", rng=random.Random(1),
                              monotonic=lambda: next(elapsed))  # fmt: skip
        report = asyncio.run(deliverer.run(paris(1)))
    assert len(report.sent) == 4 and len(watcher.messages) == 2
    pacing = timedelta(minutes=2 / settings.smtp.rate_per_minute if settings.smtp else 0)
    renewed = paris(1) + timedelta(minutes=10) + deliverer_module.LEASE + pacing
    assert watcher.leases and set(watcher.leases) == {renewed}, watcher.leases


def test_backoff_grows_and_is_bounded() -> None:
    policy = RetryPolicy(base=timedelta(minutes=1), cap=timedelta(hours=1))
    rng = random.Random(3)
    delays = [policy.delay(attempt, rng) for attempt in range(1, 10)]
    assert timedelta(seconds=30) <= delays[0] <= timedelta(minutes=1)
    assert timedelta(minutes=4) <= delays[3] <= timedelta(minutes=8)
    assert all(delay <= timedelta(hours=1) for delay in delays)


class Gathering(Recorder):
    """Holds the first message until `wanted` sessions are open (10 s at most): on a
    loaded machine, two connections could otherwise send everything before a third opens."""

    def __init__(self, wanted: int) -> None:
        super().__init__()
        self.wanted, self.gathered = wanted, False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        deadline = asyncio.get_running_loop().time() + 10
        while not self.gathered and asyncio.get_running_loop().time() < deadline:
            self.gathered = self.sessions >= self.wanted
            await asyncio.sleep(0.01)
        self.gathered = True
        return await super().handle_DATA(server, session, envelope)


def test_several_connections_deliver_each_email_once_side_by_side(
    loaded: Store, tmp_path: Path
) -> None:
    store = loaded  # with F-1 unpaid, which the rows are about
    keys = [f"k{n:03d}" for n in range(4 * SUB_BATCH + 5)]
    with store.session() as session:
        for key in keys:
            session.add(sample_followup(key, paris(1) - timedelta(minutes=1)))
    recorder, port = Gathering(3), free_port()
    controller = CountingController(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = side_by_side(tmp_path, port, 3)
        report = deliver(store, settings, paris(1))
    finally:
        controller.stop()
    assert sorted(report.sent) == keys
    arrived = sorted(str(message["Message-ID"]) for message in recorder.messages)
    assert arrived == sorted(message_id(key, "cabinet.example") for key in keys)
    assert recorder.most_sessions == 3, "three connections side by side"
    recorded = states(store)
    assert all(recorded[key].message_id == message_id(key, "cabinet.example") for key in keys)
    assert {recorded[key].state for key in keys} == {"sent"}


def test_a_pass_keeps_its_connections_from_one_claimed_batch_to_the_next(
    loaded: Store, tmp_path: Path
) -> None:
    store = loaded
    keys = [f"k{n:03d}" for n in range(BATCH + 5)]  # two batches
    with store.session() as session:
        for key in keys:
            session.add(sample_followup(key, paris(1) - timedelta(minutes=1)))
    recorder, port = Recorder(), free_port()
    controller = CountingController(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = side_by_side(tmp_path, port, 2)
        before = recorder.opened  # the controller's own check that the server is up
        report = deliver(store, settings, paris(1))
    finally:
        controller.stop()
    assert sorted(report.sent) == keys
    assert len(recorder.messages) == len(keys)
    assert recorder.opened - before == 2, "the second batch went over the first one's connections"


def test_a_pass_stopped_as_its_record_connection_opens_leaves_no_connection_out(
    loaded: Store, tmp_path: Path, server: tuple[Recorder, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stop comes while the connection that records messages sent is being opened, in
    its thread: the pass ends, and the connection goes back to the pool once open."""
    recorder, port = server
    settings = settings_for(tmp_path, port)
    record(loaded, settings, paris(1))
    opening, stopped = threading.Event(), threading.Event()
    opened: list[SentRecord] = []  # held here: no garbage collector hands it back for the pass

    class StoppedAsItOpens(SentRecord):
        def __init__(self, engine: Any) -> None:
            opening.set()
            stopped.wait(timeout=10)
            super().__init__(engine)
            opened.append(self)

    monkeypatch.setattr(deliverer_module, "SentRecord", StoppedAsItOpens)

    async def scenario() -> None:
        deliverer = Deliverer(loaded, settings, "w1", rng=random.Random(1))
        delivering = asyncio.create_task(deliverer.run(paris(1)))
        assert await asyncio.to_thread(opening.wait, 10)
        delivering.cancel()
        stopped.set()
        with pytest.raises(asyncio.CancelledError):
            await delivering

    asyncio.run(scenario())  # its end waits for the thread that opened the connection
    assert recorder.messages == [] and len(opened) == 1
    assert loaded.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
