"""Follow-ups as the user asks for them: by number or key, and the newest ones."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from followupd.errors import NotFound
from followupd.store.models import FollowUp


def find(session: Session, ident: str) -> FollowUp:
    """A follow-up by its number (as `outbox list` shows it) or by its key."""
    condition = FollowUp.key == ident
    if ident.isdigit():
        condition = or_(condition, FollowUp.id == int(ident))
    row = session.scalar(select(FollowUp).where(condition))
    if row is None:
        raise NotFound(f"no follow-up numbered or keyed {ident!r}")
    return row


def listing(
    session: Session, states: Sequence[str] = (), rule: str | None = None, limit: int = 50
) -> list[FollowUp]:
    """The `limit` follow-ups due last, newest first; only in `states`, of `rule`, if given."""
    query = select(FollowUp).order_by(FollowUp.due_at.desc(), FollowUp.id.desc()).limit(limit)
    if states:
        query = query.where(FollowUp.state.in_(states))
    if rule is not None:
        query = query.where(FollowUp.rule == rule)
    return list(session.scalars(query))
