"""A pass that skips what is recorded already records what a pass reading everything does.

The engine gives each rule the keys of its follow-ups already in the outbox
(`Evaluation.recorded`); a rule may then leave out what they stand for and not
read it whole. These tests run the same passes, at instants days apart with
the store changing in between (meetings and status updates recorded, issues
opened and resolved, missions paused, put on hold or given a new cadence,
emails sent, invoices paid, formal notices and calls dismissed),
once as the engine runs them and once with `recorded` withheld from the rules
(so that they read everything, and the cancellation check asks about every
pending row), and compare every row of the outbox after each pass. The store is the
benchmark's (tests/bench/evaluate.py, a few hundred missions, every rule with
work). Real SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.orm import Session

import followupd.engine.evaluation as engine
from followupd.config.load import parse_settings
from followupd.domain.states import Channel, FollowUpState, MissionStatus, TouchpointKind
from followupd.engine.evaluation import evaluate
from followupd.rules.base import Evaluation
from followupd.rules.registry import enabled_rules
from followupd.store.db import Store
from followupd.store.models import FollowUp, Invoice, Issue, Mission, Touchpoint
from tests.bench.evaluate import AT, CONFIG, build

MISSIONS = 300
DAY = timedelta(days=1)


def stagger_invoices(session: Session, at: datetime) -> None:
    """Unpaid invoices on one mission in seven: their formal notices and calls come due pass
    after pass, each citing (listing) the others or cited by them.

    Four a week apart (S…); on other missions, two days apart, a pair whose first call (A…,
    due at the fifth pass, its key of odd length: dismissed before the seventh) lists the
    second (B…, due between them): a call dismissed lists it still in a pass that finds
    both due.
    """
    missions = session.scalars(
        select(Mission.id).where(Mission.status != MissionStatus.DISPUTED).order_by(Mission.id)
    ).all()
    invoices = [(f"S{mission}-{days // 7}", mission, days)
                for mission in missions[::7] for days in (28, 35, 42, 49)]  # fmt: skip
    invoices += [(f"{letter}{mission:05d}", mission, days) for mission in missions[3::7]
                 for letter, days in (("A", 27), ("B", 25))]  # fmt: skip
    last = session.scalar(select(func.max(Invoice.id))) or 0
    rows = [
        {
            "id": last + 1 + n,  # as in both runs: PostgreSQL's sequence runs on from a rollback
            "mission_id": mission,
            "number": number,
            "amount": Decimal("900.00"),
            "issued": (at - timedelta(days=days + 30)).date(),
            "due": (at - timedelta(days=days)).date(),
        }
        for n, (number, mission, days) in enumerate(invoices)
    ]
    session.execute(insert(Invoice), rows)


def record_meetings(session: Session, at: datetime) -> None:
    """A meeting for one active mission in five, a status update for one in seven."""
    active = session.scalars(
        select(Mission.id).where(Mission.status == MissionStatus.ACTIVE).order_by(Mission.id)
    ).all()
    rows = [
        {"mission_id": mission, "kind": kind, "at": at, "key": f"m{mission}|{kind}|{at}"}
        for kind, every in ((TouchpointKind.MEETING, 5), (TouchpointKind.STATUS_UPDATE, 7))
        for mission in active[::every]
    ]
    session.execute(insert(Touchpoint), rows)


def shake_missions(session: Session, at: datetime) -> None:
    """Issues opened and resolved, missions on hold, paused, or with a new cadence."""
    ids = session.scalars(select(Mission.id).order_by(Mission.id)).all()
    opened = at - 3 * DAY
    issues = [
        {"mission_id": mission, "key": f"late{mission}", "opened": opened, "summary": "Retard"}
        for mission in ids[::3]
    ]
    session.execute(insert(Issue), [{**issue, "severity": "high"} for issue in issues])
    session.execute(update(Issue).where(Issue.id % 4 == 0).values(resolved=at - DAY))
    session.execute(
        update(Mission).where(Mission.id % 11 == 0).values(status=MissionStatus.ON_HOLD)
    )
    session.execute(
        update(Mission).where(Mission.id % 13 == 0).values(paused_until=(at + 4 * DAY).date())
    )
    session.execute(update(Mission).where(Mission.id % 9 == 0).values(status_update_every_days=10))


def send_emails(session: Session, at: datetime) -> None:
    """About half the pending emails sent (the others wait), and some invoices paid since."""
    session.execute(
        update(FollowUp)
        .where(
            FollowUp.state == FollowUpState.PENDING,
            FollowUp.channel == Channel.EMAIL,
            func.length(FollowUp.key) % 2 == 0,  # not by id: PostgreSQL's run on from a rollback
        )
        .values(state=FollowUpState.SENT, sent_at=at - DAY)
    )
    session.execute(
        update(Invoice).where(Invoice.paid.is_(None), Invoice.id % 5 == 0).values(paid=at.date())
    )


def dismiss_letters_and_calls(session: Session, at: datetime) -> None:
    """One formal notice and one overdue call in two dismissed in the calendar: no longer
    standing for the client's (the contact's) other invoices, which then get their own."""
    session.execute(
        update(FollowUp)
        .where(
            FollowUp.state == FollowUpState.PENDING,
            FollowUp.rule.in_(("formal_notice", "escalate_by_phone")),
            func.length(FollowUp.key) % 2 == 1,
        )
        .values(state=FollowUpState.DISMISSED, reason="deleted in the calendar", updated_at=at)
    )


# (instant of a pass, what changes in the store before it)
PASSES: list[tuple[datetime, Callable[[Session, datetime], None] | None]] = [
    (AT - 3 * DAY, stagger_invoices),
    (AT - 3 * DAY, None),  # the same instant again: nothing new
    (AT - 3 * DAY + timedelta(minutes=5), None),
    (AT - DAY, record_meetings),
    (AT, None),
    (AT + timedelta(hours=1), shake_missions),
    (AT + 4 * DAY, dismiss_letters_and_calls),
    (AT + 5 * DAY, send_emails),  # nudges recorded a pass ago go, their heads-ups still due
    (AT + 9 * DAY, record_meetings),
    (AT + 23 * DAY, None),
]


def outbox_of(session: Session) -> list[Row[Any]]:
    """Every column of every row but its id, and the attachment's length, by key."""
    table = FollowUp.__table__
    columns = [column for column in table.c if column.name not in ("id", "attachment")]
    query = select(*columns, func.length(table.c.attachment)).order_by(table.c.key)
    return list(session.execute(query))


def outboxes(store: Store, tmp_path: Path) -> list[list[Row[Any]]]:
    """The outbox after each of `PASSES`, run in one transaction rolled back at the end."""
    # a long grace: an invoice's heads-up is still due when the client's nudge has gone
    config = CONFIG + "[rules.invoice_due]\ngrace_days = 14\n"
    settings = parse_settings(config, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})
    rules = enabled_rules(settings.rules)
    session = store.sessions()
    found = []
    try:
        for at, change in PASSES:
            if change is not None:
                change(session, at)
            evaluate(session, settings, rules, at)
            found.append(outbox_of(session))
    finally:
        session.rollback()
        session.close()
    return found


def test_passes_that_skip_what_is_recorded_record_what_full_passes_do(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(store, MISSIONS, seed=11)
    skipping = outboxes(store, tmp_path)
    with monkeypatch.context() as patched:
        patched.setattr(
            engine,
            "Evaluation",
            lambda *args, **kwargs: Evaluation(*args, **{**kwargs, "recorded": None}),
        )
        reading_all = outboxes(store, tmp_path)
    assert len(skipping) == len(PASSES)
    for number, (skipped, full) in enumerate(zip(skipping, reading_all, strict=True)):
        assert skipped == full, f"after pass {number} at {PASSES[number][0]}"
    # the passes had work: the rules that skip recorded periods after the first pass, and
    # their reminders cancelled by the meetings and the changes
    first, last = {row.key for row in skipping[0]}, {row.key for row in skipping[-1]}
    assert len(last) > 2 * len(first) > 60
    rules = {row.rule for row in skipping[-1] if row.key not in first}
    assert {"checkpoint_meeting", "status_update_due", "mission_closeout", "invoice_due",
            "open_ended_mission", "contract_missing", "formal_notice",
            "escalate_by_phone"} <= rules  # fmt: skip
    cancelled = {row.rule for row in skipping[-1] if row.state == FollowUpState.CANCELLED}
    assert {"checkpoint_meeting", "status_update_due"} <= cancelled
