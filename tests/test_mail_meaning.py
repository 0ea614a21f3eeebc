"""What the messages a mailbox sync recorded mean: replies, the owner's sent messages, bounces.

No IMAP here: the messages are recorded in the store as the sync records
them, and acted on (`act_on_mail`); passes (evaluation, then delivery to a
Maildir) run at given instants, on both databases.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Collection
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from followupd.config.settings import Settings
from followupd.delivery.deliverer import Deliverer, DeliveryReport
from followupd.domain.identity import touchpoint_key
from followupd.domain.states import FollowUpState, MailKind, TouchpointKind
from followupd.engine.evaluation import evaluate, plan
from followupd.rules.registry import enabled_rules
from followupd.sources.imap.meaning import MailActions, act_on_mail
from followupd.store.db import Store
from followupd.store.mailbox import (
    NewMessage,
    StoredMessage,
    classify_all,
    record_messages,
    recorded_messages,
)
from followupd.store.models import Contact, MailMessage, Touchpoint
from tests.rulekit import ACME, imported, outbox, owner_settings, paris

MAILBOX = '[imap]\nurl = "imaps://imap.example.net/"\nusername = "claire"\npassword_env = "PW"\n'
INVOICE = '[[invoices]]\nnumber = "F-042"\nmission = "acme-audit"\namount = 1200\n'
DATA = ACME + INVOICE + "issued = 2026-10-31\ndue = 2026-11-30\n"
OWNER = "claire@cabinet.example"
JEANNE = "jeanne.dupont@acme.example"
NUDGE_1, NUDGE_2, NUDGE_3 = (f"invoice_due:F-042:nudge-{n}" for n in (1, 2, 3))
SENT = {(None, "Sent")}
UIDS = iter(range(1, 10_000))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return owner_settings(tmp_path, MAILBOX)


@pytest.fixture
def loaded(store: Store, tmp_path: Path) -> Store:
    return imported(store, tmp_path, DATA)


def recorded(
    store: Store, folder: str, at: datetime, *messages: NewMessage, owner: str | None = None
) -> list[StoredMessage]:
    """`messages` recorded in `folder` of the mailbox `owner`, as the sync records them."""
    with store.session() as session:
        ids = record_messages(session, owner, folder, 1, messages, at)
        return recorded_messages(session, ids)


def act(
    store: Store,
    settings: Settings,
    messages: list[StoredMessage],
    at: datetime,
    sent_folders: Collection[tuple[str | None, str]] = SENT,
) -> MailActions:
    with store.session() as session:
        return act_on_mail(session, settings, messages, sent_folders, at)


def a_pass(store: Store, settings: Settings, at: datetime) -> DeliveryReport:
    """One pass at `at`: evaluate every enabled rule, then deliver (emails to a Maildir)."""
    with store.session() as session:
        evaluate(session, settings, enabled_rules(settings.rules, settings.owners), at)
    return deliver(store, settings, at)


def deliver(store: Store, settings: Settings, at: datetime) -> DeliveryReport:
    return asyncio.run(Deliverer(store, settings, "w1", rng=random.Random(1)).run(at))


def message_id_of(store: Store, key: str) -> str:
    found = outbox(store)[key].message_id
    assert found, f"{key} was not sent"
    return found


def reply(answers: tuple[str, ...] = (), **facts: object) -> NewMessage:
    """Jeanne's reply, read on the 3rd of December; `facts` change it."""
    values: dict[str, object] = {
        "uid": next(UIDS),
        "message_id": f"<reply-{next(UIDS)}@acme.example>",
        "date": paris(2026, 12, 3, 10, 0),
        "sender": JEANNE,
        "recipients": (OWNER,),
        "subject": "Re: Facture F-042",
        "answers": answers,
    }
    return NewMessage(**{**values, **facts})  # type: ignore[arg-type]


def touchpoints(store: Store) -> dict[str, Touchpoint]:
    with store.session() as session:
        return {row.key: row for row in session.scalars(select(Touchpoint))}


def kinds(store: Store) -> dict[int, tuple[MailKind, str | None]]:
    with store.session() as session:
        rows = session.execute(select(MailMessage.id, MailMessage.kind, MailMessage.followup_key))
        return {row.id: (row.kind, row.followup_key) for row in rows}


# -- replies ---------------------------------------------------------------------------------


def test_a_reply_to_a_nudge_pauses_the_rest_and_gives_the_owner_a_task(
    loaded: Store, settings: Settings
) -> None:
    a_pass(loaded, settings, paris(2026, 12, 1, 9, 0))
    assert outbox(loaded)[NUDGE_1].state == FollowUpState.SENT
    read_at = paris(2026, 12, 3, 10, 5)
    (message,) = recorded(loaded, "INBOX", read_at, reply((message_id_of(loaded, NUDGE_1),)))

    actions = act(loaded, settings, [message], read_at)

    assert actions.replies == [message.id]
    assert kinds(loaded)[message.id] == (MailKind.REPLY, NUDGE_1)
    key = touchpoint_key("acme-audit", TouchpointKind.EMAIL, paris(2026, 12, 3, 10, 0), "jdupont")
    assert actions.touchpoints == [key]
    made = touchpoints(loaded)[key]
    assert (made.kind, made.note) == (TouchpointKind.EMAIL, "Re: Facture F-042")
    # Thursday 3 + 7 working days: Fri 4, Mon 7 … Fri 11, Mon 14
    assert actions.paused == {("invoice_due", "F-042"): date(2026, 12, 14)}

    a_pass(loaded, settings, read_at)
    task = outbox(loaded)["client_replied:F-042:" + fingerprint(loaded, message.id)[:16]]
    assert task.subject == "Jeanne Dupont a répondu au sujet de F-042 : lire et répondre"
    assert task.due_at == paris(2026, 12, 3, 10, 0)
    assert "« Re: Facture F-042 »" in task.body
    assert "3 décembre 2026 à 10:00" in task.body
    assert task.state == FollowUpState.SENT  # into the feed: no CalDAV calendar here

    # nudge-2 (the 8th) falls in the wait: it comes at its end, not before
    for day in (8, 11):
        a_pass(loaded, settings, paris(2026, 12, day, 17, 0))
        assert NUDGE_2 not in outbox(loaded)
    planned = plan_of(loaded, settings, paris(2026, 12, 8), paris(2026, 12, 20))
    assert planned[NUDGE_2] == paris(2026, 12, 14, 9, 0)
    assert planned[NUDGE_3] == paris(2026, 12, 15, 9, 0), "after the wait: as it was"
    a_pass(loaded, settings, paris(2026, 12, 14, 9, 0))
    assert outbox(loaded)[NUDGE_2].state == FollowUpState.SENT
    assert NUDGE_3 not in outbox(loaded)

    again = act(loaded, settings, recorded_again(loaded, message.id), read_at)
    assert (again.replies, again.touchpoints, again.changed) == ([], [], False)


def test_a_nudge_recorded_before_the_reply_waits_at_delivery_and_keeps_its_grace(
    loaded: Store, settings: Settings
) -> None:
    a_pass(loaded, settings, paris(2026, 12, 1, 9, 0))
    nudge_1 = message_id_of(loaded, NUDGE_1)
    with loaded.session() as session:  # nudge-2 recorded at 9:00, not sent yet
        evaluate(session, settings, enabled_rules(settings.rules), paris(2026, 12, 8, 9, 0))
    assert outbox(loaded)[NUDGE_2].state == FollowUpState.PENDING
    read_at = paris(2026, 12, 8, 9, 30)
    messages = recorded(loaded, "INBOX", read_at, reply((nudge_1,), date=read_at))
    act(loaded, settings, messages, read_at)

    report = deliver(loaded, settings, paris(2026, 12, 8, 9, 31))
    # Tuesday 8 + 7 working days: Wed 9 … Fri 11, Mon 14 … Thu 17
    why = "the client replied on 2026-12-08: waits until 2026-12-17"
    assert report.held[NUDGE_2] == why
    held = outbox(loaded)[NUDGE_2]
    assert (held.state, held.reason) == (FollowUpState.PENDING, why)
    assert held.next_attempt_at == paris(2026, 12, 17, 9, 0)
    assert held.expires_at == paris(2026, 12, 24, 9, 0), "its grace runs from the end of the wait"

    assert NUDGE_2 not in deliver(loaded, settings, paris(2026, 12, 16, 17, 0)).keys
    # at the end of the wait nudge-3 (the 15th, in the wait too) is due as well: the client
    # gets the latest of the thread, once, and nothing expired on the way
    report = a_pass(loaded, settings, paris(2026, 12, 17, 9, 0))
    assert report.sent.count(NUDGE_3) == 1 and NUDGE_2 in report.superseded
    assert outbox(loaded)[NUDGE_2].state == FollowUpState.SUPERSEDED
    assert not report.expired


def test_a_reply_without_a_followupd_message_id_is_a_touchpoint_and_pauses_nothing(
    loaded: Store, settings: Settings
) -> None:
    read_at = paris(2026, 12, 3, 10, 5)
    (message,) = recorded(loaded, "INBOX", read_at, reply(sender=JEANNE.upper()))
    actions = act(loaded, settings, [message], read_at)
    assert actions.replies == [message.id]
    assert kinds(loaded)[message.id] == (MailKind.REPLY, None)
    assert len(actions.touchpoints) == 1 and actions.paused == {}
    a_pass(loaded, settings, read_at)
    assert not [key for key in outbox(loaded) if key.startswith("client_replied:")]


def test_an_automatic_reply_an_unknown_sender_and_the_owner_are_no_reply(
    loaded: Store, settings: Settings
) -> None:
    a_pass(loaded, settings, paris(2026, 12, 1, 9, 0))
    nudge_1 = message_id_of(loaded, NUDGE_1)
    read_at = paris(2026, 12, 3, 10, 5)
    messages = recorded(
        loaded,
        "INBOX",
        read_at,
        reply((nudge_1,), automatic=True, kind=MailKind.AUTOMATIC, subject="Absente"),
        reply(sender="someone@elsewhere.example", subject="Hello"),
        reply(sender=OWNER, subject="Note to self"),
        reply(sender=None, subject="No sender"),
    )
    actions = act(loaded, settings, messages, read_at)
    assert (actions.replies, actions.touchpoints, actions.paused) == ([], [], {})
    assert not actions.failed
    assert {kind for kind, _ in kinds(loaded).values()} == {MailKind.AUTOMATIC, MailKind.OTHER}
    assert touchpoints(loaded) == {}


def test_a_reply_from_another_address_answering_a_nudge_counts_for_its_contact(
    loaded: Store, settings: Settings
) -> None:
    a_pass(loaded, settings, paris(2026, 12, 1, 9, 0))
    read_at = paris(2026, 12, 3, 10, 5)
    answer = reply((message_id_of(loaded, NUDGE_1),), sender="compta@acme.example")
    actions = act(loaded, settings, recorded(loaded, "INBOX", read_at, answer), read_at)
    key = touchpoint_key("acme-audit", TouchpointKind.EMAIL, paris(2026, 12, 3, 10, 0), "jdupont")
    assert actions.touchpoints == [key]
    assert ("invoice_due", "F-042") in actions.paused


def test_a_reply_to_a_message_the_owner_sent_counts_for_those_it_was_sent_to(
    loaded: Store, settings: Settings
) -> None:
    at = paris(2026, 12, 3, 18, 0)
    mine = NewMessage(next(UIDS), "<mine@cabinet.example>", paris(2026, 12, 2, 9, 0), OWNER,
                      (JEANNE,), "Planning")  # fmt: skip
    sent = recorded(loaded, "Sent", at, mine)
    answer = reply(("<mine@cabinet.example>",), sender="assistant@acme.example", subject="Re")
    answers = recorded(loaded, "INBOX", at, answer)
    actions = act(loaded, settings, [*sent, *answers], at)
    assert actions.sent == [sent[0].id] and actions.replies == [answers[0].id]
    assert {row.contact_id for row in touchpoints(loaded).values()} == {contact_id(loaded)}
    assert len(actions.touchpoints) == 2


# -- the owner's sent messages ---------------------------------------------------------------


def test_a_status_update_sent_from_the_mail_client_resets_the_cadence(
    loaded: Store, settings: Settings
) -> None:
    # every 14 days from the start (1 September): … 24 November, 8 and 22 December
    before = plan_of(loaded, settings, paris(2026, 12, 3), paris(2026, 12, 31))
    assert "status_update_due:acme-audit:2026-12-08" in before
    at = paris(2026, 12, 2, 18, 0)
    messages = recorded(
        loaded,
        "Sent",
        at,
        NewMessage(next(UIDS), "<s1@cabinet.example>", paris(2026, 12, 2, 16, 0), OWNER,
                   (JEANNE, "other@elsewhere.example"), "Point d'étape — semaine 49"),
        NewMessage(next(UIDS), "<s2@cabinet.example>", paris(2026, 12, 2, 17, 0), OWNER,
                   (JEANNE,), "Une question"),
        NewMessage(next(UIDS), "<s3@cabinet.example>", paris(2026, 12, 2, 17, 30), OWNER,
                   ("friend@elsewhere.example",), "Point d'avancement"),
    )  # fmt: skip
    actions = act(loaded, settings, messages, at)

    update_key = touchpoint_key(
        "acme-audit", TouchpointKind.STATUS_UPDATE, paris(2026, 12, 2, 16, 0), "jdupont"
    )
    assert actions.status_updates == [update_key]
    assert actions.sent == [messages[0].id, messages[1].id], "the third is to no contact"
    made = touchpoints(loaded)
    assert made[update_key].note == "Point d'étape — semaine 49"
    assert {row.kind for row in made.values()} == {
        TouchpointKind.STATUS_UPDATE,
        TouchpointKind.EMAIL,
    }
    after = plan_of(loaded, settings, paris(2026, 12, 3), paris(2026, 12, 31))
    reminders = sorted(key for key in after if key.startswith("status_update_due:acme-audit"))
    assert reminders == [
        "status_update_due:acme-audit:2026-12-16",
        "status_update_due:acme-audit:2026-12-30",
    ]


def test_in_the_sent_folder_only_the_owners_own_messages_count(
    loaded: Store, settings: Settings
) -> None:
    a_pass(loaded, settings, paris(2026, 12, 1, 9, 0))
    at = paris(2026, 12, 1, 18, 0)
    copied = NewMessage(next(UIDS), message_id_of(loaded, NUDGE_1), paris(2026, 12, 1, 9, 0),
                        OWNER, (JEANNE,), "Facture F-042")  # fmt: skip
    forwarded = NewMessage(next(UIDS), "<f@acme.example>", at, JEANNE, (JEANNE,), "Fwd")
    actions = act(loaded, settings, recorded(loaded, "Sent", at, copied, forwarded), at)
    assert (actions.sent, actions.touchpoints) == ([], [])
    # the sent folder of another mailbox is an inbox here
    elsewhere = act(loaded, settings, recorded(loaded, "Sent", at, forwarded, owner="x"), at)
    assert elsewhere.sent == [] and len(elsewhere.replies) == 1


# -- bounces ---------------------------------------------------------------------------------


def test_a_bounce_fails_its_followup_once_and_asks_the_owner_to_fix_the_address(
    loaded: Store, settings: Settings
) -> None:
    a_pass(loaded, settings, paris(2026, 12, 1, 9, 0))
    at = paris(2026, 12, 1, 9, 5)
    bounce = NewMessage(
        next(UIDS), "<dsn-1@mx.example>", paris(2026, 12, 1, 9, 2), "mailer-daemon@mx.example",
        (OWNER,), "Undelivered Mail Returned to Sender", report=True, automatic=True,
        kind=MailKind.BOUNCE, followup_key=NUDGE_1, delivery_status="5.1.1",
        diagnostic=f"550 5.1.1 <{JEANNE}>: user unknown",
    )  # fmt: skip
    (message,) = recorded(loaded, "INBOX", at, bounce)
    actions = act(loaded, settings, [message], at)

    reason = f"bounced: 5.1.1 550 5.1.1 <{JEANNE}>: user unknown"
    assert actions.bounced == {NUDGE_1: reason}
    failed = outbox(loaded)[NUDGE_1]
    assert (failed.state, failed.reason, failed.last_error) == (
        FollowUpState.FAILED,
        reason,
        reason,
    )
    changed_at = failed.updated_at
    again = act(loaded, settings, [message], paris(2026, 12, 1, 10, 0))
    assert again.bounced == {} and outbox(loaded)[NUDGE_1].updated_at == changed_at

    with loaded.session() as session:
        evaluate(session, settings, enabled_rules(settings.rules), at)
    (task,) = [row for key, row in outbox(loaded).items() if key.startswith("email_bounced:")]
    assert task.key.startswith("email_bounced:jdupont:")
    assert task.subject == (f"Corriger l'adresse de Jeanne Dupont : {JEANNE} rejette les e-mails")
    assert "5.1.1 550 5.1.1" in task.body and "« Facture" in task.body
    assert task.due_at == paris(2026, 12, 1, 9, 2)

    with loaded.session() as session:  # the owner fixes the address: the task goes
        session.execute(update(Contact).values(email="jeanne@acme.example"))
        report = evaluate(session, settings, enabled_rules(settings.rules), at + timedelta(hours=1))
    assert report.cancelled == {task.key: "the address of Jeanne Dupont is now jeanne@acme.example"}


# -- one message at a time ------------------------------------------------------------------


def test_a_message_that_fails_is_rolled_back_alone(
    loaded: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = paris(2026, 12, 3, 10, 5)
    messages = recorded(loaded, "INBOX", at, reply(), reply(date=paris(2026, 12, 3, 11, 0)))
    first = messages[0].id

    def failing(session: Session, classified: list[tuple[int, MailKind, str | None]]) -> None:
        classify_all(session, classified)
        if any(message == first for message, _, _ in classified):
            raise ValueError("the store refused it")

    monkeypatch.setattr("followupd.sources.imap.meaning.classify_all", failing)
    actions = act(loaded, settings, messages, at)
    assert actions.failed == {first: "ValueError: the store refused it"}
    assert actions.replies == [messages[1].id] and len(actions.touchpoints) == 1
    assert kinds(loaded)[first] == (MailKind.OTHER, None), "its classification rolled back"


def test_a_batch_is_written_in_as_many_statements_whatever_its_size(
    loaded: Store, settings: Settings
) -> None:
    at = paris(2026, 12, 3, 10, 5)
    statements: list[str] = []

    def counted(*args: object) -> None:
        statements.append(str(args[2]))

    counts = []
    for size in (2, 60):
        replies = [reply(date=at - timedelta(minutes=n + 10 * size)) for n in range(size)]
        messages = recorded(loaded, "INBOX", at, *replies)
        statements.clear()
        event.listen(loaded.engine, "before_cursor_execute", counted)
        try:
            actions = act(loaded, settings, messages, at)
        finally:
            event.remove(loaded.engine, "before_cursor_execute", counted)
        assert len(actions.replies) == len(actions.touchpoints) == size
        counts.append(len(statements))
    assert counts[0] == counts[1], "no statement per message"
    assert kinds(loaded)[messages[-1].id] == (MailKind.REPLY, None)


def test_a_message_without_a_date_happens_when_it_is_read(
    loaded: Store, settings: Settings
) -> None:
    at = paris(2026, 12, 3, 10, 5)
    future = paris(2027, 1, 1)
    messages = recorded(loaded, "INBOX", at, reply(date=None), reply(date=future, subject="x"))
    actions = act(loaded, settings, messages, at)
    assert {row.at for row in touchpoints(loaded).values()} == {at}
    assert len(actions.replies) == 2


# -- helpers ---------------------------------------------------------------------------------


def plan_of(
    store: Store, settings: Settings, start: datetime, end: datetime
) -> dict[str, datetime]:
    with store.session() as session:
        intents = plan(session, settings, enabled_rules(settings.rules), start, end)
        session.rollback()
    return {intent.key: intent.due_at for intent in intents}


def fingerprint(store: Store, message: int) -> str:
    with store.session() as session:
        found = session.scalar(select(MailMessage.fingerprint).where(MailMessage.id == message))
    assert found
    return found


def recorded_again(store: Store, message: int) -> list[StoredMessage]:
    with store.session() as session:
        return recorded_messages(session, [message])


def contact_id(store: Store) -> int:
    with store.session() as session:
        found = session.scalar(select(Contact.id).where(Contact.key == "jdupont"))
    assert found is not None
    return found


def test_what_was_done_in_one_line() -> None:
    actions = MailActions(replies=[1], touchpoints=["a", "b"], bounced={"k": "bounced"})
    assert actions.summary() == (
        "1 reply, 0 messages sent to contacts, 2 touchpoints, 0 status updates, 1 bounce, "
        "0 subjects paused, 0 messages failed"
    )
