"""Delivery: claim due follow-ups, check them once more, hand them over, record the outcome.

The outbox is the only truth. A claim is one atomic statement that moves due
rows to ``sending`` under a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL),
so two workers never take the same row, and a lease left by a worker that died
is taken again once it expires. A claimed batch's emails are built first,
then sent in sub-batches of `SUB_BATCH` over up to ``[smtp] connections``
connections side by side: before a sub-batch goes, one statement checks its
claims are still ours, and again for the rest of it once a record found a
claim taken over (the worker taken for dead). A message the server
accepted is recorded sent where the lease is still ours, and the next
message's end waits for that record (followupd.delivery.handover, a window of
`UNRECORDED`); failures are recorded together as they come
(followupd.delivery.group_commit). SMTP cannot be exactly-once: a crash
between the server's acceptance and that record sends that message again on
the next claim, with the same Message-ID, so a client shows it once: one
message per instance at most, whatever its connections. Database work runs
in threads, off the event loop that carries the connections; but on SQLite,
the record of sent is made on the loop when it waits for nothing
(followupd.store.outbox.sent_record): a hop to a thread and back cost more
than the statements.

Before sending, a row is checked again: past the end of its grace it is
`expired`; its reason gone (rule's `vanished`), `cancelled`; a client email
outside the send window, during the mission's pause or during the wait a
client's reply to a nudge of its subject started, is held back until they
end (after a reply, its grace runs from the end of the wait). Transient
failures are retried with exponential backoff and jitter up to a bound,
then the row is `dead`; permanent ones make it `failed` at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from operator import methodcaller
from typing import TYPE_CHECKING, TypeVar, Unpack
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Engine, Row, select
from sqlalchemy.orm import Session

from followupd.channels.email.message import Email, build_message, message_id
from followupd.channels.email.pacing import Pacer
from followupd.channels.email.sender import MailSender, mail_sender
from followupd.channels.failure import DeliveryError
from followupd.channels.letters.files import made
from followupd.config.owners import Owner, OwnerEntry
from followupd.config.settings import Settings
from followupd.delivery.client_day import client_email, one_a_day
from followupd.delivery.client_nudges import Batch, ClientNudges, Unpaid
from followupd.delivery.digest import make_digest
from followupd.delivery.group_commit import GroupCommit
from followupd.delivery.handover import ClaimsInDoubt, Handover
from followupd.delivery.holds import Holds, Place, latest
from followupd.domain import identity, items
from followupd.domain.business_calendar import BusinessCalendar, zone
from followupd.domain.owner_scope import has_calendars
from followupd.domain.states import Audience, CalendarState, Channel, FollowUpState
from followupd.rules.book import RuleBook
from followupd.rules.registry import RULES
from followupd.store import live_items
from followupd.store.attachments import Attachment, Stored, attachments
from followupd.store.chunks import chunked
from followupd.store.coordination import DUE, alive, announce
from followupd.store.db import Store
from followupd.store.models import Contact, LiveItem
from followupd.store.outbox import claim as claims
from followupd.store.outbox import digests
from followupd.store.outbox.claim import Outcome
from followupd.store.outbox.client_nudges import SentEmail
from followupd.store.outbox.rows import FollowUpRow
from followupd.store.outbox.sent_record import SentRecord
from followupd.templates.loader import TemplateProblem

if TYPE_CHECKING:  # imported where calendar items are written: emails need no iCalendar
    from followupd.channels.calendar import ical
    from followupd.channels.calendar.caldav_writer import CalendarWriter, Writers

log = logging.getLogger("followupd.delivery")

LEASE = timedelta(minutes=5)
ZERO = timedelta(0)
BATCH = 200
# emails sent after one check of their claims (checked again once a record finds one
# taken over)
SUB_BATCH = 20
# emails accepted by a server and not recorded sent, at most, per instance: what a kill
# may send twice. The handover can record a sub-batch at a time (a window of SUB_BATCH,
# fewer transactions), but then a kill sends up to 20 twice; one
# duplicate at most per killed instance is the promise kept.
UNRECORDED = 1
CHANNELS = tuple(Channel)
GONE = object()  # an item the user deleted from their calendar
T = TypeVar("T")


@dataclass(frozen=True)
class Written:
    """Where a period was written in the owner's calendar: the object's URL, and the item's
    new UID when it went into an object of its own (`Deliverer._put_item`)."""

    href: str
    uid: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: about base, 2 base, 4 base… up to cap."""

    base: timedelta = timedelta(minutes=1)
    cap: timedelta = timedelta(hours=6)
    max_attempts: int = 8

    def delay(self, attempts: int, rng: random.Random) -> timedelta:
        full: timedelta = min(self.cap, self.base * 2 ** max(0, attempts - 1))
        half: timedelta = full / 2
        return half + half * rng.random()


@dataclass
class DeliveryReport:
    sent: list[str] = field(default_factory=list)
    retrying: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    dead: dict[str, str] = field(default_factory=dict)
    cancelled: dict[str, str] = field(default_factory=dict)
    expired: list[str] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)
    closed: dict[str, str] = field(default_factory=dict)  # calendar items whose reason went
    superseded: dict[str, str] = field(default_factory=dict)  # a later period went instead
    dismissed: dict[str, str] = field(default_factory=dict)  # the user dismissed its concern
    errors: Counter[str] = field(default_factory=Counter)  # failed attempts, by channel

    @property
    def keys(self) -> list[str]:
        groups = (self.sent, self.retrying, self.failed, self.dead, self.cancelled,
                  self.expired, self.held, self.closed, self.superseded,
                  self.dismissed)  # fmt: skip
        return sorted({key for group in groups for key in group})


Attempt = tuple["Prepared", DeliveryError | None]  # an email handed over (None), or why not


@dataclass(frozen=True)
class Prepared:
    """An email built for a batch of follow-ups, and what to record once it went."""

    batch: Batch
    email: Email
    outcome: Outcome  # for the lead: the state, Message-ID, and what was made at sending
    carried: list[str]  # a digest's reminders, recorded sent with it

    @property
    def plain(self) -> bool:
        """One follow-up's own email: its outcome is one statement (SentRecord)."""
        return not self.batch.carried and "subject" not in self.outcome


@dataclass(frozen=True)
class Screened:
    """The rows of a claimed batch that may go now, and what their check read that their
    emails are built from: the missions' places, the client emails sent to each contact
    (`_prepare` adds those it builds)."""

    rows: list[FollowUpRow]
    places: dict[int, Place]
    sent_to: dict[int, list[SentEmail]]


def claim(
    session: Session,
    at: datetime,
    worker: str,
    channels: Sequence[str],
    held: ColumnElement[bool] | None = None,
) -> list[FollowUpRow]:
    """Move up to `BATCH` due rows (and rows whose lease expired) to `sending` for `worker`."""
    return claims.claim(session, at, worker, channels, batch=BATCH, lease=LEASE, held=held)


def _with_alarm_at(
    text: str, *, item: ical.CalendarItem, tz: ZoneInfo, until: datetime, before: datetime
) -> tuple[bytes, bool]:
    """A stored item rewritten with followupd's alarm at the user's date `until`."""
    from followupd.channels.calendar import ical

    return _changed(ical.updated(text, item, tz, until, [before]))


def _changed(document: bytes | None) -> tuple[bytes, bool]:
    """A rewrite's new document, and whether there is one: none for the user's meeting
    (`ical.updated`), which stays as it is."""
    return (b"", False) if document is None else (document, True)


def _finish(
    session: Session, row: FollowUpRow, worker: str, at: datetime, **values: Unpack[Outcome]
) -> bool:
    """Record an outcome where the lease is still ours; False if it was lost."""
    return claims.finish(session, row.id, worker, at, **values)


class Deliverer:
    """One delivery pass at `at`, by `worker`: the daemon and `tick` run the same code."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        worker: str,
        *,
        sender: Callable[[], MailSender] | None = None,
        calendar_writer: Callable[[], CalendarWriter] | None = None,
        retry: RetryPolicy = RetryPolicy(),
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.settings = settings
        self.worker = worker
        smtp = settings.smtp
        self.pacer = Pacer(smtp.rate_per_minute) if smtp is not None else None  # for the pass
        self.connections = smtp.connections if smtp is not None else 1
        self.sender = sender or (lambda: mail_sender(smtp, settings.state_dir, self.pacer))
        self.calendar_writer = calendar_writer or self._calendar_writer
        self.stopping = False
        self.retry = retry
        self.rng = rng or random.Random()  # noqa: S311  (jitter, not secrets)
        # how long the pass has run, for the leases it renews (`at` stays the pass's instant)
        self.monotonic = monotonic
        self.started = monotonic()
        self.holds = Holds(settings, BusinessCalendar(settings.business))
        self.held = digests.held_by(settings)
        every_rule = [cls(getattr(settings.rules, name)) for name, cls in RULES.items()]
        self.book = RuleBook(settings, every_rule, only_enabled=False)
        self.nudges = ClientNudges(settings, self.book)

    def _calendar_writer(self) -> CalendarWriter:
        if self.settings.caldav is None:  # calendar items then live in the feed only
            raise RuntimeError("no [caldav] section to write calendar items to")
        from followupd.channels.calendar.caldav_writer import CalendarWriter

        return CalendarWriter(self.settings.caldav)

    def stop(self) -> None:
        """Finish the message under way, hand the rest of the batch back, claim no more."""
        self.stopping = True

    async def run(self, at: datetime) -> DeliveryReport:
        lock = alive(self.store.engine, self.worker)  # our claims are ours while we live
        await asyncio.to_thread(lock.__enter__)
        try:
            return await self._run(at)
        finally:
            await asyncio.to_thread(lock.__exit__, None, None, None)

    async def _run(self, at: datetime) -> DeliveryReport:
        self.started = self.monotonic()
        report = DeliveryReport()
        await asyncio.to_thread(self._before, at, report)
        idle: list[MailSender] = []  # the pass's connections, kept from one batch to the next
        try:
            while not self.stopping:
                rows = await asyncio.to_thread(self._claim, at)
                if not rows:
                    return report
                ready = await asyncio.to_thread(self._screen, rows, at, report)
                try:
                    await self._send(ready, at, report, idle)
                finally:
                    await asyncio.to_thread(self._release, ready.rows, at)
                if len(rows) < BATCH:
                    return report
            return report
        finally:
            for sender in idle:
                await sender.close()

    def _before(self, at: datetime, report: DeliveryReport) -> None:
        with self.store.session() as session:
            self._digests_for_waiting(session, at, report)
            report.superseded = claims.supersede(session, at)

    def _claim(self, at: datetime) -> list[FollowUpRow]:
        with self.store.session() as session:
            return claim(session, at, self.worker, CHANNELS, self.held)

    def _digests_for_waiting(self, session: Session, at: datetime, report: DeliveryReport) -> None:
        """A digest for every reminder by email no digest will carry yet; the stale ones end.

        A reminder by email waits for its owner's digest. One put off in the
        calendar, or one whose digest went without it, waits for a digest at
        the first opening after it may go; one past its grace is expired, one
        whose concern the user dismissed is dismissed.
        """
        rows = digests.waiting(session, self.held)
        if not rows:
            return
        concerns = [row.concern for row in rows]
        dismissed = live_items.dismissed_concerns(session, concerns)
        raised = live_items.last_raises(session, concerns)
        openings: dict[str, set[datetime]] = {}
        for row in rows:
            owner = self.settings.owner_for(row.owner)
            tz, countries = zone(owner.timezone), (owner.country,)
            if row.concern in dismissed:
                why = dismissed[row.concern]
                if digests.end_waiting(session, row.key, FollowUpState.DISMISSED, why, at):
                    report.dismissed[row.key] = why
                continue
            if row.expires_at is not None and at > row.expires_at:
                why = f"missed: its grace ended {row.expires_at.astimezone(tz):%Y-%m-%d %H:%M}"
                if digests.end_waiting(session, row.key, FollowUpState.EXPIRED, why, at):
                    report.expired.append(row.key)
                continue
            last = raised.get(row.concern)
            waits = self.holds.repeat(last, row) if last is not None else None
            ready = max(row.due_at, waits[0]) if waits is not None else row.due_at
            opening = self.holds.calendar.opening_from(ready, tz, countries)
            sent = digests.last_sent(session, owner.key)
            if sent is not None and opening <= sent:
                opening = self.holds.calendar.opening_from(sent, tz, countries, strictly=True)
            openings.setdefault(owner.key, set()).add(opening)
        for key, wanted in openings.items():
            owner = self.settings.owner_for(key)
            known = digests.recorded_openings(session, key, min(wanted) - timedelta(seconds=1))
            missing = sorted(wanted - known)
            if missing:
                digests.record_digests(session, key, owner.email, owner.language, missing, at)

    def _release(self, rows: list[FollowUpRow], at: datetime) -> None:
        """Rows still claimed by us (a stop came first) go back to pending, attempt not counted."""
        with self.store.session() as session:
            released = claims.give_back(session, at, [row.id for row in rows], self.worker)
            if released:  # another instance may take them now
                announce(session, DUE)

    async def close_vanished(self, at: datetime, report: DeliveryReport) -> None:
        """Close the calendar items whose reason went, and retire those a newer one replaced.

        A task is completed, a meeting to place is cancelled, in the owner's
        CalDAV calendar when there is one and in the store (so the feed shows
        it too). An item that cannot be reached now stays open and is tried
        again on the next pass. A concern the user dismissed may be raised
        again once its reason went (a status update sent, say).
        """
        with self.store.session() as session:
            gone = self._vanished(session)
            retiring = [(item, item.retire or "") for item in live_items.to_retire(session)]
            for item, why in self._dismissals_ended(session):
                live_items.end_dismissal(session, item.id, why, at)
            closing = {item.id for item, _ in gone}
            calendars = has_calendars(self.settings)
            unwritten = [
                found
                for found in (live_items.unwritten(session) if calendars else [])
                if found[0].id not in closing  # its reason went: no need to write it now
            ]
            moving = [
                found
                for found in (live_items.alarms_to_move(session) if calendars else [])
                if found[0].id not in closing
            ]
        if not gone and not retiring and not unwritten and not moving:
            return
        from followupd.channels.calendar.caldav_writer import Writers

        writers = _OwnerCalendars(Writers(self.settings, self.calendar_writer))
        try:
            await self._write_unwritten(writers, unwritten, at)
            await self._move_alarms(writers, moving, at)
            for item, why in [*gone, *retiring]:
                owner = self.settings.owner_for(item.owner)
                state = (
                    CalendarState.CANCELLED
                    if items.is_meeting(item.rule, item.step)
                    else CalendarState.COMPLETED
                )
                href, note = item.href, f"followupd: {why}"
                if href is not None:
                    closed = await writers.act(
                        owner,
                        "calendar items left open until the next pass",
                        methodcaller("close", href, state, at, note),
                    )
                    if closed is UNREACHED:
                        continue
                with self.store.session() as session:
                    live_items.close(session, item.id, state, why, at)
                report.closed[item.followup_key] = why
        finally:
            await writers.close()

    async def _write_unwritten(
        self, writers: _OwnerCalendars, unwritten: list[live_items.FeedItem], at: datetime
    ) -> None:
        """Items open in the feed only, of an owner who now has a CalDAV calendar: written there.

        A calendar added to the config later gets what is open now, not only
        the periods to come.
        """
        from followupd.channels.calendar import ical

        with self.store.session() as session:
            files = attachments(session, [item.followup_key for item, _, _ in unwritten])
        for item, name, phone in unwritten:
            if self.stopping:
                return
            owner = self.settings.owner_for(item.owner)
            tz = zone(owner.timezone)
            file = await _made_file(item.followup_key, files.get(item.followup_key))
            body = ical.document(ical.item_of(item, tz, name, phone, file), tz)
            href = await writers.act(
                owner,
                "open items not written to the calendar yet",
                methodcaller("create", identity.object_name(item.uid), body, item.uid),
            )
            if isinstance(href, str):
                with self.store.session() as session:
                    live_items.written_at(session, item.id, href, at)

    async def _move_alarms(
        self, writers: _OwnerCalendars, moving: list[live_items.FeedItem], at: datetime
    ) -> None:
        """Items the user put off: followupd's alarm moved to their date, once.

        An app that moves a task's due leaves followupd's alarm at the old
        time (todoman does): the phone would not ring on the day chosen.
        The rewrite keeps the user's due as they wrote it, and all the app added.
        """
        from followupd.channels.calendar import ical

        for item, name, phone in moving:
            if self.stopping:
                return
            owner = self.settings.owner_for(item.owner)
            until, href = item.snoozed_until, item.href
            if until is None or href is None:
                continue
            change = partial(
                _with_alarm_at,
                item=ical.item_of(item, zone(owner.timezone), name, phone),
                tz=zone(owner.timezone),
                until=until,
                before=item.alarm_at or item.due_at,
            )
            outcome = await writers.act(
                owner,
                "calendar items not updated yet",
                methodcaller("update", href, change),
            )
            if outcome in (UNREACHED, None, "gone"):  # gone: deleted, the next sync dismisses it
                continue
            with self.store.session() as session:
                live_items.alarm_moved(session, item.id, until, at)

    def _vanished(self, session: Session) -> list[tuple[LiveItem, str]]:
        """Open items whose rule says the reason of the period they show went: (item, why)."""
        found = live_items.open_items(session)
        reasons = self.book.vanished(session, [row for _, row in found])
        return [(item, reasons[row.key]) for item, row in found if row.key in reasons]

    def _dismissals_ended(self, session: Session) -> list[tuple[LiveItem, str]]:
        found = live_items.dismissed_items(session)
        reasons = self.book.vanished(session, [row for _, row in found])
        return [(item, reasons[row.key]) for item, row in found if row.key in reasons]

    # -- before sending ---------------------------------------------------------------
    def _screen(self, rows: list[FollowUpRow], at: datetime, report: DeliveryReport) -> Screened:
        """Expire, cancel or hold back what must not go now; return what may."""
        ready: list[FollowUpRow] = []
        with self.store.session() as session:
            by_rule: dict[str, list[FollowUpRow]] = {}
            places = self.holds.places(session, rows)
            replies = self.holds.replies(session, rows, at)
            promised = self.holds.promises(session, rows)
            for row in rows:
                place = places.get(row.mission_id) if row.mission_id else None
                pause = replies.get((row.rule, row.subject_key))
                after = latest(
                    self.holds.after_reply(row, at, place, pause),
                    self.holds.after_promise(row, at, place, promised.get(row.subject_key)),
                )
                if after is not None:
                    self._hold_after_reply(session, row, at, after, report)
                elif row.expires_at is not None and at > row.expires_at:
                    tz = zone(self.settings.owner_for(row.owner).timezone)
                    ended = row.expires_at.astimezone(tz)
                    reason = f"missed: its grace ended {ended:%Y-%m-%d %H:%M}"
                    if _finish(session, row, self.worker, at, state=FollowUpState.EXPIRED,
                               reason=reason, attempts=row.attempts - 1):  # fmt: skip
                        report.expired.append(row.key)
                elif (why := self._not_by_email(row)) is not None:
                    if _finish(session, row, self.worker, at, state=FollowUpState.CANCELLED,
                               reason=why):  # fmt: skip
                        report.cancelled[row.key] = why
                else:
                    by_rule.setdefault(row.rule, []).append(row)
            waiting = [row for group in by_rule.values() for row in group]
            gone = self.book.vanished(session, waiting)
            concerns = [row.concern for row in waiting]
            dismissed = live_items.dismissed_concerns(session, concerns)
            raised = live_items.last_raises(session, concerns)
            for group in by_rule.values():
                for row in group:
                    if row.key in gone:
                        reason = gone[row.key]
                        if _finish(
                            session,
                            row,
                            self.worker,
                            at,
                            state=FollowUpState.CANCELLED,
                            reason=reason,
                        ):
                            report.cancelled[row.key] = reason
                        continue
                    if row.concern in dismissed:
                        why = dismissed[row.concern]
                        if _finish(session, row, self.worker, at,
                                   state=FollowUpState.DISMISSED, reason=why):  # fmt: skip
                            report.dismissed[row.key] = why
                        continue
                    last = raised.get(row.concern)
                    waits = self.holds.repeat(last, row) if last is not None else None
                    if waits is None or waits[0] <= at:  # its rhythm lets it go: other holds?
                        place = places.get(row.mission_id) if row.mission_id else None
                        waits = self.holds.until(row, at, place)
                    if waits is not None:
                        until, why = waits
                        _finish(session, row, self.worker, at, state=FollowUpState.PENDING,
                                reason=why, next_attempt_at=until,
                                attempts=row.attempts - 1)  # fmt: skip
                        report.held[row.key] = why
                        continue
                    ready.append(row)
            emails = [row for row in ready if client_email(row)]
            sent_to = self.nudges.sent(session, emails) if emails else {}
            ready = self._one_email_a_day(session, ready, places, sent_to, at, report)
            return Screened(ready, places, sent_to)

    def _one_email_a_day(
        self,
        session: Session,
        rows: list[FollowUpRow],
        places: dict[int, Place],
        sent_to: Mapping[int, list[SentEmail]],
        at: datetime,
        report: DeliveryReport,
    ) -> list[FollowUpRow]:
        """A contact's client emails but one, or all if one went today, wait for the next
        opening (followupd.delivery.client_day)."""
        waits = one_a_day(self.settings, rows, places, sent_to, at, self.holds.calendar,
                          self.nudges.grouped)  # fmt: skip
        ready: list[FollowUpRow] = []
        for row in rows:
            if row.key in waits:
                until, why = waits[row.key]
                _finish(session, row, self.worker, at, state=FollowUpState.PENDING,
                        reason=why, next_attempt_at=until,
                        attempts=row.attempts - 1)  # fmt: skip
                report.held[row.key] = why
                continue
            ready.append(row)
        return ready

    def _hold_after_reply(
        self,
        session: Session,
        row: FollowUpRow,
        at: datetime,
        after: tuple[datetime, str],
        report: DeliveryReport,
    ) -> None:
        """Hold a client email back until the wait its client's reply (or promise) started ends.

        Its grace runs again from then: the client's answer, not followupd
        being down, is why it waits, and it must not end up expired for it.
        """
        until, why = after
        expires = row.expires_at
        if expires is not None:
            expires = max(expires, until + (expires - row.due_at))
        _finish(session, row, self.worker, at, state=FollowUpState.PENDING, reason=why,
                next_attempt_at=until, attempts=row.attempts - 1, expires_at=expires)  # fmt: skip
        report.held[row.key] = why

    def _not_by_email(self, row: FollowUpRow) -> str | None:
        """Why an owner's reminder by email (or digest) must not go, as the owner chose."""
        if row.audience != Audience.OWNER or row.channel != Channel.EMAIL:
            return None
        mode = self.settings.owner_for(row.owner).reminders_by_email
        if row.rule == digests.RULE and mode != "digest":
            return f'no digest: reminders_by_email = "{mode}"'
        if row.rule != digests.RULE and mode == "off":
            return 'not sent: reminders_by_email = "off" (in your calendar only)'
        return None

    # -- sending ----------------------------------------------------------------------
    async def _send(
        self, ready: Screened, at: datetime, report: DeliveryReport, idle: list[MailSender]
    ) -> None:
        """Write a claimed batch's calendar items, then send its emails over up to `[smtp]
        connections` connections, taken from `idle` (the pass's, left open by the batch
        before) or opened, and left there for the next."""
        items = [row for row in ready.rows if row.channel == Channel.CALENDAR]
        if items:
            await self._write_calendar(items, at, report)
        emails = [row for row in ready.rows if row.channel == Channel.EMAIL]
        if not emails or self.stopping:
            return
        prepared = await asyncio.to_thread(self._prepare, emails, ready, at, report)
        queue = deque(prepared[start : start + SUB_BATCH]
                      for start in range(0, len(prepared), SUB_BATCH))  # fmt: skip
        record = partial(self._record, at=at, report=report)
        outcomes: GroupCommit[Attempt] = GroupCommit(record, at_least=SUB_BATCH // 2)
        sent = await _open(self.store.engine)
        try:
            handover: Handover[Prepared] = Handover(
                partial(self._record_accepted, sent=sent, at=at, report=report),
                at_once=partial(self._record_at_once, sent=sent, at=at, report=report),
                window=UNRECORDED,
            )
            connections = [
                asyncio.create_task(
                    self._connection(queue, at, outcomes, handover, report, sent, idle)
                )
                for _ in range(min(self.connections, len(queue)))
            ]
            try:
                await asyncio.gather(*connections)
            except BaseException:  # the others stop too; the first error goes up as it is
                for connection in connections:
                    connection.cancel()
                await asyncio.gather(*connections, return_exceptions=True)
                with suppress(Exception):  # what went is recorded, where the database still can
                    await handover.settled()
                with suppress(Exception):
                    await outcomes.flush()
                raise
            finally:
                with suppress(Exception):
                    await handover.settled()
            await handover.settled()
            await outcomes.flush()
            await asyncio.to_thread(sent.close)
        finally:  # whatever cancelled the awaits above (a second stop included)
            sent.close()  # at once, or by the record under way as it ends; once only

    async def _connection(
        self,
        queue: deque[list[Prepared]],
        at: datetime,
        outcomes: GroupCommit[Attempt],
        handover: Handover[Prepared],
        report: DeliveryReport,
        sent: SentRecord,
        idle: list[MailSender],
    ) -> None:
        """One connection: sends sub-batches from `queue` until it is empty, or a stop;
        their claims checked on the pass's connection for records (`sent`). The connection
        is one of `idle`, or a new one, and goes back there unless it failed."""
        taken: list[Prepared] = []
        sender = idle.pop() if idle else self.sender()
        try:
            try:
                while queue and not self.stopping:
                    sub_batch = queue.popleft()
                    taken += sub_batch
                    await self._send_sub_batch(sender, sub_batch, at, outcomes, handover, sent)
                    handover.flush()  # what went is recorded sent, while the next goes
                    await outcomes.flush()  # the failures, before the next claims are checked
            except BaseException:
                await sender.close()
                raise
            idle.append(sender)
        except DeliveryError as error:  # the connection itself failed: what it took waits
            await handover.settled()  # what went is recorded sent first
            await outcomes.flush()
            await asyncio.to_thread(self._record_failures, taken, at, error, report)

    async def _send_sub_batch(
        self,
        sender: MailSender,
        sub_batch: list[Prepared],
        at: datetime,
        outcomes: GroupCommit[Attempt],
        handover: Handover[Prepared],
        sent: SentRecord,
    ) -> None:
        """Check the claims of `sub_batch` in one transaction, then send.

        A message's end waits while `UNRECORDED` messages accepted on any
        connection are not recorded sent (followupd.delivery.handover): a crash
        sends at most that many twice. Failures are recorded together as they
        come.
        """
        checked = handover.losses
        ours = await self._still_ours(sub_batch, at, sent)
        for index, each in enumerate(sub_batch):
            while not self.stopping:  # the rest is handed back
                if handover.losses > checked:  # a record found its claim taken over
                    checked = handover.losses
                    ours = await self._still_ours(sub_batch[index:], at, sent)
                if each.batch.lead.id not in ours:
                    log.warning("%s was handed to another worker; not sent here",
                                each.batch.lead.key)  # fmt: skip
                    break
                turn = handover.turn(checked)
                try:
                    await sender.send(each.email, turn)
                except ClaimsInDoubt:  # not sent: its claim is checked again first
                    continue
                except DeliveryError as error:
                    turn.refused()
                    outcomes.add((each, error))
                except BaseException:
                    turn.refused()
                    raise
                else:
                    turn.accepted(each)
                break

    async def _still_ours(
        self, sub_batch: list[Prepared], at: datetime, sent: SentRecord
    ) -> set[int]:
        """The leads of `sub_batch` whose claims are still ours, checked right before they go
        (on the event loop's thread where that waits for nothing, as the records of sent).

        A claim can be handed back while its batch is under way (the worker's
        lock connection dropped, and the leader took it for dead): without this,
        the rest of the batch would go out twice. With it, and the check again
        once a record finds a claim taken over, only the messages in flight at
        that instant can (`UNRECORDED` at most).
        """
        # Their leases renewed from now (the pass's instant plus the time it has run) for
        # as long as the sub-batch may take at the rate limit: a pass longer than a lease
        # keeps the messages it is about to send from being taken over and sent twice.
        now = at + timedelta(seconds=self.monotonic() - self.started)
        pacing = timedelta(seconds=len(sub_batch) * self.pacer.interval) if self.pacer else ZERO
        leads, until = [each.batch.lead.id for each in sub_batch], now + LEASE + pacing
        ours = sent.renewed_at_once(leads, self.worker, until)
        if ours is None:
            ours = await asyncio.to_thread(sent.renewed, leads, self.worker, until)
        return ours

    def _record_accepted(
        self, accepted: list[Prepared], sent: SentRecord, at: datetime, report: DeliveryReport
    ) -> int:
        """Messages the server accepted, recorded sent in a thread, together: one
        transaction on the driver for the plain ones (`sent`). How many of them had their
        claim taken over."""
        plain = [each for each in accepted if each.plain]
        lost = 0
        if len(plain) < len(accepted):
            with self.store.session() as session:
                for each in accepted:
                    if not each.plain and not self._record_sent(session, each, at, report):
                        lost += 1
        if plain:
            done = sent([(each.batch.lead.id, each.email.message_id) for each in plain],
                        self.worker, at)  # fmt: skip
            lost += self._recorded(plain, done, report)
        return lost

    def _record_at_once(
        self, accepted: list[Prepared], sent: SentRecord, at: datetime, report: DeliveryReport
    ) -> int | None:
        """The same record of plain messages, made on the event loop's thread if it waits
        for nothing (`SentRecord.at_once`); None when it is for `_record_accepted`."""
        if not all(each.plain for each in accepted):
            return None
        pairs = [(each.batch.lead.id, each.email.message_id) for each in accepted]
        done = sent.at_once(pairs, self.worker, at)
        return None if done is None else self._recorded(accepted, done, report)

    @staticmethod
    def _recorded(accepted: list[Prepared], done: set[int], report: DeliveryReport) -> int:
        """Report what was recorded sent, warn of the rest: how many claims were lost."""
        lost = 0
        for each in accepted:
            lead = each.batch.lead
            if lead.id in done:
                report.sent.append(lead.key)
            else:
                log.warning("sent %s, but its lease had been taken over", lead.key)
                lost += 1
        return lost

    def _record(self, outcomes: list[Attempt], at: datetime, report: DeliveryReport) -> None:
        """Outcomes, in one transaction: one statement for the plain emails that went."""
        sent = [each for each, error in outcomes if error is None]
        failed = [(each, error) for each, error in outcomes if error is not None]
        with self.store.session() as session:
            plain = {each.batch.lead.id: each.email.message_id for each in sent if each.plain}
            recorded = claims.finish_sent(session, plain, self.worker, at) if plain else set()
            for each in sent:
                if not each.plain:
                    self._record_sent(session, each, at, report)
                elif each.batch.lead.id in recorded:
                    report.sent.append(each.batch.lead.key)
                else:
                    log.warning("sent %s, but its lease had been taken over", each.batch.lead.key)
            for each, error in failed:
                for row in each.batch.rows:
                    self._record_failure(session, row, at, error, report)

    def _record_failures(
        self, taken: list[Prepared], at: datetime, error: DeliveryError, report: DeliveryReport
    ) -> None:
        """`error` for every row of `taken` this pass has not settled yet."""
        settled = set(report.keys)
        with self.store.session() as session:
            for each in taken:
                for row in each.batch.rows:
                    if row.key not in settled:
                        self._record_failure(session, row, at, error, report)

    async def _write_calendar(
        self, rows: list[FollowUpRow], at: datetime, report: DeliveryReport
    ) -> None:
        """Raise each row's concern in its owner's CalDAV calendar; without one, in the feed.

        A concern's first period makes its item; a later one updates it in
        place. An item the user deleted meanwhile dismisses the concern.
        """
        from followupd.channels.calendar.caldav_writer import Writers

        contacts = self._contacts(rows)
        with self.store.session() as session:
            files = attachments(session, [row.key for row in rows])
        writers = Writers(self.settings, self.calendar_writer)
        try:
            for row in rows:
                if self.stopping:
                    break
                owner = self.settings.owner_for(row.owner)
                with self.store.session() as session:
                    item = live_items.of_concerns(session, [row.concern]).get(row.concern)
                    last = live_items.last_raises(session, [row.concern]).get(row.concern)
                waits = self.holds.repeat(last, row) if last is not None else None
                put_off = waits[0] if waits is not None else None  # shown due then
                placed = self.holds.late_time(row, at)  # a late meeting or alarm: not in the past
                contact = contacts.get(row.contact_id) if row.contact_id else None
                try:
                    writer = await writers.writer(owner)
                    where = None
                    if writer is not None:
                        file = await _made_file(row.key, files.get(row.key))
                        where = await self._put_item(writer, row, item, owner, contact, at,
                                                     put_off, file, placed)  # fmt: skip
                except DeliveryError as error:  # this one waits; the server is tried next pass
                    with self.store.session() as session:
                        self._record_failure(session, row, at, error, report)
                    continue
                if where is GONE:
                    self._record_deleted(row, item, at, report)
                    continue
                in_calendar = where if isinstance(where, Written) else None
                self._record_written(row, in_calendar, at, report, put_off, placed)
        finally:
            await writers.close()

    async def _put_item(
        self,
        writer: CalendarWriter,
        row: FollowUpRow,
        item: LiveItem | None,
        owner: Owner,
        contact: Row[int, str, str | None] | None,
        at: datetime,
        put_off: datetime | None,
        file: Attachment | None = None,
        placed: datetime | None = None,
    ) -> Written | object:
        """Write `row`'s period into its concern's item: where, or GONE if the user deleted it.

        `file`: the row's attachment, inline in the item. An item whose event
        the user made a meeting of their own (`ical.invited`) is left to them:
        the period goes into an item of its own, under a UID of its own.
        """
        from followupd.channels.calendar import ical

        zone_ = zone(owner.timezone)
        shown = live_items.as_raised(item, row, at, put_off, placed)
        name, phone = (contact.name, contact.phone) if contact else (None, None)
        calendar_item = ical.item_of(shown, zone_, name, phone, file)
        if item is None or item.href is None:
            return Written(await self._create(writer, calendar_item, zone_))

        written = [when for when in (item.due_at, item.snoozed_until, item.alarm_at) if when]

        def change(text: str) -> tuple[bytes, bool]:  # the user's snooze stays
            return _changed(ical.updated(text, calendar_item, zone_, shown.snoozed_until, written))

        outcome = await asyncio.to_thread(writer.update, item.href, change)
        if outcome == "gone":
            return GONE
        if outcome == "already":  # followupd's part always changes: the user's meeting now
            fresh = replace(calendar_item, uid=identity.uid_after(row.concern, shown.times_raised))
            return Written(await self._create(writer, fresh, zone_), fresh.uid)
        return Written(item.href)

    @staticmethod
    async def _create(writer: CalendarWriter, item: ical.CalendarItem, zone_: ZoneInfo) -> str:
        from followupd.channels.calendar import ical

        body = ical.document(item, zone_)
        return await asyncio.to_thread(
            writer.create, identity.object_name(item.uid), body, item.uid
        )

    def _record_written(
        self,
        row: FollowUpRow,
        where: Written | None,
        at: datetime,
        report: DeliveryReport,
        put_off: datetime | None,
        placed: datetime | None,
    ) -> None:
        """`where`: the item's place in the owner's calendar; None: in the feed only."""
        with self.store.session() as session:
            if _finish(session, row, self.worker, at, state=FollowUpState.SENT, sent_at=at,
                       last_error=None,
                       reason=None if where else "in the feed"):  # fmt: skip
                live_items.raised(session, row, where.href if where else None, at,
                                  self.holds.late_by(row, at), put_off, placed,
                                  where.uid if where else None)  # fmt: skip
                report.sent.append(row.key)

    def _record_deleted(
        self, row: FollowUpRow, item: LiveItem | None, at: datetime, report: DeliveryReport
    ) -> None:
        why = "deleted in your calendar"
        with self.store.session() as session:
            if _finish(session, row, self.worker, at, state=FollowUpState.DISMISSED, reason=why):
                if item is not None:
                    live_items.deleted_by_user(session, item.id, at)
                report.dismissed[row.key] = why

    def _contacts(self, rows: list[FollowUpRow]) -> dict[int, Row[int, str, str | None]]:
        """Id, name and phone of the contacts the items are about (call tasks carry them)."""
        ids = sorted({row.contact_id for row in rows if row.contact_id})
        found: dict[int, Row[int, str, str | None]] = {}
        with self.store.session() as session:
            for chunk in chunked(ids):
                query = select(Contact.id, Contact.name, Contact.phone).where(Contact.id.in_(chunk))
                found.update({contact.id: contact for contact in session.execute(query)})
        return found

    def _prepare(
        self, emails: list[FollowUpRow], ready: Screened, at: datetime, report: DeliveryReport
    ) -> list[Prepared]:
        """The emails of a claimed batch, built in order, each once (in a thread).

        What each replies to is read once for the batch (a client email's contact's
        thread, by the check before: `ready`); an email built here counts as sent in
        its contact's thread for the ones built after it.
        """
        threads = self._threads([row for row in emails if not self.nudges.in_thread(row)])
        batches = self.nudges.batches(emails)
        prepared: list[Prepared] = []
        sent_to, places = ready.sent_to, ready.places
        with self.store.session() as session:
            in_thread = [batch.lead for batch in batches if self.nudges.in_thread(batch.lead)]
            unpaid = self.nudges.unpaid_of(session, in_thread, self.holds.calendar)
            for batch in batches:
                if self.stopping:  # what is not built is handed back
                    break
                built = self._prepare_one(session, batch, at, threads, sent_to,
                                          (places, unpaid), report)  # fmt: skip
                if built is not None:
                    prepared.append(built)
        return prepared

    def _prepare_one(
        self,
        session: Session,
        batch: Batch,
        at: datetime,
        threads: dict[str, list[str]],
        sent_to: dict[int, list[SentEmail]],
        contacts: tuple[Mapping[int, Place], Unpaid],
        report: DeliveryReport,
    ) -> Prepared | None:
        """The email of one batch; None if it must not go (its outcome recorded).

        `contacts`: the places of the sub-batch's client emails and their contacts' unpaid
        invoices, read once for it.
        """
        row = batch.lead
        owner, smtp = self.settings.owner_for(row.owner), self.settings.smtp
        from_ = (smtp.sender if smtp and smtp.sender else None) or f"{owner.name} <{owner.email}>"
        domain = from_.rsplit("@", 1)[1].rstrip(">")
        earlier_ids = [
            message_id(key, domain)
            for key in threads.get(row.thread_key or "", [])
            if key != row.key
        ]
        subject, body, html, carried = row.subject, row.body, None, []
        contact_sent: list[SentEmail] | None = None
        grouped = None  # a grouped nudge, made now
        if self.nudges.in_thread(row):  # the contact's thread, over all their invoices
            contact_sent = sent_to.setdefault(row.contact_id or 0, [])
            earlier_ids = self.nudges.thread(contact_sent, domain, but=[r.key for r in batch.rows])
            places, unpaid = contacts
            place = places.get(row.mission_id or 0)
            tz = zone((place.timezone if place else None) or owner.timezone)
            try:
                day = at.astimezone(tz).date()
                grouped = self.nudges.message(session, batch, contact_sent, day,
                                              self.holds.calendar, unpaid)  # fmt: skip
            except TemplateProblem as problem:
                for each in batch.rows:
                    if _finish(session, each, self.worker, at,
                               state=FollowUpState.FAILED, reason=str(problem),
                               last_error=str(problem)):  # fmt: skip
                        report.failed[each.key] = str(problem)
                return None
            if grouped is not None:
                subject, body = grouped.subject, grouped.body
        if row.rule == digests.RULE:
            digest = make_digest(session, self.settings, self.holds, row, at)
            if digest is None:
                why = "nothing to say: what fell due since the last digest was done or put off"
                if _finish(session, row, self.worker, at, state=FollowUpState.CANCELLED,
                           reason=why):  # fmt: skip
                    report.cancelled[row.key] = why
                return None
            subject, body, html, carried = digest.subject, digest.text, digest.html, digest.emails
        try:
            email = build_message(
                key=batch.key,
                sender=from_,
                recipient=row.recipient or "",  # every email has one
                reply_to=owner.email,
                subject=subject,
                body=body,
                sent_at=at,
                earlier_in_thread=earlier_ids,
                language=row.language,
                html=html,
            )
        except DeliveryError as error:  # an address stored before they were checked: this one fails
            for each in batch.rows:
                self._record_failure(session, each, at, error, report)
            return None
        outcome: Outcome = {"state": FollowUpState.SENT, "sent_at": at, "reason": None,
                            "message_id": email.message_id, "last_error": None}  # fmt: skip
        if row.rule == digests.RULE:  # made now: kept for `outbox show`
            outcome |= {"subject": subject, "body": body}
        if grouped is not None:  # made now, and the same for every step it carries
            outcome |= {"subject": subject, "body": body, "reason": grouped.reason(batch)}
        if contact_sent is not None:  # the next email to this contact replies to this one
            contact_sent += [SentEmail(each.rule, each.key, each.step, email.message_id, at)
                             for each in batch.rows]  # fmt: skip
        return Prepared(batch, email, outcome, carried)

    def _record_sent(
        self, session: Session, prepared: Prepared, at: datetime, report: DeliveryReport
    ) -> bool:
        """What a digest or an email carrying several steps recorded, once it went; False
        if the lead's claim was taken over."""
        row, outcome = prepared.batch.lead, prepared.outcome
        ours = _finish(session, row, self.worker, at, **outcome)
        if ours:
            report.sent.append(row.key)
            if prepared.carried:
                day = row.due_at.astimezone(zone(self.settings.owner_for(row.owner).timezone))
                digests.mark_sent(session, prepared.carried, prepared.email.message_id,
                                  f"in the digest of {day:%Y-%m-%d}", at)  # fmt: skip
                report.sent += prepared.carried
        else:
            log.warning("sent %s, but its lease had been taken over", row.key)
        for each in prepared.batch.carried:  # sent, whatever became of the lead's lease
            with_lead: Outcome = {**outcome, "reason": f"sent in one email with {row.key}"}
            if _finish(session, each, self.worker, at, **with_lead):
                report.sent.append(each.key)
        return ours

    def _threads(self, rows: list[FollowUpRow]) -> dict[str, list[str]]:
        """Keys already sent in each thread, oldest first, to reply to."""
        wanted = sorted({row.thread_key for row in rows if row.thread_key})
        if not wanted:
            return {}
        with self.store.session() as session:
            return claims.sent_in_threads(session, wanted)

    def _record_failure(
        self,
        session: Session,
        row: FollowUpRow,
        at: datetime,
        error: DeliveryError,
        report: DeliveryReport,
    ) -> None:
        reason = str(error)
        report.errors[row.channel] += 1
        if error.permanent:
            if _finish(session, row, self.worker, at, state=FollowUpState.FAILED,
                       last_error=reason, reason=reason):  # fmt: skip
                report.failed[row.key] = reason
        elif row.attempts >= self.retry.max_attempts:
            why = f"gave up after {row.attempts} attempts: {reason}"
            if _finish(session, row, self.worker, at, state=FollowUpState.DEAD,
                       last_error=reason, reason=why):  # fmt: skip
                report.dead[row.key] = why
        else:
            when = at + self.retry.delay(row.attempts, self.rng)
            if _finish(session, row, self.worker, at, state=FollowUpState.PENDING,
                       last_error=reason, next_attempt_at=when):  # fmt: skip
                report.retrying[row.key] = reason


async def _open(engine: Engine) -> SentRecord:
    """The pass's record of messages sent, opened in a thread; if the pass is cancelled
    meanwhile, the record is closed as soon as it is open."""
    opening = asyncio.get_running_loop().run_in_executor(None, SentRecord, engine)
    try:
        return await asyncio.shield(opening)
    except BaseException:
        opening.add_done_callback(_close_opened)
        raise


def _close_opened(opening: asyncio.Future[SentRecord]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()


UNREACHED = object()  # what `_OwnerCalendars.act` gives when the owner's calendar failed


class _OwnerCalendars:
    """Each owner's calendar writer, and which of them failed in this pass.

    Once an owner's calendar fails, their other items wait for the next pass
    (no timeout per item against a server that is down); the others go on.
    """

    def __init__(self, writers: Writers) -> None:
        self.writers = writers
        self.unreachable: set[str] = set()

    async def act(
        self, owner: OwnerEntry, left: str, action: Callable[[CalendarWriter], T]
    ) -> T | object | None:
        """`action` on `owner`'s calendar, in a thread; None: they have none; UNREACHED: it failed.

        `left` says what waits when it fails, in the warning logged once per owner.
        """
        if owner.key in self.unreachable:
            return UNREACHED
        try:
            writer = await self.writers.writer(owner)
            if writer is None:
                return None
            return await asyncio.to_thread(action, writer)
        except DeliveryError as error:  # this owner's items wait; the others go on
            log.warning("%s's %s: %s", owner.key, left, error)
            self.unreachable.add(owner.key)
            return UNREACHED

    async def close(self) -> None:
        await self.writers.close()


async def _made_file(key: str, stored: Stored | None) -> Attachment | None:
    """The file of the follow-up keyed `key`, for its calendar item: a letter's PDF made off
    the event loop (tens of milliseconds); None for none, or for a letter that cannot be
    made (logged: the item is written without it)."""
    if stored is None:
        return None
    if stored.data is not None:
        return stored.name, stored.data
    return await asyncio.to_thread(made, key, stored)
