"""The claims of workers that provably died, handed back at once.

Waiting out a dead worker's 5-minute lease would hold back what it had
claimed; whether it is dead is `store.coordination`'s to say.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from followupd.domain.states import FollowUpState
from followupd.store.coordination import DUE, announce, is_dead
from followupd.store.models import FollowUp
from followupd.store.outbox.claim import hand_back


def release_orphans(session: Session, at: datetime) -> dict[str, int]:
    """Hand back to ``pending`` the claims of workers that provably died.

    On PostgreSQL a worker is dead when nobody holds its lock (`alive`),
    wherever it ran; on SQLite, when it ran on this machine and its process is
    gone (`died_here`). Returns how many rows each dead worker left. The
    attempt stays counted: the message may have left before the worker died.
    """
    owners = session.scalars(
        select(FollowUp.lease_owner)
        .where(FollowUp.state == FollowUpState.SENDING, FollowUp.lease_owner.is_not(None))
        .distinct()
    ).all()
    released: dict[str, int] = {}
    for owner in owners:
        assert owner is not None
        if not is_dead(session, owner):
            continue
        released[owner] = hand_back(session, at, FollowUp.lease_owner == owner)
    if any(released.values()):
        announce(session, DUE)
    return released
