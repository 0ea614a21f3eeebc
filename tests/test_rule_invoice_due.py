"""`invoice_due` through the engine, on hand-made stores of both engines."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from followupd.config.settings import Settings
from followupd.rules.invoice_due import InvoiceDue
from followupd.store.db import Store
from followupd.store.models import FollowUp
from followupd.store.updates import mark_invoice_paid
from tests.rulekit import (
    ACME_AND_GLOBEX,
    BSMITH,
    JDUPONT,
    RuleAlone,
    imported,
    loaded_with,
    mark_sent,
    mission_record,
    new_york,
    outbox,
    paris,
)
from tests.rulekit import settings as settings

DATA = f"""\
{ACME_AND_GLOBEX}
{JDUPONT}
{BSMITH}
[[missions]]
key = "acme-audit"
client = "acme"
title = "Audit du SI"
contact = "jdupont"
start = 2026-09-01

[[missions]]
key = "globex-plan"
client = "globex"
title = "Data plan"
contact = "bsmith"
start = 2026-09-01
currency = "USD"

[[invoices]]
number = "F-1"
mission = "acme-audit"
amount = 12000.00
issued = 2026-10-31
due = 2026-11-30

[[invoices]]
number = "F-2"
mission = "globex-plan"
amount = 5000
issued = 2026-10-31
due = 2026-11-30
"""


RULE = RuleAlone(InvoiceDue, paris(2026, 11, 1), paris(2027, 1, 1))
loaded = loaded_with(DATA)


def test_plan_lists_every_step_with_its_audience_channel_and_time(
    loaded: Store, settings: Settings
) -> None:
    intents = RULE.intents(loaded, settings)
    acme = {i.step: i for i in intents if i.subject_key == "F-1"}
    assert set(acme) == {"heads-up", "nudge-1", "nudge-2", "nudge-3"}
    heads_up = acme["heads-up"]
    assert (heads_up.audience, heads_up.channel, heads_up.recipient) == ("owner", "calendar", None)
    assert heads_up.due_at == paris(2026, 11, 27, 9, 0)  # Friday, due - 3 days
    assert heads_up.subject == "Prévenir Jeanne Dupont — facture F-1 à échéance le 30 novembre 2026"
    nudge = acme["nudge-1"]
    assert (nudge.audience, nudge.channel) == ("client", "email")
    assert nudge.recipient == "jeanne.dupont@acme.example"
    assert nudge.language == "fr"
    assert nudge.due_at == paris(2026, 12, 1, 9, 0)
    assert acme["nudge-2"].due_at == paris(2026, 12, 8, 9, 0)
    assert acme["nudge-3"].due_at == paris(2026, 12, 15, 9, 0)
    assert {i.thread_key for i in acme.values() if i.audience == "client"} == {"invoice:F-1"}
    assert nudge.key == "invoice_due:F-1:nudge-1"

    globex = {i.step: i for i in intents if i.subject_key == "F-2"}
    assert globex["nudge-1"].language == "en"
    assert globex["nudge-1"].subject == "Invoice F-2: due on November 30, 2026"
    assert globex["nudge-1"].due_at == new_york(2026, 12, 1, 9, 0)
    # the owner's heads-up about the US invoice is in the owner's zone and language
    assert globex["heads-up"].due_at == paris(2026, 11, 27, 9, 0)
    assert globex["heads-up"].language == "fr"
    with loaded.session() as session:
        assert session.scalars(select(FollowUp)).all() == [], "plan changes nothing"


def test_a_pass_records_due_ones_once_and_expires_the_too_old(
    loaded: Store, settings: Settings
) -> None:
    RULE.pass_at(loaded, settings, paris(2026, 11, 1, 9, 0))  # a pass before a long downtime
    at = paris(2026, 12, 15, 9, 0)
    first = RULE.pass_at(loaded, settings, at)
    acme = {row.step: row for row in first.recorded if row.subject_key == "F-1"}
    assert set(acme) == {"heads-up", "nudge-1", "nudge-2", "nudge-3"}
    assert acme["heads-up"].state == "expired"  # due 27/11, grace 7 days
    assert acme["nudge-1"].state == "expired"
    assert acme["nudge-2"].state == "pending"  # due 8/12, grace ends exactly now
    assert acme["nudge-2"].late
    assert acme["nudge-3"].state == "pending"
    assert not acme["nudge-3"].late
    second = RULE.pass_at(loaded, settings, at)
    assert second.recorded == []


def test_a_first_nudge_never_claims_earlier_messages(loaded: Store, settings: Settings) -> None:
    """A first start a week after the first nudge's due time: it was never sent."""
    RULE.pass_at(loaded, settings, paris(2026, 12, 15, 9, 0))
    rows = outbox(loaded)
    assert "invoice_due:F-1:nudge-1" not in rows, "past its grace on a first start"
    for step in ("nudge-2", "nudge-3"):
        body = rows[f"invoice_due:F-1:{step}"].body
        assert "Sauf erreur de ma part, la facture F-1" in body, step
        assert "Je reviens vers vous" not in body and "malgré" not in body, step
    english = rows["invoice_due:F-2:nudge-2"].body
    assert "Unless I am mistaken, invoice F-2" in english
    assert "following up" not in english and "despite" not in english


def test_later_nudges_refer_to_the_emails_actually_sent(loaded: Store, settings: Settings) -> None:
    RULE.pass_at(loaded, settings, paris(2026, 12, 1, 9, 0))
    mark_sent(loaded, "invoice_due:F-1:nudge-1", paris(2026, 12, 1, 9, 1))
    RULE.pass_at(loaded, settings, paris(2026, 12, 8, 9, 0))
    second = outbox(loaded)["invoice_due:F-1:nudge-2"].body
    assert "Je reviens vers vous au sujet de la facture F-1" in second
    RULE.pass_at(loaded, settings, paris(2026, 12, 15, 9, 0))  # the second never left
    assert "impayée malgré mon précédent message." in outbox(loaded)["invoice_due:F-1:nudge-3"].body


def test_paying_stops_the_nudges_and_cancels_pending_ones(
    loaded: Store, settings: Settings
) -> None:
    RULE.pass_at(loaded, settings, paris(2026, 12, 1, 9, 0))
    assert outbox(loaded)["invoice_due:F-1:nudge-1"].state == "pending"
    with loaded.session() as session:
        mark_invoice_paid(session, "F-1", paris(2026, 12, 2).date())
    report = RULE.pass_at(loaded, settings, paris(2026, 12, 20, 9, 0))
    assert report.cancelled["invoice_due:F-1:nudge-1"] == "invoice F-1 paid on 2026-12-02"
    rows = outbox(loaded)
    assert rows["invoice_due:F-1:nudge-1"].state == "cancelled"
    assert not any(key.startswith("invoice_due:F-1:nudge-2") for key in rows)


def test_a_dispute_turns_client_nudges_into_owner_calls(
    loaded: Store, settings: Settings, tmp_path: Path
) -> None:
    RULE.pass_at(loaded, settings, paris(2026, 12, 1, 9, 0))
    disputed = mission_record("acme-audit", "Audit du SI", "2026-09-01", 'status = "disputed"')
    imported(loaded, tmp_path, disputed, name="disputed.toml")
    report = RULE.pass_at(loaded, settings, paris(2026, 12, 8, 9, 0))
    rows = outbox(loaded)
    assert rows["invoice_due:F-1:nudge-1"].state == "cancelled"
    call = rows["invoice_due:F-1:nudge-1:call"]
    assert (call.audience, call.channel, call.recipient) == ("owner", "calendar", None)
    assert call.subject == "Appeler Jeanne Dupont — facture F-1 impayée"
    assert "invoice_due:F-1:nudge-2:call" in {row.key for row in report.recorded}
    assert "invoice_due:F-1:nudge-2" not in rows


def test_a_pause_delays_client_nudges_until_it_ends(
    loaded: Store, settings: Settings, tmp_path: Path
) -> None:
    paused = mission_record("acme-audit", "Audit du SI", "2026-09-01", "paused_until = 2026-12-10")
    imported(loaded, tmp_path, paused, name="paused.toml")
    intents = RULE.intents(loaded, settings)
    acme = {i.step: i.due_at for i in intents if i.subject_key == "F-1"}
    assert acme["heads-up"] == paris(2026, 11, 27, 9, 0)  # the owner is not paused
    assert acme["nudge-1"] == paris(2026, 12, 10, 9, 0)
    assert acme["nudge-2"] == paris(2026, 12, 10, 9, 0)
    assert acme["nudge-3"] == paris(2026, 12, 15, 9, 0)
