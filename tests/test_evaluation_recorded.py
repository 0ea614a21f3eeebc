"""What a pass reports it recorded is what the outbox holds, though not read back from it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlalchemy import select

import tests.bench.evaluate as shaped
from followupd.config.load import parse_settings
from followupd.domain.states import CalendarState, FollowUpState
from followupd.engine.evaluation import evaluate
from followupd.rules.registry import enabled_rules
from followupd.store.db import Store
from followupd.store.models import FollowUp, LiveItem
from followupd.store.outbox import recording
from followupd.store.outbox.rows import FollowUpRow
from tests.test_outbox_rows import assert_carries, columns_of


def test_the_reported_rows_are_the_recorded_ones_a_dismissed_concern_included(
    store: Store,
) -> None:
    settings = parse_settings(shaped.CONFIG, Path("t.toml"), {"HOME": tempfile.gettempdir()})
    rules = enabled_rules(settings.rules)
    shaped.build(store, 400)
    with store.session() as session:  # what a first pass would record, then forgotten
        seen = evaluate(session, settings, rules, shaped.AT).recorded
        session.rollback()
    task = next(row for row in seen if row.channel == "calendar" and row.state == "pending")
    with store.session() as session:
        session.add(LiveItem(concern=task.concern, uid="u1", rule=task.rule, step=task.step,
                             followup_key="earlier", subject_key=task.subject_key,
                             language="fr", summary="", description="", due_at=task.due_at,
                             first_raised_at=task.due_at, state=CalendarState.CANCELLED,
                             by_user=True, reason="done by phone", created_at=shaped.AT,
                             updated_at=shaped.AT))  # fmt: skip
    with store.session() as session:
        report = evaluate(session, settings, rules, shaped.AT)
        reported = report.recorded
        states = {row.state for row in reported}
        assert {FollowUpState.PENDING, FollowUpState.DISMISSED} <= states
        assert len(reported) == len({row.key for row in reported}) > 40
        keys = [row.key for row in reported]
        assert_carries(reported, FollowUpRow)
        read = {row.key: row for row in recording.load(session, keys)}
        assert set(read) == set(keys) == set(session.scalars(select(FollowUp.key)))
        for row in reported:
            for name in columns_of(FollowUpRow):
                ours, theirs = getattr(row, name), getattr(read[row.key], name)
                assert (ours, type(ours)) == (theirs, type(theirs)), (row.key, name)
                assert getattr(ours, "tzinfo", None) == getattr(theirs, "tzinfo", None), name
        dismissed = [row for row in reported if row.state == FollowUpState.DISMISSED]
        assert [(row.concern, row.reason) for row in dismissed] == [(task.concern, "done by phone")]
