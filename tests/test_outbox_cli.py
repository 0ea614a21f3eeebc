"""`followupd outbox`: list, show, retry and cancel, as a user drives them."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import URL

from followupd.store import live_items
from followupd.store.db import Store
from followupd.store.models import FollowUp, LiveItem
from tests import rulekit
from tests.conftest import MINIMAL_CONFIG, RunCli


@pytest.fixture
def ticked(cli: RunCli, home: Path, database_url: URL) -> URL:
    """The demo, one pass on Saturday 28 November 2026 (client emails wait for Monday)."""
    config = home / "followupd.toml"
    config.write_text(MINIMAL_CONFIG, encoding="utf-8")
    assert cli("init", "--demo", "--today", "2026-11-22").code == 0
    assert cli("tick", "--now", "2026-11-28T10:00").code == 0
    return database_url


def set_state(database: URL, key: str, **values: object) -> None:
    store = Store.open(database)
    with store.session() as session:
        session.execute(update(FollowUp).where(FollowUp.key == key).values(**values))
    store.close()


def test_list_and_show(cli: RunCli, ticked: URL) -> None:
    listing = cli("outbox", "list")
    assert listing.code == 0, listing
    assert cli("outbox").out == listing.out, "alone, `outbox` lists"
    assert "invoice_due" in listing.out
    assert "pending" in listing.out
    assert "│ sent " in listing.out
    pending = cli("outbox", "list", "--state", "pending")
    rows = [line for line in pending.out.splitlines() if "invoice_due" in line]
    assert rows
    assert all("│ pending " in line for line in rows)
    none = cli("outbox", "list", "--state", "dead")
    assert none.out.strip() == "no follow-up matches", "the outbox is not empty: the filter is"
    shown = cli("outbox", "show", "invoice_due:F-2026-041:nudge-1")
    assert shown.code == 0, shown
    assert "rachel.kim@harborline.example" in shown.out
    assert "outside the send window" in shown.out
    assert "Dear Rachel Kim" in shown.out
    missing = cli("outbox", "show", "nope")
    assert missing.code == 1
    assert "no follow-up numbered or keyed 'nope'" in missing.err


def test_cancel_then_retry_rules(cli: RunCli, ticked: URL) -> None:
    key = "invoice_due:F-2026-041:nudge-1"
    cancelled = cli("outbox", "cancel", key)
    assert cancelled.code == 0, cancelled
    assert "cancelled" in cancelled.out
    again = cli("outbox", "cancel", key)
    assert again.code == 1
    assert "only pending ones are cancelled" in again.err
    refused = cli("outbox", "retry", key)
    assert refused.code == 1
    assert "only failed or dead ones are retried" in refused.err

    set_state(ticked, key, state="dead", attempts=8, last_error="SMTP 451 try again later")
    retried = cli("outbox", "retry", key)
    assert retried.code == 0, retried
    shown = cli("outbox", "show", key).out
    assert "pending: retried by hand" in shown
    assert "SMTP 451 try again later" in shown


INFORM = "client_not_informed:crm-export-incomplet:2026-11-26:calendar"
NEXT_INFORM = "client_not_informed:crm-export-incomplet:2026-11-30:calendar"
FRIDAY_INFORM = "client_not_informed:crm-export-incomplet:2026-12-04:calendar"
STATUS = "status_update_due:lumen-refonte-crm:2026-11-27"


def in_the_app(database: URL, key: str, did: Callable[[LiveItem, datetime], None]) -> None:
    """What sync records when the user acted on the calendar item of `key` in their app."""
    store = Store.open(database)
    with store.session() as session:
        concern = session.scalars(select(FollowUp.concern).where(FollowUp.key == key)).one()
        found = live_items.of_concerns(session, [concern])[concern]
        did(found, datetime(2026, 11, 29, 18, 0, tzinfo=UTC))
    store.close()


def as_json(text: str) -> dict[str, Any]:
    document = json.loads(text)
    assert isinstance(document, dict)
    return document


def why_of(listing: str, number: int) -> str:
    """The last column of follow-up `number` in `outbox list`, its wrapped lines joined."""
    lines = listing.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(f"{number} "))
    cells = [lines[first].split("│")[-1].strip()]
    for line in lines[first + 1 :]:
        if not line.startswith(" "):
            break
        cells.append(line.split("│")[-1].strip())
    return " ".join(cell for cell in cells if cell)


def test_a_snooze_in_the_calendar_holds_the_next_period(cli: RunCli, ticked: URL) -> None:
    until = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    in_the_app(ticked, INFORM, lambda item, at: live_items.snoozed_by_user(item, until, at))
    store = Store.open(ticked)
    try:
        number = rulekit.outbox(store)[INFORM].id
    finally:
        store.close()
    assert why_of(cli("outbox", "list").out, number) == (
        "snoozed until 2026-12-03 09:00 in your calendar"
    )
    assert "snoozed until 2026-12-03 09:00 in your calendar" in cli("outbox", "show", INFORM).out
    tick = as_json(cli("tick", "--now", "2026-11-30T10:00", "--json").out)
    held = {item["key"]: item for item in tick["followups"]}[NEXT_INFORM]
    assert (held["action"], held["state"]) == ("recorded", "pending")
    assert held["reason"] == "snoozed until 2026-12-03 09:00 in your calendar"
    assert cli("tick", "--now", "2026-12-03T09:30").code == 0
    store = Store.open(ticked)
    try:
        rows = rulekit.outbox(store)
        later = sorted((row.due_at, row.key, row.state) for row in rows.values()
                       if row.concern == rows[INFORM].concern and row.channel == "calendar"
                       and row.due_at > rows[INFORM].due_at)  # fmt: skip
        raised = rulekit.item(store, INFORM)
    finally:
        store.close()
    # at the user's date the newest period goes, once; the one held meanwhile is not repeated
    assert [state for _, _, state in later] == ["superseded", "sent"]
    assert raised.followup_key == later[-1][1]
    assert raised.times_raised == 2
    assert raised.repeat_offset == 1  # the 2 December reminder went on the 3rd
    # the repeat starts over from the user's date: not the next day, a working day later
    friday = as_json(cli("tick", "--now", "2026-12-04T10:00", "--json").out)
    waiting = {item["key"]: item for item in friday["followups"]}[FRIDAY_INFORM]
    assert (waiting["action"], waiting["state"]) == ("recorded", "pending")
    assert waiting["reason"] == (
        "put off in your calendar: repeats 1 working day later, on 2026-12-07"
    )
    monday = as_json(cli("tick", "--now", "2026-12-07T09:30", "--json").out)
    assert {item["key"]: item["action"] for item in monday["followups"]}[FRIDAY_INFORM] == "sent"


def test_a_deleted_task_dismisses_its_concern(cli: RunCli, ticked: URL) -> None:
    in_the_app(ticked, INFORM, lambda item, at: live_items.dismissed_by_user(
        item, "deleted in your calendar", at))  # fmt: skip
    assert "dismissed: deleted in your" in cli("outbox", "list").out
    tick = json.loads(cli("tick", "--now", "2026-11-30T10:00", "--json").out)
    dismissed = {item["key"]: item for item in tick["followups"]}[NEXT_INFORM]
    assert (dismissed["action"], dismissed["state"]) == ("cancelled", "dismissed")
    assert dismissed["reason"] == "deleted in your calendar"
    listed = [line for line in cli("outbox", "list", "--state", "dismissed").out.splitlines()
              if "client_not_informed" in line]  # fmt: skip
    assert listed
    assert all("deleted in your calendar" in line for line in listed)


def test_a_completed_task_says_when(cli: RunCli, ticked: URL) -> None:
    done = datetime(2026, 11, 28, 16, 45, tzinfo=UTC)
    in_the_app(ticked, STATUS, lambda item, at: live_items.completed_by_user(item, done, at))
    store = Store.open(ticked)
    try:
        number = rulekit.outbox(store)[STATUS].id
    finally:
        store.close()
    said = "completed in your calendar on 2026-11-28 17:45"
    assert why_of(cli("outbox", "list").out, number) == said
    assert said in cli("outbox", "show", STATUS).out
