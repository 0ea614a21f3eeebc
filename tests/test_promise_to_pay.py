"""A client's promise to pay: the invoice's nudges wait, then resume where they were.

Through the engine and delivery, on both databases. Invoice F-1 is due on
Monday 30 November 2026; its ladder: nudge-1 on 1 December, nudge-2 on the
8th, nudge-3 on the 15th, the overdue call on the 30th. The client promises
on the 3rd to pay by Thursday 17 December: with 3 working days of grace the
pause ends on Tuesday 22 December, so nudge-2 and nudge-3, both due in the
pause, come on the 22nd and the 29th (two weeks later each), and the call
on 13 January.
"""

from __future__ import annotations

import asyncio
import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from followupd.config.settings import Settings
from followupd.delivery.deliverer import Deliverer, DeliveryReport
from followupd.domain.business_calendar import BusinessCalendar
from followupd.domain.payments import Payment
from followupd.domain.promise_note import promised_in
from followupd.domain.states import FollowUpState
from followupd.errors import FollowupdError, NotFound
from followupd.rules.escalate_by_phone import EscalateByPhone
from followupd.rules.formal_notice import FormalNoticeRule
from followupd.rules.invoice_due import InvoiceDue
from followupd.rules.promises import promise_pauses
from followupd.store.db import Store
from followupd.store.models import Invoice
from followupd.store.updates import mark_invoice_paid, promise_invoice
from tests.rulekit import (
    IN_ENGLISH,
    RuleAlone,
    imported,
    mark_sent,
    outbox,
    owner_settings,
    paris,
)
from tests.rulekit import settings as settings
from tests.test_rule_invoice_due import DATA

RULE = RuleAlone(InvoiceDue, paris(2026, 11, 1), paris(2027, 2, 1))
CALLS = RuleAlone(EscalateByPhone, paris(2026, 11, 1), paris(2027, 2, 1))
NOTICES = RuleAlone(FormalNoticeRule, paris(2026, 11, 1), paris(2027, 2, 28))
NUDGE_1, NUDGE_2, NUDGE_3 = (f"invoice_due:F-1:nudge-{n}" for n in (1, 2, 3))
BROKEN = "invoice_due:F-1:promise-broken-2026-12-17"
PROMISED = date(2026, 12, 17)


@pytest.fixture
def loaded(store: Store, tmp_path: Path) -> Store:
    """The invoices of tests/test_rule_invoice_due.py, F-1's first nudge sent on 1 December."""
    loaded = imported(store, tmp_path, DATA)
    with loaded.session() as session:  # only F-1 here: F-2 is Globex's, in New York
        mark_invoice_paid(session, "F-2", date(2026, 11, 20))
    RULE.pass_at(loaded, owner_settings(tmp_path), paris(2026, 12, 1, 9, 0))
    mark_sent(loaded, NUDGE_1, paris(2026, 12, 1, 9, 0))
    return loaded


def promise(store: Store, by: date | None, number: str = "F-1") -> date | None:
    with store.session() as session:
        _, previous = promise_invoice(session, number, by)
    return previous


def days(start: date, end: date) -> list[datetime]:
    """9:30 in Paris on each day from `start` to `end` included."""
    count = (end - start).days + 1
    return [paris(day.year, day.month, day.day, 9, 30) for day in
            (start + timedelta(days=n) for n in range(count))]  # fmt: skip


def daily_passes(store: Store, settings: Settings, start: date, end: date) -> dict[str, date]:
    """A pass every morning; each client email recorded is sent at once. Key -> day recorded."""
    recorded: dict[str, date] = {}
    for at in days(start, end):
        for key in RULE.run(store, settings, at)[0]:
            recorded[key] = at.date()
            if key.startswith("invoice_due:F-1:nudge"):
                mark_sent(store, key, at)
    return recorded


def test_the_nudges_wait_then_resume_one_step_at_a_time(loaded: Store, settings: Settings) -> None:
    promise(loaded, PROMISED)
    recorded = daily_passes(loaded, settings, date(2026, 12, 2), date(2027, 1, 10))
    assert recorded == {
        NUDGE_2: date(2026, 12, 22),
        BROKEN: date(2026, 12, 22),
        NUDGE_3: date(2026, 12, 29),
    }
    rows = outbox(loaded)
    assert rows[NUDGE_2].due_at == paris(2026, 12, 22, 9, 0)
    assert rows[NUDGE_3].due_at == paris(2026, 12, 29, 9, 0)
    assert not rows[NUDGE_2].late, "recorded when due, not caught up"
    resumed = rows[NUDGE_2].body
    assert (
        "Vous m'aviez indiqué que la facture F-1 de 12\u202f000,00\xa0€, échue depuis le "
        "30 novembre 2026, serait réglée au plus tard le 17 décembre 2026." in resumed
    )
    assert "Pourriez-vous me confirmer la date" in resumed
    assert "17 décembre 2026" in rows[NUDGE_3].body
    assert "sans plus attendre" in rows[NUDGE_3].body  # the last step is firmer
    # the owner's call when the pause ends, with the contact's number as a tel: link
    task = rows[BROKEN]
    assert (task.audience, task.channel, task.due_at) == (
        "owner",
        "calendar",
        paris(2026, 12, 22, 9),
    )
    assert task.subject == (
        "Appeler Jeanne Dupont (ACME SA) — règlement de la facture F-1 promis pour le "
        "17 décembre 2026, toujours impayée"
    )
    assert "Appeler Jeanne Dupont : tel:+33612345678." in task.body


def test_the_resumed_nudge_says_what_is_left_after_a_part_payment_in_the_pause(
    loaded: Store, settings: Settings
) -> None:
    """4 000 € paid on 10 December, within the pause: the nudge of the 22nd asks for the rest."""
    promise(loaded, PROMISED)
    with loaded.session() as session:
        invoice = session.scalars(select(Invoice).where(Invoice.number == "F-1")).one()
        invoice.payments = (Payment(date(2026, 12, 10), Decimal(4000)),)
    daily_passes(loaded, settings, date(2026, 12, 2), date(2026, 12, 22))
    resumed = outbox(loaded)[NUDGE_2].body
    assert (
        "serait réglée au plus tard le 17 décembre 2026. Sauf erreur de ma part, ce règlement "
        "ne m'est pas encore parvenu.\nAprès votre règlement partiel, il reste "
        "8\u202f000,00\xa0€ à régler.\n\nPourriez-vous me confirmer la date" in resumed
    ), "what is left, on the day the nudge goes, closing the promise's paragraph"


def test_after_a_downtime_only_the_next_step_goes_at_the_end_of_the_pause(
    loaded: Store, settings: Settings
) -> None:
    """Both steps fell in the pause: one pass after it finds one email to send, not two."""
    promise(loaded, PROMISED)
    recorded, _ = RULE.run(loaded, settings, paris(2026, 12, 23, 11, 0))
    assert sorted(recorded) == [NUDGE_2, BROKEN]
    assert outbox(loaded)[NUDGE_2].state == FollowUpState.PENDING
    plan = RULE.planned(loaded, settings, paris(2026, 12, 23), paris(2027, 1, 31))
    assert plan[NUDGE_3].due_at == paris(2026, 12, 29, 9, 0)


def test_a_promise_after_the_pause_ended_starts_from_the_steps_done(
    loaded: Store, settings: Settings
) -> None:
    promise(loaded, PROMISED)
    daily_passes(loaded, settings, date(2026, 12, 2), date(2026, 12, 22))
    # on the call, the client promises again, for 8 January: the first promise's task goes
    promise(loaded, date(2027, 1, 8))
    _, cancelled = RULE.run(loaded, settings, paris(2026, 12, 22, 15, 0))
    assert cancelled == {BROKEN: "invoice F-1: promised to pay by 2027-01-08 now"}
    later = daily_passes(loaded, settings, date(2026, 12, 23), date(2027, 1, 31))
    # 8 January + 3 working days: Tuesday 13; nudge-3 (due the 29th) moves to it
    assert later == {
        NUDGE_3: date(2027, 1, 13),
        "invoice_due:F-1:promise-broken-2027-01-08": date(2027, 1, 13),
    }
    assert "8 janvier 2027" in outbox(loaded)[NUDGE_3].body


def test_a_promise_kept_stops_everything(loaded: Store, settings: Settings) -> None:
    promise(loaded, PROMISED)
    daily_passes(loaded, settings, date(2026, 12, 2), date(2026, 12, 16))
    with loaded.session() as session:
        mark_invoice_paid(session, "F-1", date(2026, 12, 16))
    assert daily_passes(loaded, settings, date(2026, 12, 17), date(2027, 1, 31)) == {}
    assert CALLS.planned(loaded, settings) == {}


def test_a_promise_withdrawn_brings_the_ladder_back(loaded: Store, settings: Settings) -> None:
    promise(loaded, PROMISED)
    assert RULE.planned(loaded, settings, paris(2026, 12, 2))[NUDGE_2].due_at == paris(
        2026, 12, 22, 9
    )
    assert promise(loaded, None) == PROMISED
    plan = RULE.planned(loaded, settings, paris(2026, 12, 2))
    assert plan[NUDGE_2].due_at == paris(2026, 12, 8, 9)
    assert not any("promise-broken" in key for key in plan)


def test_a_promise_before_the_next_step_moves_nothing(loaded: Store, settings: Settings) -> None:
    """Promised for the 2nd: the pause ends on the 7th, before nudge-2 anyway."""
    promise(loaded, date(2026, 12, 2))
    plan = RULE.planned(loaded, settings, paris(2026, 12, 2))
    assert plan[NUDGE_2].due_at == paris(2026, 12, 8, 9)
    assert plan["invoice_due:F-1:promise-broken-2026-12-02"].due_at == paris(2026, 12, 7, 9)
    assert "2 décembre 2026" in plan[NUDGE_2].subject.text()  # type: ignore[union-attr]


def test_the_overdue_call_moves_with_the_ladder(loaded: Store, settings: Settings) -> None:
    call = "escalate_by_phone:F-1:overdue-call"
    assert CALLS.planned(loaded, settings)[call].due_at == paris(2026, 12, 30, 9)
    promise(loaded, PROMISED)
    assert CALLS.planned(loaded, settings)[call].due_at == paris(2027, 1, 13, 9)


def test_the_formal_notice_moves_with_the_ladder(loaded: Store, settings: Settings) -> None:
    """45 days past due, 15 after the call: the promise moves both by the same two weeks."""
    notice = "formal_notice:F-1"
    assert NOTICES.planned(loaded, settings)[notice].due_at == paris(2027, 1, 14, 9)
    promise(loaded, PROMISED)
    assert NOTICES.planned(loaded, settings)[notice].due_at == paris(2027, 1, 28, 9)


def test_no_formal_notice_before_a_promise_made_after_the_nudges_ends(
    loaded: Store, settings: Settings
) -> None:
    """Every nudge sent, the client promises to pay by 15 January, past the notice's day.

    The letter waits for the pause's end (3 working days later, the 20th), as the call does:
    the owner is not told to send a formal notice to a client who promised to pay.
    """
    for key, day in ((NUDGE_2, 8), (NUDGE_3, 15)):
        RULE.pass_at(loaded, settings, paris(2026, 12, day, 9, 0))
        mark_sent(loaded, key, paris(2026, 12, day, 9, 0))
    promise(loaded, date(2027, 1, 15))
    assert NOTICES.planned(loaded, settings)["formal_notice:F-1"].due_at == paris(2027, 1, 20, 9)
    call = "escalate_by_phone:F-1:overdue-call"
    assert CALLS.planned(loaded, settings)[call].due_at == paris(2027, 1, 20, 9)
    letter = NOTICES.planned(loaded, settings)["formal_notice:F-1"].letter
    assert letter is not None and letter.dated == date(2027, 1, 20), "dated the day it is due"


def test_the_grace_is_an_option_and_the_words_follow_the_language(
    loaded: Store, tmp_path: Path
) -> None:
    settings = owner_settings(
        tmp_path, IN_ENGLISH + "[rules.invoice_due]\npromise_grace_days = 0\n"
    )
    promise(loaded, PROMISED)
    plan = RULE.planned(loaded, settings, paris(2026, 12, 2))
    assert plan[NUDGE_2].due_at == paris(2026, 12, 17, 9)  # on the promised day itself
    task = plan[BROKEN]
    assert task.subject == (
        "Call Jeanne Dupont (ACME SA) — promised to pay invoice F-1 by December 17, 2026, "
        "still unpaid"
    )


def test_the_nudge_in_english_recalls_the_promise(store: Store, tmp_path: Path) -> None:
    loaded = imported(store, tmp_path, DATA)
    settings = owner_settings(tmp_path)
    with loaded.session() as session:
        mark_invoice_paid(session, "F-1", date(2026, 11, 20))
    promise(loaded, PROMISED, "F-2")
    texts = RULE.texts(loaded, settings, paris(2026, 12, 20), paris(2026, 12, 31))
    assert (
        "You told me that invoice F-2 for $5,000.00, due since November 30, 2026, would be "
        "paid by December 17, 2026." in texts["invoice_due:F-2:nudge-1"]
    )


def deliver(store: Store, settings: Settings, at: datetime) -> DeliveryReport:
    return asyncio.run(Deliverer(store, settings, "w1", rng=random.Random(1)).run(at))


def test_a_nudge_recorded_before_the_promise_is_held_at_delivery(
    loaded: Store, settings: Settings
) -> None:
    RULE.pass_at(loaded, settings, paris(2026, 12, 8, 9, 0))  # nudge-2 recorded, not sent yet
    promise(loaded, PROMISED)
    report = deliver(loaded, settings, paris(2026, 12, 8, 9, 5))
    why = "promised to pay by 2026-12-17: waits until 2026-12-22"
    assert report.held == {NUDGE_2: why}
    row = outbox(loaded)[NUDGE_2]
    assert (row.state, row.reason, row.next_attempt_at) == (
        FollowUpState.PENDING,
        why,
        paris(2026, 12, 22, 9, 0),
    )
    assert row.expires_at is not None and row.expires_at >= paris(2026, 12, 29, 9)
    # nudge-3 keeps its spacing after the held one, and the held one goes when the pause ends
    plan = RULE.planned(loaded, settings, paris(2026, 12, 9))
    assert plan[NUDGE_3].due_at == paris(2026, 12, 29, 9, 0)
    assert deliver(loaded, settings, paris(2026, 12, 21, 9, 5)).sent == []
    assert deliver(loaded, settings, paris(2026, 12, 22, 9, 5)).sent == [NUDGE_2]


def test_the_pause_is_read_from_the_store(loaded: Store, settings: Settings) -> None:
    promise(loaded, PROMISED)
    calendar = BusinessCalendar(settings.business)
    with loaded.session() as session:
        pauses = promise_pauses(session, settings, calendar)
    pause = pauses["F-1"]
    assert (pause.until, pause.first, pause.shift) == (
        date(2026, 12, 22),
        date(2026, 12, 8),
        timedelta(days=14),
    )
    assert pause.moved(date(2026, 12, 1)) == date(2026, 12, 1), "a step done stays put"


def test_the_store_refuses_a_promise_on_a_paid_or_unknown_invoice(loaded: Store) -> None:
    with pytest.raises(NotFound, match="no invoice numbered 'F-9'"):
        promise(loaded, PROMISED, "F-9")
    with pytest.raises(FollowupdError, match="invoice F-2 was paid on 2026-11-20"):
        promise(loaded, PROMISED, "F-2")
    with loaded.session() as session:
        assert session.scalar(select(Invoice.promised).where(Invoice.number == "F-2")) is None


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("promis 18/12", date(2026, 12, 18)),
        ("Promis le 18/12/2026, virement en cours", date(2026, 12, 18)),
        ("promised 2026-12-18", date(2026, 12, 18)),
        ("Client promised to pay by 2027-1-8.", date(2027, 1, 8)),
        ("promesse : 8.1", date(2027, 1, 8)),  # the nearest 8 January to 20 December
        ("promis pour le 18-12-26", date(2026, 12, 18)),
        ("PROMIS 2/1\nrappeler lundi", date(2027, 1, 2)),
        ("promis 18/12 puis promis 23/12", date(2026, 12, 23)),  # the last one wins
        ("promis 31/02", None),
        ("rappelé, pas de date", None),
        ("promis bientôt, le 18", None),
        ("18/12 promis", None),
        ("compromis 18/12", None),
    ],
)
def test_a_promise_written_in_a_task(text: str, found: date | None) -> None:
    assert promised_in(text, date(2026, 12, 20)) == found


def test_the_pause_follows_the_clients_profile(store: Store, tmp_path: Path) -> None:
    """Globex climbs a gentler ladder (nudges 7 and 21 days late): the pause moves those."""
    gentle = (
        "[rules.invoice_due.profiles.gentle]\nsteps = [\n"
        '  { name = "nudge-1", offset_days = 7, audience = "client" },\n'
        '  { name = "nudge-2", offset_days = 21, audience = "client" },\n]\n'
    )
    loaded = imported(
        store, tmp_path, DATA.replace('country = "US"\n', 'country = "US"\nprofile = "gentle"\n')
    )
    settings = owner_settings(tmp_path, gentle)
    promise(loaded, PROMISED, "F-2")
    calendar = BusinessCalendar(settings.business)
    with loaded.session() as session:
        pause = promise_pauses(session, settings, calendar)["F-2"]
    # nudge-1 (7 December) is the first step not done; the rule's own ladder would say the 1st
    assert (pause.until, pause.first, pause.shift) == (
        date(2026, 12, 22),
        date(2026, 12, 7),
        timedelta(days=15),
    )
    plan = RULE.planned(loaded, settings, paris(2026, 12, 2), paris(2027, 2, 1))
    nudges = {key: row.due_at.date() for key, row in plan.items() if ":F-2:nudge" in key}
    assert nudges == {
        "invoice_due:F-2:nudge-1": date(2026, 12, 22),
        "invoice_due:F-2:nudge-2": date(2027, 1, 5),  # its 14 days' spacing kept
    }
