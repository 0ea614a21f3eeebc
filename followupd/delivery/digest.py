"""The owner's digest, made when it is sent: what fell due since the last one, in one email.

The lines are the owner's reminders due since the last digest sent (a first
digest looks back a week), the latest of each concern, but for those the
user dismissed or snoozed in their calendar meanwhile: a dismissed
reminder by email is recorded dismissed, a snoozed one waits for the first
digest after the date the user put it off to. Each line carries the contact
to call and the last exchange with the client on that mission.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from followupd.channels.email.digest import DigestLine, LastSaid, digest_message
from followupd.config.settings import Settings
from followupd.delivery.holds import Holds
from followupd.domain import items
from followupd.domain.business_calendar import zone
from followupd.domain.states import CalendarState, Channel, FollowUpState
from followupd.store import live_items
from followupd.store.chunks import chunked
from followupd.store.models import Client, Contact, Mission, Touchpoint
from followupd.store.outbox import digests
from followupd.store.outbox.rows import FollowUpRow
from followupd.templates.loader import templates_of


@dataclass(frozen=True)
class Digest:
    """A digest ready to send, and the reminders by email it delivers."""

    subject: str
    text: str
    html: str
    emails: list[str]  # keys of the reminders by email it carries


def make_digest(
    session: Session, settings: Settings, holds: Holds, row: FollowUpRow, at: datetime
) -> Digest | None:
    """The digest `row` stands for; None when nothing is left to say."""
    entry = settings.owner_for(row.owner)
    first = settings.owners[0].key
    # a first digest looks back a week, that week's first opening included
    first_since = row.due_at - digests.FIRST_LOOK_BACK - timedelta(seconds=1)
    since = digests.last_sent(session, entry.key) or first_since
    rows = digests.listed(session, entry.key, first, since, row.due_at)
    listed = {found.concern for found in rows}
    back = digests.back_from_snooze(session, entry.key, first, since, row.due_at)
    rows = sorted([*rows, *(found for found in back if found.concern not in listed)],
                  key=lambda found: (found.due_at, found.key))  # fmt: skip
    concerns = [found.concern for found in rows]
    dismissed = live_items.dismissed_concerns(session, concerns)
    raised = live_items.last_raises(session, concerns)
    done = _done(session, rows)
    kept: list[FollowUpRow] = []
    for found in rows:
        if found.concern in dismissed:
            if found.channel == Channel.EMAIL:
                live_items.pending_of(session, found.concern, FollowUpState.DISMISSED,
                                      dismissed[found.concern], at)  # fmt: skip
        elif _reminder(found) in done:
            if found.channel == Channel.EMAIL:
                digests.end_waiting(session, found.key, FollowUpState.CANCELLED,
                                    done[_reminder(found)], at)  # fmt: skip
        elif not _waits(holds, raised.get(found.concern), found, at):
            kept.append(found)
    if not kept:
        return None
    once = {_reminder(found): found for found in reversed(kept)}  # by email and in the calendar
    lines = _lines(session, sorted(once.values(), key=lambda found: (found.due_at, found.key)))
    day = row.due_at.astimezone(zone(entry.timezone)).date()
    subject, text, html = digest_message(templates_of(settings, entry), entry, day, lines)
    emails = [found.key for found in kept if found.channel == Channel.EMAIL]
    return Digest(subject, text, html, emails)


Reminder = tuple[str, str, str]  # rule, subject, step: one reminder, by email and in the calendar


def _reminder(row: FollowUpRow) -> Reminder:
    return row.rule, row.subject_key, row.step


def _done(session: Session, rows: Sequence[FollowUpRow]) -> dict[Reminder, str]:
    """The reminders among `rows` whose calendar item is closed since: done in the calendar,
    or their reason went. Reminder -> why."""
    items = live_items.of_concerns(session, (found.concern for found in rows))
    done: dict[Reminder, str] = {}
    for found in rows:
        item = items.get(found.concern)
        if item is None or item.state == CalendarState.OPEN or item.retire is not None:
            continue
        if item.due_at >= found.due_at:  # closed while showing this period or a later one
            done[_reminder(found)] = item.reason or f"{item.state} in your calendar"
    return done


def _waits(holds: Holds, last: live_items.LastRaise | None, row: FollowUpRow, at: datetime) -> bool:
    """Whether a reminder waits for a later digest: put off by the user, or its rhythm."""
    waits = holds.repeat(last, row) if last is not None else None
    return waits is not None and waits[0] > at


def _lines(session: Session, rows: Sequence[FollowUpRow]) -> list[DigestLine]:
    missions = _missions(session, {row.mission_id for row in rows if row.mission_id})
    contacts = _contacts(session, {row.contact_id for row in rows if row.contact_id})
    last = _last_said(session, set(missions))
    lines = []
    for row in rows:
        mission = missions.get(row.mission_id) if row.mission_id else None
        contact = contacts.get(row.contact_id) if row.contact_id else None
        lines.append(
            DigestLine(
                key=row.key,
                rule=row.rule,
                step=row.step,
                call=items.is_call(row.rule, row.step, row.key),
                summary=row.subject,
                due_at=row.due_at,
                mission_key=mission[0] if mission else None,
                mission_title=mission[1] if mission else None,
                client_name=mission[2] if mission else None,
                contact_name=contact[0] if contact else None,
                contact_phone=contact[1] if contact else None,
                last_said=last.get(row.mission_id) if row.mission_id else None,
            )
        )
    return lines


def _missions(session: Session, ids: set[int]) -> dict[int, tuple[str, str, str]]:
    """Key, title and client name of each mission."""
    found: dict[int, tuple[str, str, str]] = {}
    for chunk in chunked(sorted(ids)):
        query = (
            select(Mission.id, Mission.key, Mission.title, Client.name)
            .join(Client, Mission.client_id == Client.id)
            .where(Mission.id.in_(chunk))
        )
        found.update(
            (id_, (key, title, client)) for id_, key, title, client in session.execute(query)
        )
    return found


def _contacts(session: Session, ids: set[int]) -> dict[int, tuple[str, str | None]]:
    found: dict[int, tuple[str, str | None]] = {}
    for chunk in chunked(sorted(ids)):
        query = select(Contact.id, Contact.name, Contact.phone).where(Contact.id.in_(chunk))
        found.update((id_, (name, phone)) for id_, name, phone in session.execute(query))
    return found


def _last_said(session: Session, mission_ids: set[int]) -> dict[int, LastSaid]:
    """The last touchpoint of each mission: what to pick up from."""
    found: dict[int, LastSaid] = {}
    latest = aliased(Touchpoint)
    for chunk in chunked(sorted(mission_ids)):
        newest = (
            select(func.max(latest.at))
            .where(latest.mission_id == Touchpoint.mission_id)
            .scalar_subquery()
        )
        query = select(
            Touchpoint.mission_id, Touchpoint.kind, Touchpoint.at, Touchpoint.note
        ).where(Touchpoint.mission_id.in_(chunk), Touchpoint.at == newest)
        for mission_id, kind, at, note in session.execute(query):
            found[mission_id] = LastSaid(str(kind), at, note)
    return found
