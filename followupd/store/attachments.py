"""The files follow-ups carry for the owner (the formal notice to pay as a PDF).

The bytes are a deferred column: no read of follow-ups loads them. The
calendar writer asks for them here, for the items it writes, in one query
that reads the bytes of the rows that have one only; the feed asks for
their names (it links each file by URL), and for one file's bytes when it
is fetched.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, true
from sqlalchemy.orm import Session

from followupd.domain.owner_scope import Scope
from followupd.store.chunks import chunked
from followupd.store.models import FollowUp

Attachment = tuple[str, bytes]  # its file name, its bytes
Named = tuple[int, str]  # the id of the follow-up that carries it, its file name


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


def names(session: Session, keys: Iterable[str]) -> dict[str, Named]:
    """The attachment of each follow-up of `keys` that has one, by key, named without its bytes."""
    found: dict[str, Named] = {}
    for chunk in chunked(sorted(set(keys))):
        query = select(FollowUp.key, FollowUp.id, FollowUp.attachment_name).where(
            FollowUp.key.in_(chunk),
            FollowUp.attachment_name.is_not(None),
            FollowUp.attachment.is_not(None),
        )
        for key, followup_id, name in session.execute(query):
            if name is not None:
                found[key] = (followup_id, name)
    return found


def named(session: Session, file: Named, scope: Scope | None = None) -> bytes | None:
    """The bytes of `file`: the attachment of that follow-up under that name, if it is
    the owner's of `scope` (any owner's without one); None if there is no such file."""
    followup_id, name = file
    query = select(FollowUp.attachment).where(
        FollowUp.id == followup_id,
        FollowUp.attachment_name == name,
        scope.holds(FollowUp.owner) if scope is not None else true(),
    )
    data = session.execute(query).scalar_one_or_none()
    return None if data is None else bytes(data)


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
