"""What the mailbox sync keeps: where each folder's sync stopped, and the messages it read.

A mailbox is named by its owner: the key of an owner read with their own
``[owners.imap]``, or None for ``[imap]`` (the single owner's mailbox, or
the one several owners share). The tables spell None as "", so that their
unique constraints hold (see `MailFolder`).

A message is recorded once per mailbox. Seen again, in another folder or
after the server renumbered a folder (a new UIDVALIDITY), it is recognised
by its fingerprint, a digest of its Message-ID, or of its date, sender,
recipients and subject when it has none, and left as it was:
`record_messages` returns only the messages it recorded, which are those
the sync has to act on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.orm import Session

from followupd.domain.states import MailKind
from followupd.store.chunks import chunked
from followupd.store.models import FollowUp, MailFolder, MailMessage
from followupd.store.outbox.rows import FollowUpRow
from followupd.store.rows import record
from followupd.store.upserts import insert_of

# RFC 5322's longest line: a longer Message-ID is junk, kept out of the indexed column
MAX_MESSAGE_ID = 998
_SHARED = ""  # the mailbox of [imap], in the tables' owner column


@dataclass(frozen=True)
class FolderState:
    """Where the last pass over a folder stopped: what the next one starts from."""

    owner: str | None
    folder: str
    account: str  # user@host:port it was read from
    uidvalidity: int
    last_uid: int  # the highest UID read; 0: none yet
    highest_modseq: int | None  # CONDSTORE's HIGHESTMODSEQ at that point, if the server has it
    updated_at: datetime


@dataclass(frozen=True)
class NewMessage:
    """A message as the sync read it: its UID in the folder, its header facts and its kind.

    The facts are taken as the header reader gives them; text the database
    cannot hold (a NUL, undecodable bytes) is replaced, and a date without a
    time zone (``-0000``: the zone is unknown) is read as UTC.
    """

    uid: int
    message_id: str | None
    date: datetime | None = None
    sender: str | None = None
    recipients: Sequence[str] = ()
    subject: str | None = None
    answers: Sequence[str] = ()  # the Message-IDs of In-Reply-To and References
    automatic: bool = False
    report: bool = False
    problem: str | None = None
    kind: MailKind = MailKind.OTHER
    followup_key: str | None = None  # the follow-up it answers or bounces
    delivery_status: str | None = None  # a bounce's DSN Status, as "5.1.1"
    diagnostic: str | None = None  # a bounce's Diagnostic-Code, one line

    @property
    def fingerprint(self) -> str:
        """What tells this message from others in its mailbox, whatever folder or UID."""
        bare = _bare_id(self.message_id or "")
        if bare:
            basis = ["id", _clean(bare)]
        else:
            when = _utc(self.date).isoformat() if self.date is not None else ""
            basis = ["facts", when, _clean(self.sender or ""), *map(_line, self.recipients)]
            basis.append(_clean(self.subject or ""))
        return hashlib.sha256("\0".join(basis).encode("utf-8")).hexdigest()

    def columns(self) -> dict[str, Any]:
        """Its row's columns, but those of the folder and the time of recording."""
        given = self.message_id or ""
        message_id = _line(given) if _bare_id(given) else None
        problems = [_clean(self.problem)] if self.problem else []
        if message_id is not None and len(message_id) > MAX_MESSAGE_ID:
            message_id = None
            problems.append(f"its Message-ID is over {MAX_MESSAGE_ID} characters: not kept")
        return {
            "uid": self.uid,
            "fingerprint": self.fingerprint,
            "message_id": message_id,
            "date": _utc(self.date) if self.date is not None else None,
            "sender": _clean(self.sender) if self.sender is not None else None,
            "recipients": "\n".join(_line(address) for address in self.recipients),
            "subject": _clean(self.subject) if self.subject is not None else None,
            "answers": "\n".join(_line(answered) for answered in self.answers),
            "automatic": self.automatic,
            "report": self.report,
            "kind": self.kind,
            "followup_key": self.followup_key,
            "delivery_status": _line(self.delivery_status)[:16] if self.delivery_status else None,
            "diagnostic": _clean(self.diagnostic) if self.diagnostic else None,
            "problem": "; ".join(problems) or None,
        }


@dataclass(frozen=True)
class StoredMessage:
    """A message recorded: its header facts and what the sync made of it."""

    id: int
    owner: str | None
    folder: str
    uidvalidity: int
    uid: int
    message_id: str | None
    date: datetime | None
    sender: str | None
    recipients: tuple[str, ...]
    subject: str | None
    answers: tuple[str, ...]
    automatic: bool
    report: bool
    kind: MailKind
    followup_key: str | None
    delivery_status: str | None
    diagnostic: str | None
    problem: str | None
    created_at: datetime


def folder_state(session: Session, owner: str | None, folder: str) -> FolderState | None:
    """Where the last pass over `folder` of `owner`'s mailbox stopped; None: never read."""
    row = session.execute(
        select(MailFolder).where(MailFolder.owner == _mailbox(owner), MailFolder.folder == folder)
    ).scalar_one_or_none()
    if row is None:
        return None
    return FolderState(
        owner=row.owner or None,
        folder=row.folder,
        account=row.account,
        uidvalidity=row.uidvalidity,
        last_uid=row.last_uid,
        highest_modseq=row.highest_modseq,
        updated_at=row.updated_at,
    )


def save_folder_state(
    session: Session,
    owner: str | None,
    folder: str,
    *,
    account: str,
    uidvalidity: int,
    last_uid: int,
    highest_modseq: int | None,
    at: datetime,
) -> None:
    """Record where a pass over `folder` stopped: made the first time, replaced after."""
    values = {
        "account": account,
        "uidvalidity": uidvalidity,
        "last_uid": last_uid,
        "highest_modseq": highest_modseq,
        "updated_at": at,
    }
    statement = (
        _insert(session)(MailFolder)
        .values(owner=_mailbox(owner), folder=folder, **values)
        .on_conflict_do_update(index_elements=["owner", "folder"], set_=values)
    )
    session.execute(statement)


def reset_folder(
    session: Session, owner: str | None, folder: str, uidvalidity: int, at: datetime
) -> bool:
    """Start `folder` over under a new UIDVALIDITY: every UID is to read again.

    The messages recorded from it stay: read again under their new UIDs,
    they are recognised and not recorded twice. False: the folder was never read.
    """
    result = session.execute(
        update(MailFolder)
        .where(MailFolder.owner == _mailbox(owner), MailFolder.folder == folder)
        .values(uidvalidity=uidvalidity, last_uid=0, highest_modseq=None, updated_at=at)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def record_messages(
    session: Session,
    owner: str | None,
    folder: str,
    uidvalidity: int,
    rows: Iterable[NewMessage],
    at: datetime,
) -> list[int]:
    """Record the messages read in `folder`; return the ids of those recorded now, in order.

    A message recorded already, by its UID in this folder and UIDVALIDITY, or
    by its fingerprint anywhere in the mailbox, is left as it was.
    """
    made = record_new_messages(session, owner, folder, uidvalidity, rows, at)
    return [message.id for message in made]


def record_new_messages(
    session: Session,
    owner: str | None,
    folder: str,
    uidvalidity: int,
    rows: Iterable[NewMessage],
    at: datetime,
) -> list[StoredMessage]:
    """`record_messages`, giving the messages recorded now as stored, in id order.

    What was stored comes back with the INSERT (RETURNING): nothing is read again.
    """
    where = {"owner": _mailbox(owner), "folder": folder, "uidvalidity": uidvalidity}
    made = [{**row.columns(), **where, "created_at": at} for row in rows]
    table = MailMessage.__table__
    statement = _insert(session)(table).on_conflict_do_nothing().returning(*table.columns)
    connection = session.connection()
    found: list[StoredMessage] = []
    for chunk in chunked(made):
        found += [_stored(row) for row in connection.execute(statement, list(chunk))]
    return sorted(found, key=lambda message: message.id)


def recorded_messages(session: Session, ids: Sequence[int]) -> list[StoredMessage]:
    """The messages with these ids, in id order (the order they were recorded in)."""
    found: list[StoredMessage] = []
    for chunk in chunked(sorted(set(ids))):
        rows = session.execute(
            select(record(MailMessage, "message")).where(MailMessage.id.in_(chunk))
        )
        found += [_stored(row) for (row,) in rows]
    return sorted(found, key=lambda message: message.id)


def recorded_by_message_id(
    session: Session, owner: str | None, message_ids: Iterable[str]
) -> dict[str, StoredMessage]:
    """The messages of `owner`'s mailbox recorded with each of `message_ids`, as given.

    What a reply answers when it is not a followupd message: one the owner
    sent from their mail client, say. An id recorded nowhere is left out.
    """
    wanted: dict[str, set[str]] = {}
    for given in message_ids:
        bare = _bare_id(given)
        if bare:
            wanted.setdefault(f"<{bare}>", set()).add(given)
            wanted.setdefault(bare, set()).add(given)
    found: dict[str, StoredMessage] = {}
    for chunk in chunked(sorted(wanted)):
        query = select(record(MailMessage, "message")).where(
            MailMessage.owner == _mailbox(owner), MailMessage.message_id.in_(chunk)
        )
        for (row,) in session.execute(query):
            for given in wanted.get(row.message_id or "", ()):
                found[given] = _stored(row)
    return found


def classify(
    session: Session, message: int, kind: MailKind, followup_key: str | None = None
) -> None:
    """Say what the message of id `message` is, and which follow-up it answers or bounces."""
    session.execute(
        update(MailMessage)
        .where(MailMessage.id == message)
        .values(kind=kind, followup_key=followup_key)
        .execution_options(synchronize_session=False)
    )


def classify_all(session: Session, classified: Iterable[tuple[int, MailKind, str | None]]) -> None:
    """`classify` many messages, each (message id, kind, follow-up key), in one statement."""
    table = cast(Table, MailMessage.__table__)
    params = [
        {"message": message, "new_kind": kind, "new_followup_key": followup_key}
        for message, kind, followup_key in classified
    ]
    if not params:
        return
    statement = (
        update(table)
        .where(table.c.id == bindparam("message"))
        .values(
            kind=bindparam("new_kind", type_=table.c.kind.type),
            followup_key=bindparam("new_followup_key", type_=table.c.followup_key.type),
        )
    )
    session.connection().execute(statement, params)


def followups_by_message_id(
    session: Session, message_ids: Iterable[str]
) -> dict[str, list[FollowUpRow]]:
    """The follow-ups sent as each of `message_ids` (with or without angle brackets).

    Usually one; the reminders a digest carried share its Message-ID. An id
    that names no follow-up is left out.
    """
    wanted: dict[str, set[str]] = {}
    for given in message_ids:
        bare = _bare_id(given)
        if bare:
            wanted.setdefault(f"<{bare}>", set()).add(given)
    found: dict[str, list[FollowUpRow]] = {}
    for chunk in chunked(sorted(wanted)):
        query = select(record(FollowUp, "followup")).where(FollowUp.message_id.in_(chunk))
        for (row,) in session.execute(query):
            for given in wanted.get(row.message_id or "", ()):
                found.setdefault(given, []).append(row)
    return {given: sorted(rows, key=lambda row: row.key) for given, rows in found.items()}


def forget_messages(session: Session, before: datetime) -> int:
    """Delete the messages recorded before `before`; return how many there were.

    A folder is not read again below its last UID, so a message forgotten is
    not seen again, unless its folder starts over (a new UIDVALIDITY): a sync
    starting a folder over leaves out messages dated before `before`.
    """
    result = session.execute(
        delete(MailMessage)
        .where(MailMessage.created_at < before)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _insert(session: Session) -> Any:
    return insert_of(session)


def _mailbox(owner: str | None) -> str:
    return owner or _SHARED


def _stored(row: Any) -> StoredMessage:
    """A row of `MailMessage`'s columns (a model's, or a result row's) as a message."""
    return StoredMessage(
        id=row.id,
        owner=row.owner or None,
        folder=row.folder,
        uidvalidity=row.uidvalidity,
        uid=row.uid,
        message_id=row.message_id,
        date=row.date,
        sender=row.sender,
        recipients=tuple(row.recipients.splitlines()),
        subject=row.subject,
        answers=tuple(row.answers.splitlines()),
        automatic=row.automatic,
        report=row.report,
        kind=row.kind,
        followup_key=row.followup_key,
        delivery_status=row.delivery_status,
        diagnostic=row.diagnostic,
        problem=row.problem,
        created_at=row.created_at,
    )


def _bare_id(message_id: str) -> str:
    """A Message-ID without its angle brackets and blanks: ``<a@b>`` and ``a@b`` are one."""
    return message_id.strip().removeprefix("<").removesuffix(">").strip()


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.utcoffset() is None else moment.astimezone(UTC)


def _clean(text: str) -> str:
    """`text` as both databases can store it: no NUL, no lone surrogate (undecoded bytes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "replace").decode("utf-8")
    return text.replace("\0", "\ufffd")


def _line(text: str) -> str:
    """One item of a one-a-line column: no line break of its own."""
    return " ".join(_clean(text).splitlines()).strip()
