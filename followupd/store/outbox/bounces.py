"""A follow-up whose email bounced: sent, then refused by the recipient's server.

The mailbox sync reads the delivery status notification (RFC 3464) some
time after the email left: the follow-up is `sent` by then, and becomes
`failed` with the notification's status and diagnostic, so that `outbox
list` shows it among the failures and `outbox retry` sends it again once
the address is fixed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from followupd.domain.states import FollowUpState
from followupd.store.models import FollowUp


def bounce_reason(status: str | None, diagnostic: str | None) -> str:
    """The reason a bounced follow-up shows: ``bounced: 5.1.1 550 5.1.1 <x@y>: user unknown``."""
    said = " ".join(part for part in (status, diagnostic) if part)
    return f"bounced: {said}" if said else "bounced"


def mark_bounced(session: Session, key: str, reason: str, at: datetime) -> bool:
    """The sent follow-up keyed `key` failed: `reason`. False: none such, or not sent (any more).

    A second notification of the same follow-up, or the same one read
    again, changes nothing; nor does one of a follow-up retried by hand
    since (pending again: it may reach a fixed address).
    """
    result = session.execute(
        update(FollowUp)
        .where(FollowUp.key == key, FollowUp.state == FollowUpState.SENT)
        .values(state=FollowUpState.FAILED, reason=reason, last_error=reason, updated_at=at)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))
