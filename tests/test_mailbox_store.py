"""What the mailbox sync keeps (schema 0010), on both engines: folder states and messages.

A message is recorded once per mailbox: read again in another folder, or
after the server renumbered its folder (a new UIDVALIDITY), it is not
recorded twice, so the sync never acts on it twice.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError

from followupd.domain.states import FollowUpState, MailKind
from followupd.store.db import HEAD_REVISION, Store
from followupd.store.mailbox import (
    MAX_MESSAGE_ID,
    FolderState,
    NewMessage,
    classify,
    classify_all,
    folder_state,
    followups_by_message_id,
    forget_messages,
    record_messages,
    record_new_messages,
    recorded_by_message_id,
    recorded_messages,
    reset_folder,
    save_folder_state,
)
from followupd.store.models import Base, FollowUp, MailFolder, MailMessage
from followupd.store.outbox import housekeeping
from tests.conftest import sample_followup, to_revision

NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
PARIS_WINTER = timezone(timedelta(hours=1))
ACCOUNT = "claire@imap.example.net:993"
SENT = "Éléments envoyés"
TABLES = {"mail_folders", "mail_messages"}


def reply(uid: int, message_id: str | None, **facts: object) -> NewMessage:
    """A client's reply to a nudge, as the sync reads it."""
    fields: dict[str, object] = {
        "date": datetime(2026, 12, 7, 10, 2, tzinfo=PARIS_WINTER),
        "sender": "Jeanne Dupont <jeanne@client.example>",
        "recipients": ("claire@cabinet.example",),
        "subject": "Re: Facture F-042",
        "answers": ("<abc.followupd@cabinet.example>",),
        "kind": MailKind.REPLY,
        "followup_key": "invoice_due:F-042:nudge-1",
    }
    return NewMessage(uid=uid, message_id=message_id, **(fields | facts))  # type: ignore[arg-type]


def count(store: Store) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(MailMessage)) or 0


def every_id(store: Store) -> list[int]:
    with store.session() as session:
        return list(session.scalars(select(MailMessage.id).order_by(MailMessage.id)))


# -- schema 0010 ---------------------------------------------------------------------------


def test_0010_goes_up_and_down_keeping_the_followups(database_url: URL) -> None:
    store = Store.open(database_url)
    try:
        store.upgrade()
        with store.session() as session:
            row = sample_followup("invoice_due:F-1:nudge-1", NOW)
            row.message_id = "<abc.followupd@cabinet.example>"
            session.add(row)
        record_in(store, "INBOX", 7, [reply(1, "<r1@client.example>")])
        indexes = {index["name"] for index in inspect(store.engine).get_indexes("followups")}
        assert "ix_followups_message_id" in indexes

        to_revision(store, "0009", down=True)
        assert store.current_revision() == "0009"
        assert not TABLES & set(inspect(store.engine).get_table_names())
        indexes = {index["name"] for index in inspect(store.engine).get_indexes("followups")}
        assert "ix_followups_message_id" not in indexes

        assert store.upgrade() == ("0009", HEAD_REVISION)
        assert set(inspect(store.engine).get_table_names()) >= TABLES
        with store.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        with store.session() as session:
            kept = session.scalars(select(FollowUp)).one()
            assert kept.message_id == "<abc.followupd@cabinet.example>"
            found = followups_by_message_id(session, ["<abc.followupd@cabinet.example>"])
        assert [row.key for row in found["<abc.followupd@cabinet.example>"]] == [kept.key]
        assert count(store) == 0, "the messages went with their table"
    finally:
        store.close()


def test_the_kinds_are_the_words_of_the_domain(store: Store) -> None:
    rows = [reply(uid, f"<{kind}@x>", kind=kind) for uid, kind in enumerate(MailKind, 1)]
    ids = record_in(store, "INBOX", 7, rows)
    with store.session() as session:
        kinds = [message.kind for message in recorded_messages(session, ids)]
    assert kinds == list(MailKind) and all(type(kind) is MailKind for kind in kinds)
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(
            MailMessage(
                folder="INBOX", uidvalidity=7, uid=99, fingerprint="f", kind="spam", created_at=NOW
            )
        )


def test_a_folder_of_the_shared_mailbox_is_unique_too(store: Store) -> None:
    """The owner column is "" for [imap], not NULL: a unique constraint holds on it."""
    with store.session() as session:
        session.add(MailFolder(account=ACCOUNT, folder="INBOX", uidvalidity=1, updated_at=NOW))
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(MailFolder(account=ACCOUNT, folder="INBOX", uidvalidity=2, updated_at=NOW))


# -- folder states --------------------------------------------------------------------------


def save(store: Store, owner: str | None, folder: str, **values: object) -> None:
    state: dict[str, object] = {
        "account": ACCOUNT,
        "uidvalidity": 7,
        "last_uid": 0,
        "highest_modseq": None,
        "at": NOW,
    }
    with store.session() as session:
        save_folder_state(session, owner, folder, **(state | values))  # type: ignore[arg-type]


def state_of(store: Store, owner: str | None, folder: str) -> FolderState | None:
    with store.session() as session:
        return folder_state(session, owner, folder)


def test_a_folder_state_is_made_then_replaced(store: Store) -> None:
    assert state_of(store, None, "INBOX") is None
    save(store, None, "INBOX", last_uid=41, highest_modseq=2**40)
    assert state_of(store, None, "INBOX") == FolderState(
        owner=None,
        folder="INBOX",
        account=ACCOUNT,
        uidvalidity=7,
        last_uid=41,
        highest_modseq=2**40,
        updated_at=NOW,
    )
    later = NOW + timedelta(minutes=5)
    save(store, None, "INBOX", uidvalidity=4_294_967_295, last_uid=4_294_967_295, at=later)
    state = state_of(store, None, "INBOX")
    assert state is not None
    assert (state.uidvalidity, state.last_uid, state.highest_modseq, state.updated_at) == (
        4_294_967_295,
        4_294_967_295,
        None,
        later,
    )
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(MailFolder)) == 1


def test_each_mailbox_has_its_own_folder_states(store: Store) -> None:
    save(store, None, "INBOX", last_uid=10)
    save(store, "bob", "INBOX", last_uid=20, account="bob@mail.example:143")
    save(store, None, SENT, last_uid=30)
    shared, bobs, sent = (state_of(store, *where) for where in
                          ((None, "INBOX"), ("bob", "INBOX"), (None, SENT)))  # fmt: skip
    assert shared is not None and bobs is not None and sent is not None
    assert (shared.owner, shared.last_uid) == (None, 10)
    assert (bobs.owner, bobs.last_uid, bobs.account) == ("bob", 20, "bob@mail.example:143")
    assert (sent.folder, sent.last_uid) == (SENT, 30)
    assert state_of(store, "claire", "INBOX") is None


def test_a_new_uidvalidity_starts_the_folder_over(store: Store) -> None:
    save(store, None, "INBOX", last_uid=41, highest_modseq=900)
    save(store, None, SENT, last_uid=12)
    later = NOW + timedelta(hours=1)
    with store.session() as session:
        assert reset_folder(session, None, "INBOX", 8, later)
        assert not reset_folder(session, None, "Archives", 8, later), "never read"
        assert not reset_folder(session, "bob", "INBOX", 8, later), "another mailbox"
    state = state_of(store, None, "INBOX")
    assert state is not None
    assert (state.uidvalidity, state.last_uid, state.highest_modseq, state.updated_at) == (
        8,
        0,
        None,
        later,
    )
    sent = state_of(store, None, SENT)
    assert sent is not None and (sent.uidvalidity, sent.last_uid) == (7, 12)


# -- messages -------------------------------------------------------------------------------


def record_in(
    store: Store,
    folder: str,
    uidvalidity: int,
    rows: list[NewMessage],
    owner: str | None = None,
    at: datetime = NOW,
) -> list[int]:
    with store.session() as session:
        return record_messages(session, owner, folder, uidvalidity, rows, at)


def test_messages_are_recorded_with_their_header_facts(store: Store) -> None:
    ids = record_in(store, "INBOX", 7, [reply(3, "<r1@client.example>"), reply(4, None)])
    assert len(ids) == 2
    with store.session() as session:
        first, second = recorded_messages(session, ids)
    assert (first.owner, first.folder, first.uidvalidity, first.uid) == (None, "INBOX", 7, 3)
    assert first.message_id == "<r1@client.example>"
    assert first.date == datetime(2026, 12, 7, 9, 2, tzinfo=UTC)
    assert first.sender == "Jeanne Dupont <jeanne@client.example>"
    assert first.recipients == ("claire@cabinet.example",)
    assert first.answers == ("<abc.followupd@cabinet.example>",)
    assert (first.kind, first.followup_key) == (MailKind.REPLY, "invoice_due:F-042:nudge-1")
    assert (first.automatic, first.report, first.problem) == (False, False, None)
    assert first.created_at == NOW
    assert (second.uid, second.message_id) == (4, None)


def test_a_message_read_again_is_not_recorded_again(store: Store) -> None:
    first = record_in(store, "INBOX", 7, [reply(3, "<r1@client.example>")])
    assert record_in(store, "INBOX", 7, [reply(3, "<r1@client.example>")]) == []
    assert record_in(store, "INBOX", 7, [reply(3, "<other@client.example>")]) == [], "same UID"
    assert record_in(store, SENT, 5, [reply(90, "r1@client.example")]) == [], "another folder"
    new = record_in(store, "INBOX", 7, [reply(3, "<r1@client.example>"), reply(4, "<r2@x>")])
    assert len(new) == 1 and new[0] > first[0]
    assert count(store) == 2


def test_no_message_is_doubled_across_a_uidvalidity_change(store: Store) -> None:
    """The server renumbers INBOX: every message comes back under a new UID; none is new."""
    before = [reply(uid, f"<m{uid}@client.example>") for uid in range(1, 6)]
    before += [reply(6, None, subject="Sans identifiant"), reply(7, None, subject="Autre")]
    assert len(record_in(store, "INBOX", 7, before)) == 7
    save(store, None, "INBOX", last_uid=7)

    with store.session() as session:
        assert reset_folder(session, None, "INBOX", 1234, NOW)
    state = state_of(store, None, "INBOX")
    assert state is not None and (state.uidvalidity, state.last_uid) == (1234, 0)
    again = [replace(message, uid=message.uid + 100) for message in before]  # renumbered
    arrived = reply(108, "<new@client.example>")
    new = record_in(store, "INBOX", 1234, [*again, arrived])
    with store.session() as session:
        (recorded,) = recorded_messages(session, new)
    assert (recorded.message_id, recorded.uidvalidity, recorded.uid) == (
        "<new@client.example>",
        1234,
        108,
    )
    assert count(store) == 8


def test_messages_without_a_message_id_are_told_apart_by_their_facts(store: Store) -> None:
    rows = [
        reply(1, None),
        reply(2, None, subject="Re: Facture F-043"),
        reply(3, None, date=None),
        reply(4, None, sender=None),
        reply(5, None, recipients=("bob@cabinet.example",)),
        reply(6, ""),  # an empty Message-ID is none
        reply(7, "<>"),
    ]
    ids = record_in(store, "INBOX", 7, rows)
    assert len(ids) == 5, "the empty Message-IDs are the first message's facts"
    same_moment = reply(8, None, date=datetime(2026, 12, 7, 9, 2, tzinfo=UTC))
    assert record_in(store, "Archives", 1, [same_moment]) == [], "the same instant elsewhere"


def test_each_mailbox_records_the_messages_it_holds(store: Store) -> None:
    message = reply(3, "<r1@client.example>")
    assert len(record_in(store, "INBOX", 7, [message])) == 1
    assert len(record_in(store, "INBOX", 7, [message], owner="bob")) == 1
    assert record_in(store, "INBOX", 7, [message], owner="bob") == []
    with store.session() as session:
        owners = sorted(str(m.owner) for m in recorded_messages(session, every_id(store)))
    assert owners == ["None", "bob"]


def test_one_batch_holding_a_message_twice_records_it_once(store: Store) -> None:
    rows = [reply(1, "<dup@x>"), reply(2, "<dup@x>"), reply(3, "<solo@x>")]
    ids = record_in(store, "INBOX", 7, rows)
    with store.session() as session:
        assert [m.uid for m in recorded_messages(session, ids)] == [1, 3]


def test_many_messages_at_once(store: Store) -> None:
    """A first scan records thousands in one call (beyond one statement's parameters)."""
    rows = [reply(uid, f"<m{uid}@client.example>") for uid in range(1, 1201)]
    ids = record_in(store, "INBOX", 7, rows)
    assert len(ids) == 1200 and ids == sorted(ids)
    assert record_in(store, "INBOX", 7, rows) == []


def test_the_messages_recorded_come_back_as_stored_without_reading_them_again(
    store: Store,
) -> None:
    rows = [reply(uid, f"<m{uid}@client.example>") for uid in range(1, 701)]
    rows.append(replace(rows[0], uid=701))  # the same message again: not recorded
    rows.append(reply(702, None, sender="Bad\udcff \x00Sender <b@x>", date=datetime(2026, 12, 7)))
    with store.session() as session:
        made = record_new_messages(session, "claire", "INBOX", 7, rows, NOW)
    with store.session() as session:
        again = recorded_messages(session, [message.id for message in made])
    assert len(made) == 701 and [m.id for m in made] == sorted(m.id for m in made)
    assert made == again


def test_many_messages_are_classified_at_once(store: Store) -> None:
    rows = [reply(uid, f"<c{uid}@x>", kind=MailKind.OTHER, followup_key=None) for uid in (1, 2, 3)]
    ids = record_in(store, "INBOX", 7, rows)
    with store.session() as session:
        classify_all(session, [(ids[0], MailKind.REPLY, "invoice_due:F-1:nudge-1"),
                               (ids[2], MailKind.SENT, None)])  # fmt: skip
    with store.session() as session:
        found = recorded_messages(session, ids)
    assert [(m.kind, m.followup_key) for m in found] == [
        (MailKind.REPLY, "invoice_due:F-1:nudge-1"),
        (MailKind.OTHER, None),
        (MailKind.SENT, None),
    ]


def test_header_junk_is_stored_as_the_databases_can_hold_it(store: Store) -> None:
    junk = NewMessage(
        uid=1,
        message_id="<" + "x" * MAX_MESSAGE_ID + "@junk>",
        date=datetime(2026, 12, 7, 10, 2),  # "-0000": zone unknown
        sender="Bad\udcff \x00Sender <b@x>",
        recipients=("a@x\r\nBcc: c@x", "d@x"),
        subject="Sujet \udce9t\x00\u00e9",
        answers=("<p@x>\n<q@x>",),
        automatic=True,
        report=True,
        problem="undecodable bytes in Subject",
    )
    (recorded_id,) = record_in(store, "INBOX", 7, [junk])
    with store.session() as session:
        (stored,) = recorded_messages(session, [recorded_id])
    assert stored.message_id is None
    assert stored.problem is not None and "undecodable bytes in Subject" in stored.problem
    assert f"over {MAX_MESSAGE_ID} characters" in stored.problem
    assert stored.date == datetime(2026, 12, 7, 10, 2, tzinfo=UTC)
    assert stored.sender == "Bad\ufffd \ufffdSender <b@x>"
    assert stored.subject == "Sujet \ufffdt\ufffd\u00e9"
    assert stored.recipients == ("a@x Bcc: c@x", "d@x")
    assert stored.answers == ("<p@x> <q@x>",)
    assert (stored.automatic, stored.report) == (True, True)
    assert record_in(store, "INBOX", 7, [junk]) == [], "recognised by its long Message-ID still"


def test_the_sync_says_later_what_a_message_is(store: Store) -> None:
    (message,) = record_in(store, "INBOX", 7, [reply(1, "<dsn@mta>", kind=MailKind.OTHER)])
    with store.session() as session:
        classify(session, message, MailKind.BOUNCE, "invoice_due:F-1:nudge-2")
    with store.session() as session:
        (stored,) = recorded_messages(session, [message])
    assert (stored.kind, stored.followup_key) == (MailKind.BOUNCE, "invoice_due:F-1:nudge-2")


# -- follow-ups by Message-ID ---------------------------------------------------------------


def test_followups_are_found_by_the_message_id_they_were_sent_as(store: Store) -> None:
    with store.session() as session:
        for key, message_id in [
            ("invoice_due:F-1:nudge-1", "<n1.followupd@cabinet.example>"),
            ("contract_missing:m:1", "<digest.followupd@cabinet.example>"),
            ("client_not_informed:i:1", "<digest.followupd@cabinet.example>"),
            ("invoice_due:F-2:nudge-1", None),
        ]:
            row = sample_followup(key, NOW)
            row.message_id, row.state = message_id, FollowUpState.SENT
            session.add(row)
    asked = [
        "<n1.followupd@cabinet.example>",
        " n1.followupd@cabinet.example ",
        "digest.followupd@cabinet.example",
        "<unknown@cabinet.example>",
        "",
    ]
    with store.session() as session:
        found = followups_by_message_id(session, asked)
    assert {given: [row.key for row in rows] for given, rows in found.items()} == {
        "<n1.followupd@cabinet.example>": ["invoice_due:F-1:nudge-1"],
        " n1.followupd@cabinet.example ": ["invoice_due:F-1:nudge-1"],
        "digest.followupd@cabinet.example": ["client_not_informed:i:1", "contract_missing:m:1"],
    }
    nudge = found["<n1.followupd@cabinet.example>"][0]
    assert (nudge.state, nudge.audience, nudge.recipient) == (
        FollowUpState.SENT,
        "client",
        "a@b.example",
    )


def test_messages_recorded_are_found_by_message_id_in_their_mailbox(store: Store) -> None:
    sent = NewMessage(uid=5, message_id="<own@cabinet.example>", kind=MailKind.SENT)
    (mine,) = record_in(store, SENT, 3, [sent])
    record_in(store, "INBOX", 7, [reply(1, "theirs@client.example")])
    record_in(store, SENT, 3, [replace(sent, uid=6)], owner="bob")
    asked = ["own@cabinet.example", "<theirs@client.example>", "<nowhere@x>"]
    with store.session() as session:
        found = recorded_by_message_id(session, None, asked)
        assert recorded_by_message_id(session, "claire", asked) == {}
    assert sorted(found) == ["<theirs@client.example>", "own@cabinet.example"]
    assert (found["own@cabinet.example"].id, found["own@cabinet.example"].kind) == (mine, "sent")
    assert found["<theirs@client.example>"].message_id == "theirs@client.example", "as written"


# -- housekeeping ---------------------------------------------------------------------------


def test_messages_older_than_the_retention_are_deleted_with_old_followups(store: Store) -> None:
    retention = timedelta(days=400)
    old, recent = NOW - retention - timedelta(days=1), NOW - retention + timedelta(days=1)
    record_in(store, "INBOX", 7, [reply(1, "<old@x>")], at=old)
    kept = record_in(store, "INBOX", 7, [reply(2, "<recent@x>")], at=recent)
    record_in(store, "INBOX", 7, [reply(3, "<old-bob@x>")], owner="bob", at=old)
    with store.session() as session:
        housekeeping.tidy(session, NOW, retention)
    with store.session() as session:
        assert [m.id for m in recorded_messages(session, every_id(store))] == kept
        assert forget_messages(session, NOW + timedelta(days=1)) == 1
    assert count(store) == 0
