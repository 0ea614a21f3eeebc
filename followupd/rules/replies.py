"""The client's replies to money nudges, and how long the rest of those nudges wait.

A reply recorded by the mailbox sync (`MailKind.REPLY`) that answers a client
email of `invoice_due` or `deposit_due` (its `followup_key`) pauses the other
client emails of that invoice, or of that mission's deposit: they wait
``[rules.client_replied] pause_working_days`` working days of the owner's
calendar, counted from the day of the reply in the owner's zone; a later
reply starts the wait again. The wait is read from the recorded messages,
never stored apart: a nudge recorded after the reply waits too (the money
rules move a step falling in the wait to its end), and one recorded before
it is held back at delivery until then (`followupd.delivery.holds`).

With ``[rules.client_replied] enabled = false`` (for every owner, or for the
owner of the mission), a reply pauses nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import or_, select, tuple_
from sqlalchemy.orm import Session

from followupd.config.rule_options import ClientRepliedOptions
from followupd.config.settings import Settings
from followupd.domain.business_calendar import BusinessCalendar, zone
from followupd.domain.states import Audience, Channel, MailKind
from followupd.store.chunks import chunked
from followupd.store.models import FollowUp, MailMessage

# the rules whose client emails a reply pauses: an invoice's nudges, a deposit's
MONEY_RULES = ("invoice_due", "deposit_due")
# the longest wait (60 working days) in calendar days, with holidays to spare: a
# reply older than this pauses nothing any more
LONGEST_WAIT = timedelta(days=120)


@dataclass(frozen=True)
class ReplyPause:
    """The client replied to a nudge of a subject: its other client emails wait until `until`.

    `until` is a date: client emails go again from the opening of the send
    window on that day, in the client's zone (as for a mission's
    ``paused_until``).
    """

    rule: str
    subject_key: str
    replied_at: datetime  # the latest reply's date (when it was read, if it had none)
    until: date

    @property
    def reason(self) -> str:
        """Why a client email of the subject waits, as `outbox list` and `show` say it."""
        return (
            f"the client replied on {self.replied_on.isoformat()}: "
            f"waits until {self.until.isoformat()}"
        )

    @property
    def replied_on(self) -> date:
        return self.replied_at.date()


def came_at(sent: datetime | None, read: datetime) -> datetime:
    """When a message came: its Date, but no later than when it was read.

    A Date ahead of the reading is a sender's clock gone wrong; a message
    without one came when it was read.
    """
    return read if sent is None or sent > read else sent


def pause_options(settings: Settings, owner: str | None) -> ClientRepliedOptions:
    """``[rules.client_replied]`` as the owner keyed `owner` has it."""
    entry = settings.owner_for(owner)
    override = entry.rule_overrides.get("client_replied")
    options = settings.rules.client_replied
    return options.model_copy(update=override) if override else options


def reply_pauses(
    session: Session,
    settings: Settings,
    calendar: BusinessCalendar,
    *,
    since: datetime,
    subjects: Iterable[tuple[str, str]] | None = None,
    rule: str | None = None,
) -> dict[tuple[str, str], ReplyPause]:
    """The pauses of (rule, subject) pairs that end on or after the day of `since`.

    Only those of `subjects` when given, only those of `rule` when given. The
    latest reply of a subject decides: its owner's options and calendar say
    how long the wait is.
    """
    answered = (
        select(
            FollowUp.rule,
            FollowUp.subject_key,
            FollowUp.owner,
            MailMessage.date,
            MailMessage.created_at,
        )
        .join(FollowUp, FollowUp.key == MailMessage.followup_key)
        .where(
            MailMessage.kind == MailKind.REPLY,
            FollowUp.audience == Audience.CLIENT,
            FollowUp.channel == Channel.EMAIL,
            FollowUp.rule.in_([rule] if rule is not None else MONEY_RULES),
            or_(MailMessage.date.is_(None), MailMessage.date >= since - LONGEST_WAIT),
            MailMessage.created_at >= since - LONGEST_WAIT,
        )
    )
    rows = []
    if subjects is None:
        rows = list(session.execute(answered))
    else:
        for chunk in chunked(sorted(set(subjects))):
            pairs = tuple_(FollowUp.rule, FollowUp.subject_key).in_(chunk)
            rows += session.execute(answered.where(pairs))
    latest: dict[tuple[str, str], tuple[datetime, str | None]] = {}
    for found in rows:
        replied = came_at(found.date, found.created_at)
        subject = (found.rule, found.subject_key)
        if subject not in latest or replied > latest[subject][0]:
            latest[subject] = (replied, found.owner)
    pauses: dict[tuple[str, str], ReplyPause] = {}
    for (name, subject_key), (replied, owner_key) in latest.items():
        options = pause_options(settings, owner_key)
        if not options.enabled or options.pause_working_days <= 0:
            continue
        owner = settings.owner_for(owner_key)
        tz, countries = zone(owner.timezone), (owner.country,)
        local = replied.astimezone(tz)
        day = local.date()
        until = calendar.add_working_days(day, options.pause_working_days, countries)
        if until < since.astimezone(tz).date():
            continue
        pauses[(name, subject_key)] = ReplyPause(name, subject_key, local, until)
    return pauses
