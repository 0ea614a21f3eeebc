"""`client_replied` and `email_bounced`: the owner's tasks after a client's reply or a bounce.

Through the engine and delivery, on both databases, with replies recorded
as the mailbox sync records them (see tests/test_mail_meaning.py).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from followupd.domain.states import Audience, FollowUpState, MailKind
from followupd.store.db import Store
from followupd.store.mailbox import NewMessage
from tests.rulekit import (
    ACME,
    BOB,
    CLAIRE,
    IN_ENGLISH,
    imported,
    mission_record,
    outbox,
    owner_settings,
    paris,
)
from tests.test_config import _settings as parsed
from tests.test_mail_meaning import (
    DATA,
    JEANNE,
    MAILBOX,
    NUDGE_1,
    NUDGE_2,
    OWNER,
    a_pass,
    act,
    message_id_of,
    plan_of,
    recorded,
    reply,
)

DEPOSIT = "deposit_due:acme-build:request"
BUILD = mission_record(
    "acme-build", "Refonte du portail", "2026-12-01", 'contact = "jdupont"',
    "contract_signed = 2026-11-20", "deposit_amount = 3000",
)  # fmt: skip


def replied_tasks(store: Store) -> dict[str, str]:
    """The client_replied tasks recorded, by key: their subjects."""
    return {key: row.subject for key, row in outbox(store).items() if row.rule == "client_replied"}


def test_the_task_in_english_with_the_reply_in_the_owners_zone(
    store: Store, tmp_path: Path
) -> None:
    settings = owner_settings(tmp_path, IN_ENGLISH + MAILBOX)
    loaded = imported(store, tmp_path, DATA)
    a_pass(loaded, settings, paris(2026, 12, 1, 9, 0))
    read_at = paris(2026, 12, 3, 10, 5)
    answer = reply((message_id_of(loaded, NUDGE_1),), date=paris(2026, 12, 3, 10, 0))
    act(loaded, settings, recorded(loaded, "INBOX", read_at, answer), read_at)
    a_pass(loaded, settings, read_at)
    ((key, subject),) = replied_tasks(loaded).items()
    assert subject == "Jeanne Dupont replied about F-042: read and answer"
    task = outbox(loaded)[key]
    assert (task.audience, task.language, task.owner) == (Audience.OWNER, "en", "owner")
    assert 'Subject: "Re: Facture F-042"' in task.body
    assert "December 3, 2026 at 10:00" in task.body and JEANNE in task.body


def test_a_reply_about_the_deposit_pauses_the_deposit_nudge(store: Store, tmp_path: Path) -> None:
    settings = owner_settings(tmp_path, MAILBOX)
    loaded = imported(store, tmp_path, ACME + BUILD)
    a_pass(loaded, settings, paris(2026, 12, 1, 9, 0))
    read_at = paris(2026, 12, 2, 15, 0)
    answer = reply((message_id_of(loaded, DEPOSIT),), subject="Re: Acompte", date=read_at)
    actions = act(loaded, settings, recorded(loaded, "INBOX", read_at, answer), read_at)
    # Wednesday 2 + 7 working days: Thu 3, Fri 4, Mon 7 … Fri 11
    assert actions.paused == {("deposit_due", "acme-build"): date(2026, 12, 11)}
    planned = plan_of(loaded, settings, paris(2026, 12, 3), paris(2026, 12, 31))
    assert planned["deposit_due:acme-build:nudge"] == paris(2026, 12, 11, 9, 0)
    assert planned["deposit_due:acme-build:call"] == paris(2026, 12, 16, 9, 0), "not the owner's"
    a_pass(loaded, settings, read_at)
    (subject,) = replied_tasks(loaded).values()
    assert subject == (
        "Jeanne Dupont a répondu au sujet de l'acompte de « Refonte du portail » : lire et répondre"
    )


def test_turned_off_a_reply_pauses_nothing_and_makes_no_task(store: Store, tmp_path: Path) -> None:
    settings = owner_settings(tmp_path, MAILBOX + "[rules.client_replied]\nenabled = false\n")
    loaded = imported(store, tmp_path, DATA)
    a_pass(loaded, settings, paris(2026, 12, 1, 9, 0))
    read_at = paris(2026, 12, 3, 10, 5)
    answer = reply((message_id_of(loaded, NUDGE_1),))
    actions = act(loaded, settings, recorded(loaded, "INBOX", read_at, answer), read_at)
    assert actions.replies and actions.touchpoints, "still a reply, still a touchpoint"
    assert actions.paused == {}
    a_pass(loaded, settings, paris(2026, 12, 8, 9, 0))
    assert outbox(loaded)[NUDGE_2].state == FollowUpState.SENT, "on its own date"
    assert replied_tasks(loaded) == {}


BOB_MISSION = """\
[[clients]]
key = "globex"
name = "Globex"
[[contacts]]
key = "bsmith"
client = "globex"
name = "Bob Smith"
email = "bob@globex.example"
[[missions]]
key = "globex-run"
client = "globex"
title = "Run"
contact = "bsmith"
start = 2026-09-01
owner = "bob"
[[invoices]]
number = "G-7"
mission = "globex-run"
amount = 500
issued = 2026-10-31
due = 2026-11-30
"""


def test_in_a_shared_mailbox_the_task_is_the_missions_owners(store: Store, tmp_path: Path) -> None:
    settings = parsed(MAILBOX + CLAIRE + BOB, tmp_path)
    loaded = imported(store, tmp_path, DATA + BOB_MISSION, ("claire", "bob"))
    a_pass(loaded, settings, paris(2026, 12, 1, 9, 0))
    read_at = paris(2026, 12, 3, 10, 5)
    answer = reply((message_id_of(loaded, "invoice_due:G-7:nudge-1"),), sender="bob@globex.example")
    actions = act(loaded, settings, recorded(loaded, "INBOX", read_at, answer), read_at)
    assert actions.paused == {("invoice_due", "G-7"): date(2026, 12, 14)}
    a_pass(loaded, settings, read_at)
    ((key, subject),) = replied_tasks(loaded).items()
    assert subject.startswith("Bob Smith a répondu au sujet de G-7")
    assert outbox(loaded)[key].owner == "bob"


def test_an_owners_own_mailbox_counts_for_their_missions_only(store: Store, tmp_path: Path) -> None:
    own = MAILBOX.replace("[imap]", "[owners.imap]")
    settings = parsed(CLAIRE + BOB + own, tmp_path)  # Bob's own mailbox
    loaded = imported(store, tmp_path, DATA + BOB_MISSION, ("claire", "bob"))
    read_at = paris(2026, 12, 3, 10, 5)
    from_jeanne = reply(subject="Bonjour")  # Jeanne is Claire's client
    from_bob_smith = reply(sender="bob@globex.example", subject="Hello")
    messages = recorded(loaded, "INBOX", read_at, from_jeanne, from_bob_smith, owner="bob")
    actions = act(loaded, settings, messages, read_at, {("bob", "Sent")})
    assert len(actions.replies) == 2
    assert [key.split("|")[0] for key in actions.touchpoints] == ["globex-run"]


def test_the_bounce_task_in_english(store: Store, tmp_path: Path) -> None:
    settings = owner_settings(tmp_path, IN_ENGLISH + MAILBOX)
    loaded = imported(store, tmp_path, DATA)
    a_pass(loaded, settings, paris(2026, 12, 1, 9, 0))
    at = paris(2026, 12, 1, 9, 5)
    bounce = NewMessage(
        90, "<dsn@mx.example>", at, "mailer-daemon@mx.example", (OWNER,), "Undelivered",
        report=True, automatic=True, kind=MailKind.BOUNCE, followup_key=NUDGE_1,
        delivery_status="5.1.1", diagnostic="550 user unknown",
    )  # fmt: skip
    act(loaded, settings, recorded(loaded, "INBOX", at, bounce), at)
    a_pass(loaded, settings, at)
    (task,) = [row for row in outbox(loaded).values() if row.rule == "email_bounced"]
    assert task.subject == f"Fix the address of Jeanne Dupont: {JEANNE} bounces emails"
    assert "Reason: 5.1.1 550 user unknown" in task.body
    assert task.state == FollowUpState.SENT  # into the feed
