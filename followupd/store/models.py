"""The tables: what the user tells followupd, and what followupd has done about it.

Every record the user manages has a natural key (``key``, or ``number`` for an
invoice) by which imports, the command line and calendar events find it.
The ``followups`` table is the outbox: its unique ``key`` is what makes each
follow-up happen at most once, whatever crashes or restarts in between.

No ``from __future__ import annotations`` here: with it SQLAlchemy evaluates
each ``Mapped[...]`` string at import (~10 ms of every command that opens the
store); a class named before it is defined is quoted (``list["Invoice"]``).
"""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column, relationship

from followupd.domain.payments import Payment
from followupd.domain.states import (
    Audience,
    CalendarObjectKind,
    CalendarState,
    Channel,
    ClientKind,
    FollowUpState,
    MailKind,
    MissionStatus,
    Severity,
    TouchpointKind,
)
from followupd.store.types import Payments, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _one_of(column: str, words: type[StrEnum]) -> str:
    """The CHECK that keeps `column` to the words of `words`."""
    return f"{column} IN ({', '.join(repr(word.value) for word in words)})"


def _words(words: type[StrEnum], length: int) -> Enum:
    """A column of `words`, stored as their values in a VARCHAR(length), read back as members.

    No native ENUM type and no unnamed CHECK of SQLAlchemy's: the CHECK is the
    table's own (`_one_of`), named, and changed by a migration with the set.
    """
    return Enum(
        words,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda members: [member.value for member in members],
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        Decimal: Numeric(14, 2),
    }


class Client(Base):
    __tablename__ = "clients"
    __table_args__ = (CheckConstraint(_one_of("kind", ClientKind), name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(2))  # None: the owner's
    timezone: Mapped[str | None] = mapped_column(String(64))
    country: Mapped[str | None] = mapped_column(String(2))
    kind: Mapped[ClientKind] = mapped_column(
        _words(ClientKind, 8), default=ClientKind.BUSINESS, server_default=ClientKind.BUSINESS
    )
    # a ladder of [rules.invoice_due.profiles]; None: the rule's own steps
    profile: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(Text)  # postal, for a formal letter

    contacts: Mapped[list["Contact"]] = relationship(back_populates="client")
    missions: Mapped[list["Mission"]] = relationship(back_populates="client")


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    language: Mapped[str | None] = mapped_column(String(2))  # None: the client's
    greetings: Mapped[bool] = mapped_column(default=True)

    client: Mapped[Client] = relationship(back_populates="contacts")


class Mission(Base):
    __tablename__ = "missions"
    __table_args__ = (CheckConstraint(_one_of("status", MissionStatus), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    start: Mapped[date]
    end: Mapped[date | None]
    status: Mapped[MissionStatus] = mapped_column(
        _words(MissionStatus, 16), default=MissionStatus.ACTIVE
    )
    contract_signed: Mapped[date | None]
    deposit_amount: Mapped[Decimal | None]
    deposit_paid: Mapped[date | None]
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    status_update_every_days: Mapped[int | None]
    deliverables: Mapped[bool] = mapped_column(default=True)
    paused_until: Mapped[date | None]
    # the contract's late-payment rate, percent a year; None: the legal default
    late_payment_rate: Mapped[Decimal | None] = mapped_column(Numeric(6, 3))
    # the [[owners]] key of the consultant it belongs to; None: the first owner
    owner: Mapped[str | None] = mapped_column(String(40))

    client: Mapped[Client] = relationship(back_populates="missions")
    contact: Mapped[Contact | None] = relationship()
    invoices: Mapped[list["Invoice"]] = relationship(back_populates="mission")
    issues: Mapped[list["Issue"]] = relationship(back_populates="mission")
    touchpoints: Mapped[list["Touchpoint"]] = relationship(back_populates="mission")


class Invoice(Base):
    __tablename__ = "invoices"
    # Few have a promise: each pass looks them up. Migration 0014 makes the index partial on
    # both engines (WHERE promised IS NOT NULL); only SQLite's predicate is declared here:
    # declaring PostgreSQL's would load SQLAlchemy's PostgreSQL dialect with the models, in
    # every command on SQLite (the comparison of models and migrations does not read it).
    __table_args__ = (
        Index("ix_invoices_promised", "promised", sqlite_where=text("promised IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(120), unique=True)
    mission_id: Mapped[int] = mapped_column(ForeignKey("missions.id"), index=True)
    amount: Mapped[Decimal]
    issued: Mapped[date]
    due: Mapped[date]
    paid: Mapped[date | None]  # paid in full
    payments: Mapped[tuple[Payment, ...]] = mapped_column(
        Payments(), default=(), server_default=text("'[]'")
    )
    promised: Mapped[date | None]  # the client promised to pay by then

    mission: Mapped[Mission] = relationship(back_populates="invoices")


class Issue(Base):
    """A problem on a mission (``issues`` in the data file)."""

    __tablename__ = "issues"
    __table_args__ = (CheckConstraint(_one_of("severity", Severity), name="severity"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    mission_id: Mapped[int] = mapped_column(ForeignKey("missions.id"), index=True)
    opened: Mapped[datetime]
    severity: Mapped[Severity] = mapped_column(_words(Severity, 8), default=Severity.MEDIUM)
    summary: Mapped[str] = mapped_column(Text)
    client_informed: Mapped[datetime | None]
    resolved: Mapped[datetime | None]

    mission: Mapped[Mission] = relationship(back_populates="issues")


class Touchpoint(Base):
    """A contact with the client that happened.

    Touchpoints have no key of their own in the data file; ``key`` is derived
    from mission, kind, instant and contact so that a re-import matches them.
    """

    __tablename__ = "touchpoints"
    __table_args__ = (CheckConstraint(_one_of("kind", TouchpointKind), name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(400), unique=True)
    mission_id: Mapped[int] = mapped_column(ForeignKey("missions.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    kind: Mapped[TouchpointKind] = mapped_column(_words(TouchpointKind, 16))
    at: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(Text)

    mission: Mapped[Mission] = relationship(back_populates="touchpoints")
    contact: Mapped[Contact | None] = relationship()


class FollowUp(Base):
    """One follow-up, from intent to outcome: the outbox row."""

    __tablename__ = "followups"
    __table_args__ = (
        CheckConstraint(_one_of("state", FollowUpState), name="state"),
        CheckConstraint(_one_of("audience", Audience), name="audience"),
        CheckConstraint(_one_of("channel", Channel), name="channel"),
        Index("ix_followups_state_due_at", "state", "due_at"),
        Index("ix_followups_state_next_attempt_at", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(400), unique=True)
    rule: Mapped[str] = mapped_column(String(40), index=True)
    step: Mapped[str] = mapped_column(String(80))
    subject_key: Mapped[str] = mapped_column(String(200))  # the invoice, issue, mission…
    # what it is about, whatever the period: its calendar item (`LiveItem`), and what a
    # catch-up collapses; the rule and subject for a repeating reminder, else the key
    concern: Mapped[str] = mapped_column(String(400), index=True)
    mission_id: Mapped[int | None] = mapped_column(ForeignKey("missions.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    audience: Mapped[Audience] = mapped_column(_words(Audience, 8))
    # the owner it was recorded for (their address, calendar, feed); None: the first
    owner: Mapped[str | None] = mapped_column(String(40))
    channel: Mapped[Channel] = mapped_column(_words(Channel, 8))
    recipient: Mapped[str | None] = mapped_column(String(320))
    language: Mapped[str] = mapped_column(String(2))
    subject: Mapped[str] = mapped_column(Text)
    # the message as rendered when recorded: every attempt sends the same content
    body: Mapped[str] = mapped_column(Text, default="")
    thread_key: Mapped[str | None] = mapped_column(String(400), index=True)
    due_at: Mapped[datetime]
    # the end of its grace: delivered later than this, it would be too late
    expires_at: Mapped[datetime | None]
    late: Mapped[bool] = mapped_column(default=False)
    state: Mapped[FollowUpState] = mapped_column(
        _words(FollowUpState, 12), default=FollowUpState.PENDING
    )
    reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    # what a reply names in In-Reply-To or References, and a bounce in its report
    message_id: Mapped[str | None] = mapped_column(String(400), index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(120))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # a file for the owner, attached to the calendar item (the formal notice to pay as a
    # PDF): loaded only when asked for (`store.attachments`), never with the row
    attachment: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    attachment_name: Mapped[str | None] = mapped_column(String(200))
    # the formal notice that file is, as of evaluation (domain.formal_notice_record): its
    # PDF is made from it when asked for; a row recorded before schema 0013 has the bytes
    letter: Mapped[str | None] = deferred(mapped_column(Text))


class LiveItem(Base):
    """The one calendar item of a concern: what the owner's calendar and feed show of it.

    A reminder that repeats is one item, updated in place at each period
    (`followup_key` says which period it shows), not a pile of items; a
    one-off follow-up is an item of its own. The item also holds what the
    user did to it in their calendar app, which outlives the follow-ups
    housekeeping deletes: dismissed (cancelled or deleted there), snoozed (its
    due moved later), completed.
    """

    __tablename__ = "live_items"
    __table_args__ = (CheckConstraint(_one_of("state", CalendarState), name="state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    concern: Mapped[str] = mapped_column(String(400), unique=True)
    # the concern plus ``@followupd``; an item written before schema 0008 keeps its own
    uid: Mapped[str] = mapped_column(String(400), unique=True)
    owner: Mapped[str | None] = mapped_column(String(40))
    rule: Mapped[str] = mapped_column(String(40))
    step: Mapped[str] = mapped_column(String(80))
    followup_key: Mapped[str] = mapped_column(String(400))  # the period it shows
    subject_key: Mapped[str] = mapped_column(String(200))  # the invoice, issue, mission…
    mission_id: Mapped[int | None] = mapped_column(ForeignKey("missions.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    language: Mapped[str] = mapped_column(String(2))
    summary: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)  # the period's body, as rendered
    # the period's due time, as followupd wrote it: a meeting to place raised after it is
    # offered at the owner's next working time (followupd.domain.meeting_place)
    due_at: Mapped[datetime]
    first_raised_at: Mapped[datetime]  # the due time of its first period
    times_raised: Mapped[int] = mapped_column(default=1)
    sequence: Mapped[int] = mapped_column(default=0)  # its iCalendar SEQUENCE
    # where it is in the owner's CalDAV calendar; None: in the feed only, or deleted there
    href: Mapped[str | None] = mapped_column(String(1000))
    state: Mapped[CalendarState] = mapped_column(_words(CalendarState, 12))
    by_user: Mapped[bool] = mapped_column(default=False)  # closed in the user's app
    # the user's due time (moved later in their app): no repeat before it
    snoozed_until: Mapped[datetime | None]
    # raised again on the user's date, its concern repeats this many working days later
    # than the rule's periods (0: as the rule says)
    repeat_offset: Mapped[int] = mapped_column(default=0, server_default="0")
    # when followupd's alarm in the calendar fires (the due it last wrote, or its next
    # working time for a task raised late); None: its due
    alarm_at: Mapped[datetime | None]
    # when the user completed it, as their app wrote it; None: `updated_at` stands for it
    completed_at: Mapped[datetime | None]
    reason: Mapped[str | None] = mapped_column(Text)  # why it was closed
    # an item of before schema 0008 that a newer one of its concern replaced: closed in
    # the calendar at the next delivery pass, for this reason
    retire: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SyncState(Base):
    """Where the last sync of a source stopped (a CalDAV sync token, say)."""

    __tablename__ = "sync_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(1000), unique=True)
    token: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]


class CalendarObject(Base):
    """An object of a synced calendar as last seen, and what followupd made of it.

    The ETag tells whether it changed when the server cannot sync by token;
    `derived` lists the touchpoints it produced (one key a line), so that a
    meeting moved or deleted in the calendar takes its touchpoint with it.
    A meeting series (or a meeting further ahead than its occurrences are
    stored) keeps its text in `series`, read in `series_zone`, so that its
    occurrences are stored further ahead as time passes (up to
    `expanded_until`) without fetching it again.
    """

    __tablename__ = "calendar_objects"
    __table_args__ = (UniqueConstraint("calendar", "href"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar: Mapped[str] = mapped_column(String(1000))  # the collection's URL
    href: Mapped[str] = mapped_column(String(1000))
    etag: Mapped[str | None] = mapped_column(String(400))
    uid: Mapped[str | None] = mapped_column(String(1000))
    kind: Mapped[CalendarObjectKind] = mapped_column(_words(CalendarObjectKind, 12))
    mission_key: Mapped[str | None] = mapped_column(String(120))
    derived: Mapped[str | None] = mapped_column(Text)
    problem: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]
    series: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    series_zone: Mapped[str | None] = mapped_column(String(64))
    expanded_until: Mapped[datetime | None] = mapped_column(index=True)


class CalendarMeeting(Base):
    """An occurrence of a meeting in a synced calendar, stored until it counts.

    Each becomes `meeting` touchpoints once it has ended (see
    followupd.sources.caldav.meetings), and then goes; one whose attendees are no
    contact (yet) waits a while for them. A change or delete of its object
    replaces or deletes its occurrences.
    """

    __tablename__ = "calendar_meetings"

    id: Mapped[int] = mapped_column(primary_key=True)
    object_id: Mapped[int] = mapped_column(
        ForeignKey("calendar_objects.id", ondelete="CASCADE"), index=True
    )
    starts_at: Mapped[datetime]  # the touchpoint's time
    ends_at: Mapped[datetime] = mapped_column(index=True)  # from when it counts
    summary: Mapped[str] = mapped_column(Text)
    attendees: Mapped[str] = mapped_column(Text)  # email addresses, lower case, one a line
    named: Mapped[str] = mapped_column(Text)  # mission keys in brackets in the title, one a line


class MailFolder(Base):
    """Where the sync of one folder of a mailbox stopped, as mbsync keeps it.

    Within one UIDVALIDITY, UIDs only grow: a pass fetches the headers of
    the UIDs above `last_uid`. A new UIDVALIDITY (the server renumbered the
    folder) starts the folder over; the messages recorded stay, so that none
    is recorded twice (see `MailMessage`).

    `owner` is the key of the owner whose own mailbox (``[owners.imap]``) it
    is, or "" for ``[imap]`` (the single owner's, or the one owners share):
    not NULL as elsewhere, because SQL tells NULLs apart in a unique
    constraint, on both engines, and the folder must be unique per mailbox.
    """

    __tablename__ = "mail_folders"
    __table_args__ = (UniqueConstraint("owner", "folder"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(String(40), default="", server_default="")
    # the account it was read from (user@host:port): another one starts the folder over
    account: Mapped[str] = mapped_column(String(400))
    folder: Mapped[str] = mapped_column(String(400))  # as the server names it, decoded
    uidvalidity: Mapped[int] = mapped_column(BigInteger)  # 32 bits, unsigned
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)  # the highest UID read
    highest_modseq: Mapped[int | None] = mapped_column(BigInteger)  # CONDSTORE: 63 bits
    updated_at: Mapped[datetime]


class MailMessage(Base):
    """A message read in a mailbox: its header facts only, and what the sync made of it.

    Never a body. A message is recorded once per mailbox (`owner`), whatever
    folder or UIDVALIDITY it is seen in again: its `fingerprint` is a digest
    of its Message-ID, or, for a message without one, of its date, sender,
    recipients and subject, and it is unique per mailbox. `recipients` and
    `answers` (the Message-IDs of In-Reply-To and References) are one a line.
    """

    __tablename__ = "mail_messages"
    __table_args__ = (
        CheckConstraint(_one_of("kind", MailKind), name="kind"),
        UniqueConstraint(
            "owner", "folder", "uidvalidity", "uid", name="uq_mail_messages_folder_uid"
        ),
        UniqueConstraint("owner", "fingerprint", name="uq_mail_messages_fingerprint"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(String(40), default="", server_default="")  # as MailFolder
    folder: Mapped[str] = mapped_column(String(400))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    fingerprint: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    date: Mapped[datetime | None]
    sender: Mapped[str | None] = mapped_column(Text)
    recipients: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str | None] = mapped_column(Text)
    answers: Mapped[str] = mapped_column(Text, default="")
    automatic: Mapped[bool] = mapped_column(default=False)  # an auto-reply (RFC 3834)
    report: Mapped[bool] = mapped_column(default=False)  # a delivery report (RFC 3464)
    kind: Mapped[MailKind] = mapped_column(_words(MailKind, 12), default=MailKind.OTHER)
    # the follow-up it answers or bounces, by key (the follow-up may be deleted before it)
    followup_key: Mapped[str | None] = mapped_column(String(400), index=True)
    # a bounce's: the DSN's Status (RFC 3463, "5.1.1") and Diagnostic-Code, one line
    delivery_status: Mapped[str | None] = mapped_column(String(16))
    diagnostic: Mapped[str | None] = mapped_column(Text)
    problem: Mapped[str | None] = mapped_column(Text)  # what could not be read of it
    created_at: Mapped[datetime] = mapped_column(index=True)  # housekeeping deletes by it
