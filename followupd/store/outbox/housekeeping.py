"""The outbox as the daemon keeps and shows it: tidying, the next delivery, counts.

Leases expired are handed back, and finished follow-ups and the messages
read in the mailbox deleted after the retention; the deliver job is armed for
the soonest row deliverable; /healthz, /metrics and the systemd status line
count rows by state.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, not_, select, true
from sqlalchemy.orm import Session

from followupd.domain.states import FINISHED_STATES, FollowUpState
from followupd.store.mailbox import forget_messages
from followupd.store.models import FollowUp
from followupd.store.outbox.claim import hand_back


def tidy(session: Session, at: datetime, retention: timedelta) -> None:
    """Hand back the claims whose lease expired; delete what finished over `retention` ago.

    The mailbox's messages recorded over `retention` ago go too: their
    follow-ups are gone or finished, and nothing reads them after that.
    """
    hand_back(session, at, FollowUp.lease_expires_at < at)
    session.execute(
        delete(FollowUp).where(
            FollowUp.state.in_(FINISHED_STATES), FollowUp.updated_at < at - retention
        )
    )
    forget_messages(session, at - retention)


def next_deliverable(session: Session, held: ColumnElement[bool] | None = None) -> datetime | None:
    """The soonest due time or retry of a pending row, or lease expiry of a claimed one.

    Rows `held` selects (reminders waiting for a digest: never claimed, the
    digest carries them) do not count.
    """
    next_due = session.scalar(
        select(func.min(func.coalesce(FollowUp.next_attempt_at, FollowUp.due_at))).where(
            FollowUp.state == FollowUpState.PENDING, not_(held) if held is not None else true()
        )
    )
    next_lease = session.scalar(
        select(func.min(FollowUp.lease_expires_at)).where(FollowUp.state == FollowUpState.SENDING)
    )
    candidates = [when for when in (next_due, next_lease) if when is not None]
    return min(candidates) if candidates else None


def count_by_state(session: Session) -> dict[str, int]:
    """How many follow-ups are in each state (a state without any is absent)."""
    query = select(FollowUp.state, func.count()).group_by(FollowUp.state)
    return dict(session.execute(query).all())


def count_by_state_and_rule(session: Session) -> dict[tuple[str, str], int]:
    """How many follow-ups each rule has in each state."""
    query = select(FollowUp.state, FollowUp.rule, func.count()).group_by(
        FollowUp.state, FollowUp.rule
    )
    return {(state, rule): count for state, rule, count in session.execute(query)}


def sent_since(session: Session, since: datetime) -> int:
    """How many follow-ups were sent at `since` or later."""
    return session.scalar(select(func.count()).where(FollowUp.sent_at >= since)) or 0
