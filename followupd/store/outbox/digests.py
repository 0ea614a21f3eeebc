"""The owner's daily digest in the outbox: one row a day, and the reminders it lists.

A digest is a follow-up of its own (rule ``digest``, key
``digest:<owner>:<day>``), recorded when a reminder of that owner falls due
and due at the opening of the owner's send window; its concern is the
owner's, so that a catch-up sends only the latest. Its message is made when
it is sent, from what fell due since the last digest sent (and the
reminders by email recorded after the digest of their day): its key, hence
its Message-ID, names the owner and the day, so a crash never makes two
digests of one day. The owner's reminders by email wait for it (`held`)
and are recorded sent with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, and_, false, func, or_, select, update
from sqlalchemy.orm import Session

from followupd.config.settings import Settings
from followupd.domain.states import STANDING_STATES, Audience, Channel, FollowUpState
from followupd.store.chunks import chunked
from followupd.store.models import FollowUp, LiveItem
from followupd.store.outbox.recording import NewFollowUp, end_pending, insert_new
from followupd.store.outbox.rows import FollowUpRow
from followupd.store.rows import record

RULE = "digest"
STEP = "daily"
GRACE = timedelta(days=7)
# what a digest lists: reminders that fell due and are still to do or done by followupd
LISTED = STANDING_STATES
# the first digest looks back this far, not over the whole history of an old store
FIRST_LOOK_BACK = timedelta(days=7)


def key_of(owner: str, day: date) -> str:
    return f"{RULE}:{owner}:{day.isoformat()}"


def record_digests(
    session: Session,
    owner: str,
    recipient: str,
    language: str,
    openings: Sequence[datetime],
    at: datetime,
) -> list[str]:
    """One digest row for each of `openings` (send-window openings of `owner`); the new keys."""
    rows = digest_rows(owner, recipient, language, openings, at)
    return insert_new(session, rows) if rows else []


def digest_rows(
    owner: str, recipient: str, language: str, openings: Sequence[datetime], at: datetime
) -> list[NewFollowUp]:
    """The rows `record_digests` inserts: several owners' go in one `insert_new`."""
    rows: list[NewFollowUp] = []
    for opening in sorted(set(openings)):
        rows.append({
            "key": key_of(owner, opening.date()),
            "owner": owner,
            "rule": RULE,
            "step": STEP,
            "subject_key": owner,
            "concern": f"{RULE}:{owner}",
            "mission_id": None,
            "contact_id": None,
            "audience": Audience.OWNER,
            "channel": Channel.EMAIL,
            "recipient": recipient,
            "language": language,
            "subject": "",
            "body": "",
            "thread_key": None,
            "due_at": opening,
            "expires_at": opening + GRACE,
            "late": False,
            "state": FollowUpState.PENDING,
            "reason": None,
            "last_error": None,
            "attachment_name": None,
            "letter": None,
            "attempts": 0,
            "created_at": at,
            "updated_at": at,
        })  # fmt: skip
    return rows


def held(owners: Sequence[str], first_owner: str) -> ColumnElement[bool]:
    """The reminders by email of `owners` (in digest mode): they wait for the digest.

    A row of before there were owners (no owner) is the first owner's.
    """
    if not owners:
        return false()
    whose: ColumnElement[bool] = FollowUp.owner.in_(owners)
    if first_owner in owners:
        whose = or_(whose, FollowUp.owner.is_(None))
    return and_(
        FollowUp.audience == Audience.OWNER,
        FollowUp.channel == Channel.EMAIL,
        FollowUp.rule != RULE,
        whose,
    )


def held_by(settings: Settings) -> ColumnElement[bool]:
    """`held` for the owners of `settings` who take their reminders in a digest."""
    in_digest = [entry.key for entry in settings.owners if entry.reminders_by_email == "digest"]
    return held(in_digest, settings.owners[0].key)


def waiting(session: Session, held_rows: ColumnElement[bool]) -> list[FollowUpRow]:
    """The reminders by email still waiting for a digest (`held_rows`: see `held`)."""
    query = select(record(FollowUp, "followup")).where(
        held_rows, FollowUp.state == FollowUpState.PENDING
    )
    return [row for (row,) in session.execute(query)]


def recorded_openings(session: Session, owner: str, since: datetime) -> set[datetime]:
    """The due times of `owner`'s digests recorded after `since`, whatever their state."""
    query = select(FollowUp.due_at).where(
        FollowUp.concern == f"{RULE}:{owner}", FollowUp.due_at > since
    )
    return set(session.scalars(query))


def last_sent(session: Session, owner: str) -> datetime | None:
    """The due time of the last digest sent to `owner`."""
    return session.scalar(
        select(FollowUp.due_at)
        .where(FollowUp.concern == f"{RULE}:{owner}", FollowUp.state == FollowUpState.SENT)
        .order_by(FollowUp.due_at.desc())
        .limit(1)
    )


def last_sent_each(session: Session, owners: Sequence[str]) -> dict[str, datetime]:
    """`last_sent` of each of `owners` who was sent a digest, in one query per chunk."""
    found: dict[str, datetime] = {}
    concerns = {f"{RULE}:{owner}": owner for owner in owners}
    for chunk in chunked(sorted(concerns)):
        query = (
            select(FollowUp.concern, func.max(FollowUp.due_at))
            .where(FollowUp.concern.in_(chunk), FollowUp.state == FollowUpState.SENT)
            .group_by(FollowUp.concern)
        )
        found.update({concerns[concern]: due_at for concern, due_at in session.execute(query)})
    return found


def listed(
    session: Session, owner: str, first_owner: str, since: datetime, until: datetime
) -> list[FollowUpRow]:
    """The owner's reminders due in ``(since, until]`` still to do: the latest of each concern.

    Also the reminders by email due earlier and still waiting, within their
    grace: those recorded after the digest of their day had gone.
    """
    waiting = and_(
        FollowUp.channel == Channel.EMAIL,
        FollowUp.state == FollowUpState.PENDING,
        or_(FollowUp.expires_at.is_(None), FollowUp.expires_at >= until),
    )
    return _latest(session, owner, first_owner, or_(FollowUp.due_at > since, waiting),
                   FollowUp.due_at <= until)  # fmt: skip


def back_from_snooze(
    session: Session, owner: str, first_owner: str, since: datetime, until: datetime
) -> list[FollowUpRow]:
    """The owner's reminders due by `since` that the user put off to a time in ``(since, until]``.

    The digest of their day left them out (put off in the calendar), and the
    later ones list what fell due since the one before: they come back in the
    first digest after the user's date. The latest of each concern.
    """
    snoozed = select(LiveItem.concern).where(
        LiveItem.snoozed_until > since, LiveItem.snoozed_until <= until
    )
    return _latest(session, owner, first_owner, FollowUp.due_at <= since,
                   FollowUp.concern.in_(snoozed))  # fmt: skip


def _latest(
    session: Session, owner: str, first_owner: str, *conditions: ColumnElement[bool]
) -> list[FollowUpRow]:
    """The owner's reminders still to do under `conditions`: the latest of each concern."""
    whose: ColumnElement[bool] = FollowUp.owner == owner
    if owner == first_owner:
        whose = or_(whose, FollowUp.owner.is_(None))
    query = (
        select(record(FollowUp, "followup"))
        .where(
            whose,
            FollowUp.audience == Audience.OWNER,
            FollowUp.rule != RULE,
            FollowUp.state.in_(LISTED),
            *conditions,
        )
        .order_by(FollowUp.due_at, FollowUp.key)
    )
    latest: dict[str, FollowUpRow] = {}
    for (row,) in session.execute(query):
        latest[row.concern] = row  # by due time: the last one wins
    return sorted(latest.values(), key=lambda row: (row.due_at, row.key))


def end_waiting(
    session: Session, key: str, state: FollowUpState, reason: str, at: datetime
) -> bool:
    """A reminder by email no digest will carry: ended as `state`; False if no longer waiting."""
    return end_pending(session, FollowUp.key == key, state, reason, at) > 0


def mark_sent(
    session: Session, keys: Sequence[str], message_id: str, reason: str, at: datetime
) -> None:
    """The reminders by email `keys`, still waiting, recorded sent in the digest `message_id`."""
    for chunk in chunked(list(keys)):
        session.execute(
            update(FollowUp)
            .where(
                FollowUp.key.in_(chunk),
                FollowUp.state == FollowUpState.PENDING,
                FollowUp.channel == Channel.EMAIL,
            )
            .values(
                state=FollowUpState.SENT,
                sent_at=at,
                message_id=message_id,
                reason=reason,
                updated_at=at,
            )
            .execution_options(synchronize_session=False)
        )
