"""What the messages a mailbox sync recorded mean, and what followupd does about them.

From their header facts only (sender, recipients, subject, date, the
Message-IDs they answer; never a body):

- a message in an inbox folder from a contact, or answering a followupd
  email or a message the owner sent, is the client's reply (`MailKind.REPLY`):
  an ``email`` touchpoint; when it answers a client email of a money rule,
  its `followup_key` names that email, and the rest of that subject's client
  emails wait (`followupd.rules.replies`) while the owner gets a
  `client_replied` task. An automatic reply (out-of-office) is no reply;
- a message in a sent folder from an owner to a contact (not a followupd
  email copied there) is the owner's (`MailKind.SENT`): an ``email``
  touchpoint, or a ``status_update`` one when its subject matches
  ``[rules.status_update_due] subject_pattern``, which restarts the status
  update cadence;
- a delivery status notification of a followupd email (`MailKind.BOUNCE`,
  as the sync found it) marks that follow-up `failed`, with the
  notification's status and diagnostic; the owner gets an `email_bounced`
  task.

Touchpoints are about the mission of the follow-up answered, else the
contact's missions (see `followupd.sources.imap.correspondents`); their
instant is the message's Date (when it was read if it has none, or one
ahead of that), and their key is derived as an import derives it, so a
message acted on twice makes nothing twice. A batch is decided in memory
and written in a few statements (its classifications in one, its
touchpoints in one per few hundred), in one savepoint; if that fails, it is
rolled back and each message is acted on again in a savepoint of its own:
one that fails is rolled back, logged with its folder and UID, and the
others go on.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from followupd.config.rule_options import StatusUpdateDueOptions
from followupd.config.settings import Settings
from followupd.domain.business_calendar import BusinessCalendar
from followupd.domain.identity import touchpoint_key
from followupd.domain.states import Audience, Channel, MailKind, TouchpointKind
from followupd.rules.replies import MONEY_RULES, reply_pauses
from followupd.sources.imap.correspondents import (
    Concerned,
    Correspondents,
    Person,
    correspondents,
)
from followupd.store.chunks import chunked
from followupd.store.coordination import CHANGED, announce
from followupd.store.mailbox import (
    StoredMessage,
    classify_all,
    followups_by_message_id,
    recorded_by_message_id,
)
from followupd.store.models import Touchpoint
from followupd.store.outbox.bounces import bounce_reason, mark_bounced
from followupd.store.outbox.rows import FollowUpRow
from followupd.store.upserts import insert_of

log = logging.getLogger("followupd.mail")

# what the meaning of a message is decided for: the sync's OTHER, and a message acted on
# already (decided again, to the same effect)
UNDECIDED = frozenset({MailKind.OTHER, MailKind.REPLY, MailKind.SENT})


@dataclass
class MailActions:
    """What acting on a batch of messages did; each list says what changed now, in order."""

    replies: list[int] = field(default_factory=list)  # ids of the messages read as replies
    sent: list[int] = field(default_factory=list)  # ids of the owner's messages to contacts
    touchpoints: list[str] = field(default_factory=list)  # keys made (status updates too)
    status_updates: list[str] = field(default_factory=list)  # keys of those that are
    bounced: dict[str, str] = field(default_factory=dict)  # follow-up key -> reason: failed
    # (rule, invoice or mission) -> the day its client emails wait until, after a reply
    paused: dict[tuple[str, str], date] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)  # message id -> why it failed

    def add(self, other: MailActions) -> None:
        """Count what `other` did too."""
        self.replies += other.replies
        self.sent += other.sent
        self.touchpoints += other.touchpoints
        self.status_updates += other.status_updates
        self.bounced.update(other.bounced)

    @property
    def changed(self) -> bool:
        return bool(self.replies or self.sent or self.touchpoints or self.bounced)

    def summary(self) -> str:
        """One line for the command line and the log: how many of each."""
        return ", ".join((
            _counted(len(self.replies), "reply", "replies"),
            _counted(len(self.sent), "message", "messages") + " sent to contacts",
            _counted(len(self.touchpoints), "touchpoint", "touchpoints"),
            _counted(len(self.status_updates), "status update", "status updates"),
            _counted(len(self.bounced), "bounce", "bounces"),
            _counted(len(self.paused), "subject", "subjects") + " paused",
            _counted(len(self.failed), "message", "messages") + " failed",
        ))  # fmt: skip


def _counted(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


@dataclass(frozen=True)
class _Lookups:
    """What a batch's messages name, looked up once for all of them."""

    followups: dict[str, list[FollowUpRow]]  # by Message-ID, as a message gives it
    owned: dict[str | None, dict[str, StoredMessage]]  # by mailbox: messages recorded there
    people: Correspondents
    owner_addresses: dict[str | None, frozenset[str]]  # by mailbox: the addresses of its owners
    sent_folders: Collection[tuple[str | None, str]]

    def owners_message(self, message: StoredMessage) -> bool:
        """Whether `message` is one the owner sent: in a sent folder, from their address."""
        mine = self.owner_addresses.get(message.owner, frozenset())
        in_sent = (message.owner, message.folder) in self.sent_folders
        return message.kind == MailKind.SENT or (in_sent and (message.sender or "") in mine)


def act_on_mail(
    session: Session,
    settings: Settings,
    messages: Sequence[StoredMessage],
    sent_folders: Collection[tuple[str | None, str]],
    at: datetime,
) -> MailActions:
    """Decide what each of `messages` is, and act on it; see the module's docstring.

    `sent_folders` are the (mailbox, folder) pairs of the sent folders: the
    mailbox is the key of the owner it is kept for, or None for ``[imap]``.
    """
    actions = MailActions()
    # a bounce is written by a machine too (`automatic`), but it is acted on
    acted = [m for m in messages if m.kind == MailKind.BOUNCE or not _automatic(m)]
    if not acted:
        return actions
    lookups = _look_up(session, settings, acted, sent_folders)
    try:
        with session.begin_nested():
            done, subjects = _act_on(session, settings, lookups, acted, at)
    except Exception as error:  # some message's: each is acted on alone, to find which
        log.debug("acting on %d messages at once failed (%s: %s): one by one",
                  len(acted), type(error).__name__, error)  # fmt: skip
        done, subjects = [], set()
        for message in acted:
            try:
                with session.begin_nested():
                    alone, its_subjects = _act_on(session, settings, lookups, [message], at)
            except Exception as error:  # this message alone: the others go on
                actions.failed[message.id] = _failed(message, error)
                continue
            done += alone
            subjects |= its_subjects
    for one in done:
        actions.add(one)
    if subjects:
        calendar = BusinessCalendar(settings.business)
        since = at - timedelta(days=1)
        pauses = reply_pauses(session, settings, calendar, since=since, subjects=subjects)
        actions.paused = {subject: pause.until for subject, pause in sorted(pauses.items())}
    if actions.changed:
        announce(session, CHANGED)
    return actions


def _failed(message: StoredMessage, error: Exception) -> str:
    """Why `message` was not acted on; logged with its mailbox, folder and UID."""
    why = f"{type(error).__name__}: {error}"
    log.warning("mailbox %s, folder %s, UID %s: not acted on: %s",
                message.owner or "[imap]", message.folder, message.uid, why)  # fmt: skip
    return why


def _act_on(
    session: Session,
    settings: Settings,
    lookups: _Lookups,
    messages: Sequence[StoredMessage],
    at: datetime,
) -> tuple[list[MailActions], set[tuple[str, str]]]:
    """Act on `messages`: what each did, in order, and the (rule, subject) of the client
    emails their replies pause. Their classifications and touchpoints are written last."""
    writes = _Writes()
    done: list[MailActions] = []
    subjects: set[tuple[str, str]] = set()
    for message in messages:
        its = MailActions()
        done.append(its)
        if message.kind == MailKind.BOUNCE:
            _bounce(session, message, at, its)
        elif message.kind not in UNDECIDED:
            continue
        elif (message.owner, message.folder) in lookups.sent_folders:
            _sent(settings, lookups, message, at, writes, its)
        elif (subject := _reply(lookups, message, at, writes, its)) is not None:
            subjects.add(subject)
    writes.write(session)
    return done, subjects


@dataclass
class _Writes:
    """The classifications and touchpoints of a batch, gathered to be written at once."""

    classified: dict[int, tuple[MailKind, str | None]] = field(default_factory=dict)
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # touchpoints, by key
    # each message's touchpoints, in order: what it did, of which kind, their keys
    asked: list[tuple[MailActions, TouchpointKind, list[str]]] = field(default_factory=list)

    def classify(self, message: int, kind: MailKind, followup_key: str | None = None) -> None:
        self.classified[message] = (kind, followup_key)

    def touch(
        self,
        pairs: Sequence[tuple[Concerned, Person | None]],
        kind: TouchpointKind,
        when: datetime,
        note: str | None,
        actions: MailActions,
    ) -> None:
        """The touchpoints of a message with each (mission, contact), counted in `actions`
        once written: those not made already (by an earlier message too)."""
        keys: list[str] = []
        for mission, person in pairs:
            key = touchpoint_key(mission.key, kind, when, person.key if person else None)
            keys.append(key)
            self.rows.setdefault(key, {
                "key": key,
                "mission_id": mission.id,
                "contact_id": person.id if person is not None else None,
                "kind": kind,
                "at": when,
                "note": note or None,
            })  # fmt: skip
        if keys:
            self.asked.append((actions, kind, keys))

    def write(self, session: Session) -> None:
        classify_all(session, [(key, *value) for key, value in self.classified.items()])
        if not self.rows:
            return
        upsert = insert_of(session)
        statement = (
            upsert(Touchpoint)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(Touchpoint.key)
        )
        made: set[str] = set()
        for chunk in chunked(list(self.rows.values())):
            made.update(session.execute(statement, list(chunk)).scalars().all())
        for actions, kind, keys in self.asked:
            new = sorted(made.intersection(keys))
            made.difference_update(new)
            actions.touchpoints += new
            if kind == TouchpointKind.STATUS_UPDATE:
                actions.status_updates += new


def _look_up(
    session: Session,
    settings: Settings,
    messages: Sequence[StoredMessage],
    sent_folders: Collection[tuple[str | None, str]],
) -> _Lookups:
    ids = {given for m in messages for given in (*m.answers, m.message_id) if given}
    followups = followups_by_message_id(session, ids)
    owned: dict[str | None, dict[str, StoredMessage]] = {}
    for mailbox in {m.owner for m in messages}:
        answers = {a for m in messages if m.owner == mailbox for a in m.answers} - set(followups)
        owned[mailbox] = recorded_by_message_id(session, mailbox, answers) if answers else {}
    addresses = {a for m in messages for a in (m.sender, *m.recipients) if a}
    addresses |= {a for found in owned.values() for sent in found.values() for a in sent.recipients}
    answered = [row for rows in followups.values() for row in rows]
    missions = {row.mission_id for row in answered if row.mission_id is not None}
    contacts = {row.contact_id for row in answered if row.contact_id is not None}
    every = frozenset(entry.email.lower() for entry in settings.owners)
    owner_addresses: dict[str | None, frozenset[str]] = {None: every}
    for entry in settings.owners:
        owner_addresses[entry.key] = frozenset({entry.email.lower()})
    return _Lookups(
        followups,
        owned,
        correspondents(session, settings, addresses, missions, contacts),
        owner_addresses,
        sent_folders,
    )


def _bounce(session: Session, message: StoredMessage, at: datetime, actions: MailActions) -> None:
    """A followupd email bounced: its follow-up failed, once."""
    if message.followup_key is None:
        return
    reason = bounce_reason(message.delivery_status, message.diagnostic)
    if mark_bounced(session, message.followup_key, reason, at):
        log.warning("%s bounced: %s", message.followup_key, reason)
        actions.bounced[message.followup_key] = reason


def _reply(
    lookups: _Lookups,
    message: StoredMessage,
    at: datetime,
    writes: _Writes,
    actions: MailActions,
) -> tuple[str, str] | None:
    """A message in an inbox folder: the client's reply, or nothing of followupd's.

    Returns the (rule, subject) of the client emails it pauses, if any.
    """
    sender = (message.sender or "").lower()
    if sender in lookups.owner_addresses.get(message.owner, frozenset()):
        return None  # the owner's own message (a copy to themselves): no client replied
    answered = _answered(lookups, message)
    owned = [
        found
        for given in message.answers
        if (found := lookups.owned.get(message.owner, {}).get(given)) is not None
        and lookups.owners_message(found)
    ]
    people = lookups.people.people([sender])
    if not people and answered is None and not owned:
        log.debug("mailbox %s, folder %s, UID %s: no reply: %s", message.owner or "[imap]",
                  message.folder, message.uid,
                  f"{sender} is no contact's" if sender else "no sender")  # fmt: skip
        return None
    if not people and owned:  # answering the owner: the people the owner wrote to
        people = lookups.people.people(a for sent in owned for a in sent.recipients)
    writes.classify(message.id, MailKind.REPLY, answered.key if answered else None)
    if message.kind != MailKind.REPLY:  # else acted on already
        actions.replies.append(message.id)
    pairs: Sequence[tuple[Concerned, Person | None]] = _pairs_of_followup(
        lookups.people, answered, people
    ) or lookups.people.missions_of(people, message.subject or "", message.owner)
    when = _instant(message, at)
    writes.touch(pairs, TouchpointKind.EMAIL, when, message.subject, actions)
    if (
        answered is not None
        and answered.audience == Audience.CLIENT
        and answered.channel == Channel.EMAIL
        and answered.rule in MONEY_RULES
    ):
        return answered.rule, answered.subject_key
    return None


def _sent(
    settings: Settings,
    lookups: _Lookups,
    message: StoredMessage,
    at: datetime,
    writes: _Writes,
    actions: MailActions,
) -> None:
    """A message in a sent folder: the owner's to a contact, or nothing of followupd's."""
    sender = (message.sender or "").lower()
    if sender not in lookups.owner_addresses.get(message.owner, frozenset()):
        return
    if message.message_id and message.message_id in lookups.followups:
        return  # followupd's own email, copied there by the server: sent already
    people = lookups.people.people(message.recipients)
    if not people:
        return
    writes.classify(message.id, MailKind.SENT)
    if message.kind != MailKind.SENT:  # else acted on already
        actions.sent.append(message.id)
    subject = message.subject or ""
    when = _instant(message, at)
    pairs = lookups.people.missions_of(people, subject, message.owner)
    updates = [pair for pair in pairs if _is_status_update(settings, pair[0], subject)]
    emails = [pair for pair in pairs if pair not in updates]
    writes.touch(updates, TouchpointKind.STATUS_UPDATE, when, message.subject, actions)
    writes.touch(emails, TouchpointKind.EMAIL, when, message.subject, actions)


def _answered(lookups: _Lookups, message: StoredMessage) -> FollowUpRow | None:
    """The followupd email a message answers: a client's first, the latest sent first."""
    rows = [row for given in message.answers for row in lookups.followups.get(given, [])]
    if not rows:
        return None

    def rank(row: FollowUpRow) -> tuple[bool, datetime, str]:
        sent = row.sent_at or row.due_at
        return row.audience == Audience.CLIENT, sent, row.key

    return max(rows, key=rank)


def _pairs_of_followup(
    people: Correspondents, answered: FollowUpRow | None, senders: Sequence[Person]
) -> list[tuple[Concerned, Person | None]]:
    """The mission of the followupd email answered, with the sender, else that email's contact."""
    if answered is None or answered.mission_id is None:
        return []
    mission = people.by_id.get(answered.mission_id)
    if mission is None:
        return []
    who = next((person for person in senders if person.client_id == mission.client_id), None)
    if who is None and answered.contact_id is not None:
        who = people.known.get(answered.contact_id)
    return [(mission, who)]


def _automatic(message: StoredMessage) -> bool:
    """An auto-reply, an out-of-office, a report: no one answered or wrote."""
    return message.automatic or message.kind == MailKind.AUTOMATIC


def _instant(message: StoredMessage, at: datetime) -> datetime:
    """When a message happened: its Date; `at` when it has none, or one ahead of `at`."""
    return message.date if message.date is not None and message.date <= at else at


def _is_status_update(settings: Settings, mission: Concerned, subject: str) -> bool:
    """Whether `subject` is a status update's, by ``[rules.status_update_due]
    subject_pattern`` as the mission's owner has it."""
    entry = settings.owner_for(mission.owner)
    override = entry.rule_overrides.get("status_update_due")
    options: StatusUpdateDueOptions = settings.rules.status_update_due
    if override:
        options = options.model_copy(update=override)
    return options.is_status_update(subject)
