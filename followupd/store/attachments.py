"""The files follow-ups carry for the owner (the formal notice to pay as a PDF).

The bytes are a deferred column: no read of follow-ups loads them. The
calendar writer and the feed ask for them here, for the items they show,
in one query that reads the bytes of the rows that have one only.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from followupd.store.chunks import chunked
from followupd.store.models import FollowUp

Attachment = tuple[str, bytes]  # its file name, its bytes


def attachments(session: Session, keys: Iterable[str]) -> dict[str, Attachment]:
    """The attachment of each follow-up of `keys` that has one, by key."""
    found: dict[str, Attachment] = {}
    for chunk in chunked(sorted(set(keys))):
        query = select(FollowUp.key, FollowUp.attachment_name, FollowUp.attachment).where(
            FollowUp.key.in_(chunk),
            FollowUp.attachment_name.is_not(None),
            FollowUp.attachment.is_not(None),
        )
        for key, name, data in session.execute(query):
            if name is not None and data is not None:  # as the query asks: for the types
                found[key] = (name, bytes(data))
    return found


def latest(session: Session, rule: str, subject_key: str) -> tuple[str, Attachment] | None:
    """The attachment of `rule`'s latest follow-up about `subject_key` that has one, with
    that follow-up's key."""
    query = (
        select(FollowUp.key, FollowUp.attachment_name, FollowUp.attachment)
        .where(
            FollowUp.rule == rule,
            FollowUp.subject_key == subject_key,
            FollowUp.attachment_name.is_not(None),
            FollowUp.attachment.is_not(None),
        )
        .order_by(FollowUp.due_at.desc(), FollowUp.id.desc())
        .limit(1)
    )
    for key, name, data in session.execute(query):
        if name is not None and data is not None:
            return key, (name, bytes(data))
    return None
