"""Follow-ups acted on by hand (`followupd outbox retry` and `cancel`)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from followupd.domain.states import CANCELLABLE_STATES, FAILED_STATES, FollowUpState
from followupd.errors import FollowupdError
from followupd.store.coordination import CHANGED, announce
from followupd.store.models import FollowUp
from followupd.store.outbox.lookup import find


def retry(session: Session, ident: str, at: datetime, tz: ZoneInfo) -> tuple[FollowUp, str]:
    """Give a failed or dead follow-up a fresh set of attempts, from now; say what was done.

    One that failed before any attempt had no message: its template failed
    when it was recorded. It is removed, so that the next pass records it
    again, rendered with the template as it is then (if it is still due).
    """
    row = find(session, ident)
    if row.state not in FAILED_STATES:
        retried = " or ".join(state for state in FollowUpState if state in FAILED_STATES)
        raise FollowupdError(f"follow-up {row.id} is {row.state}; only {retried} ones are retried")
    if row.state == FollowUpState.FAILED and row.attempts == 0:
        if row.expires_at is not None and at > row.expires_at:
            raise FollowupdError(
                f"follow-up {row.id} was never rendered, and its grace ended "
                f"{row.expires_at.astimezone(tz):%Y-%m-%d %H:%M}: it would not be sent"
            )
        session.delete(row)
        announce(session, CHANGED)
        return row, "recorded again by the next pass, with its template as it is then"
    row.state, row.attempts, row.next_attempt_at = FollowUpState.PENDING, 0, at
    row.reason, row.updated_at = "retried by hand", at
    return row, "pending again, with fresh attempts"


def cancel(session: Session, ident: str, at: datetime) -> FollowUp:
    """Cancel a follow-up that has not gone yet."""
    row = find(session, ident)
    if row.state not in CANCELLABLE_STATES:
        raise FollowupdError(f"follow-up {row.id} is {row.state}: only pending ones are cancelled")
    row.state, row.reason, row.updated_at = FollowUpState.CANCELLED, "cancelled by hand", at
    return row
