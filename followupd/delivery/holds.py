"""When a follow-up must wait: a client email for the end of its mission's pause, of the
wait a client's reply to a nudge of its subject started, of the wait a promise to pay
its invoice started, or for the send window; the
owner's digest for the owner's send window; the next period of a reminder for the date
the owner put it off to, and for its rhythm after a late raise. And where a meeting to
place raised late is offered, or when a task raised late rings (`Holds.late_time`): at
the owner's next working time.

Both are read again at delivery, from the store, so a pause set or a client
moved to another time zone after the email was recorded still counts. A
client without a time zone or country of its own has its mission owner's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from followupd.config.settings import Settings
from followupd.domain.business_calendar import BusinessCalendar, zone
from followupd.domain.meeting_place import OwnersTime
from followupd.domain.states import Audience, Channel, MailKind
from followupd.rules import promises
from followupd.rules.promises import PromisePause, promise_pauses
from followupd.rules.replies import LONGEST_WAIT, MONEY_RULES, ReplyPause, reply_pauses
from followupd.store.chunks import chunked
from followupd.store.live_items import LastRaise
from followupd.store.models import Client, MailMessage, Mission
from followupd.store.outbox import digests
from followupd.store.outbox.rows import FollowUpRow


class Place(Protocol):
    """Where a client email goes: its mission's pause, its client's zone and country."""

    @property
    def id(self) -> int: ...
    @property
    def paused_until(self) -> date | None: ...
    @property
    def timezone(self) -> str | None: ...
    @property
    def country(self) -> str | None: ...


def _replies_since(session: Session, since: datetime) -> bool:
    """Whether a client's reply was read since `since` (reply_pauses reads none older): one
    lookup on the index of when messages were read, where the pauses' query walks the
    follow-ups of the money rules."""
    query = (
        select(MailMessage.id)
        .where(MailMessage.kind == MailKind.REPLY, MailMessage.created_at >= since)
        .limit(1)
    )
    return session.execute(query).first() is not None


class Holds:
    def __init__(self, settings: Settings, calendar: BusinessCalendar) -> None:
        self.settings = settings
        self.calendar = calendar
        # the next opening of the send window from an instant, in a zone and its countries:
        # a claimed batch's emails ask it of the same pass's instant, in a few zones
        self.openings: dict[tuple[datetime, object, ZoneInfo, tuple[str, ...]], datetime] = {}

    @staticmethod
    def places(session: Session, rows: Sequence[FollowUpRow]) -> dict[int, Place]:
        """For client emails: the mission's pause and the client's zone and country."""
        ids = sorted(
            {row.mission_id for row in rows if row.audience == Audience.CLIENT and row.mission_id}
        )
        places: dict[int, Place] = {}
        for chunk in chunked(ids):
            query = (
                select(Mission.id, Mission.paused_until, Client.timezone, Client.country)
                .join(Client, Mission.client_id == Client.id)
                .where(Mission.id.in_(chunk))
            )
            places.update({row.id: row for row in session.execute(query)})
        return places

    def replies(
        self, session: Session, rows: Sequence[FollowUpRow], at: datetime
    ) -> dict[tuple[str, str], ReplyPause]:
        """For the client emails of the money rules: the waits their client's replies started."""
        subjects = {
            (row.rule, row.subject_key)
            for row in rows
            if row.audience == Audience.CLIENT
            and row.channel == Channel.EMAIL
            and row.rule in MONEY_RULES
        }
        if not subjects:
            return {}
        since = at - timedelta(days=1)  # the wait's last day, in any zone
        if not _replies_since(session, since - LONGEST_WAIT):  # none read in the wait: no pause
            return {}
        return reply_pauses(session, self.settings, self.calendar, since=since, subjects=subjects)

    def after_reply(
        self, row: FollowUpRow, at: datetime, place: Place | None, pause: ReplyPause | None
    ) -> tuple[datetime, str] | None:
        """When a client email held back by the client's reply goes, and why it waits.

        At the opening of the send window, in the client's zone, on the day
        the wait ends. An email whose grace had ended before the reply came
        is not held: it was missed already.
        """
        if pause is None or row.audience != Audience.CLIENT:
            return None
        if row.expires_at is not None and pause.replied_at > row.expires_at:
            return None
        owner = self.settings.owner_for(row.owner)
        tz = zone((place.timezone if place else None) or owner.timezone)
        countries = ((place.country if place else None) or owner.country,)
        if at.astimezone(tz).date() >= pause.until:
            return None
        return self.calendar.due_at(pause.until, 0, tz, countries), pause.reason

    def promises(self, session: Session, rows: Sequence[FollowUpRow]) -> dict[str, PromisePause]:
        """For the client emails of invoices: the waits their client's promises to pay started."""
        numbers = {
            row.subject_key
            for row in rows
            if row.audience == Audience.CLIENT
            and row.channel == Channel.EMAIL
            and row.rule == promises.RULE
        }
        if not numbers:
            return {}
        return promise_pauses(session, self.settings, self.calendar, numbers=numbers)

    def after_promise(
        self, row: FollowUpRow, at: datetime, place: Place | None, pause: PromisePause | None
    ) -> tuple[datetime, str] | None:
        """When a client nudge recorded before its client promised to pay goes, and why it waits.

        Where the ladder resumes it (`PromisePause.moved`), at the opening of
        the send window in the client's zone. One due after the pause's end
        was placed by the rule already; one whose grace has ended is not held.
        """
        if pause is None or row.audience != Audience.CLIENT or row.rule != promises.RULE:
            return None
        if row.expires_at is not None and at > row.expires_at:
            return None
        owner = self.settings.owner_for(row.owner)
        tz = zone((place.timezone if place else None) or owner.timezone)
        countries = ((place.country if place else None) or owner.country,)
        if row.due_at >= self.calendar.due_at(pause.until, 0, tz, countries):
            return None
        when = self.calendar.due_at(pause.moved(row.due_at.astimezone(tz).date()), 0, tz, countries)
        return (when, pause.reason) if when > at else None

    def repeat(self, last: LastRaise, row: FollowUpRow) -> tuple[datetime, str] | None:
        """When a later period of a concern the user put off must wait, and why.

        Not before the date the user put its item off to; once raised again
        on that date, the periods after it come as many working days later as
        that raise was late (`LastRaise.repeat_offset`): the repeat starts over
        from the user's date instead of coming again the next day.
        """
        owner = self.settings.owner_for(row.owner)
        tz, countries = zone(owner.timezone), (owner.country,)
        snoozed = last.snoozed_until
        if snoozed is not None and not last.raised_since_snooze:
            local = snoozed.astimezone(tz)
            return snoozed, f"snoozed until {local:%Y-%m-%d %H:%M} in your calendar"
        if last.repeat_offset <= 0 or row.due_at <= last.shown_due:
            return None
        due = row.due_at.astimezone(tz).date()
        later = self.calendar.add_working_days(due, last.repeat_offset, countries)
        again = self.calendar.due_at(later, 0, tz, countries)
        if again <= row.due_at:
            return None
        return again, (
            f"put off in your calendar: repeats {last.repeat_offset} working day"
            f"{'s' if last.repeat_offset > 1 else ''} later, on {again.astimezone(tz):%Y-%m-%d}"
        )

    def late_time(self, row: FollowUpRow, at: datetime) -> datetime | None:
        """When calendar item `row` raised at `at` after its due is offered (a meeting to
        place) or rings (a task); None: on time.

        At the owner's next working time, in their zone, on their working days
        (followupd.domain.meeting_place): never in the past.
        """
        owner = self.settings.owner_for(row.owner)
        time = OwnersTime(self.calendar, zone(owner.timezone), (owner.country,))
        return time.late_time(row.rule, row.step, row.due_at, at)

    def late_by(self, row: FollowUpRow, at: datetime) -> int:
        """How many of the owner's working days after its due time `row` goes at `at`."""
        owner = self.settings.owner_for(row.owner)
        tz = zone(owner.timezone)
        due, now = row.due_at.astimezone(tz).date(), at.astimezone(tz).date()
        return self.calendar.working_days_between(due, now, (owner.country,))

    def until(
        self, row: FollowUpRow, at: datetime, place: Place | None
    ) -> tuple[datetime, str] | None:
        """When a client email must wait: the end of a pause, or the next send window.

        The owner's digest waits for the owner's send window too: one missed
        (followupd was down) goes at the next opening, in that day's digest.
        """
        owner = self.settings.owner_for(row.owner)
        if row.rule == digests.RULE:
            tz, countries = zone(owner.timezone), (owner.country,)
            opening = self._next_opening(at, tz, countries)
            return (opening, "outside your send window") if opening > at else None
        if row.audience != Audience.CLIENT:
            return None
        tz = zone((place.timezone if place else None) or owner.timezone)
        countries = ((place.country if place else None) or owner.country,)
        paused = place.paused_until if place else None
        if paused is not None and at.astimezone(tz).date() < paused:
            when = self.calendar.due_at(paused, 0, tz, countries)
            return when, f"mission paused until {paused.isoformat()}"
        opening = self._next_opening(at, tz, countries)
        if opening > at:
            return opening, "outside the send window"
        return None

    def _next_opening(self, at: datetime, tz: ZoneInfo, countries: tuple[str, ...]) -> datetime:
        """BusinessCalendar.next_window_opening, kept for the instants and zones asked again."""
        key = (at, at.tzinfo, tz, countries)  # equal instants in other zones: their own
        found = self.openings.get(key)
        if found is None:
            if len(self.openings) >= 1024:
                self.openings.clear()
            found = self.openings[key] = self.calendar.next_window_opening(at, tz, countries)
        return found


def latest(*holds: tuple[datetime, str] | None) -> tuple[datetime, str] | None:
    """Of several holds of one follow-up, the one that lasts longest (None: none holds it)."""
    found = [hold for hold in holds if hold is not None]
    return max(found, key=lambda hold: hold[0]) if found else None
