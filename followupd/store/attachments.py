"""The files follow-ups carry for the owner (the formal notice to pay as a PDF).

A formal notice is kept as its data (`FollowUp.letter`, the JSON of
followupd.domain.formal_notice_record), and its PDF is made from it when
someone needs the bytes (followupd.channels.letters.files): evaluation does
not draw letters nobody may open. A follow-up recorded before schema 0013
keeps the PDF it was recorded with (`FollowUp.attachment`), served as it is.

Both columns are deferred: no read of follow-ups loads them. The calendar
writer asks for the files of the items it writes, in one query that reads
the rows that have one only; the feed asks for their names (it links each
file by URL: no letter is made for that), and for one file when it is
fetched.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.orm import Session

from followupd.domain.owner_scope import Scope
from followupd.store.chunks import chunked
from followupd.store.models import FollowUp

Attachment = tuple[str, bytes]  # its file name, its bytes
Named = tuple[int, str]  # the id of the follow-up that carries it, its file name


@dataclass(frozen=True, slots=True)
class Stored:
    """A follow-up's file as the outbox keeps it: its bytes, or the letter they are made of."""

    name: str
    data: bytes | None = None  # recorded before schema 0013: the PDF itself
    letter: str | None = None  # a formal notice's record, its PDF made when asked for


def _has_file() -> ColumnElement[bool]:
    """The follow-ups that carry a file: named, with its bytes or its letter."""
    return FollowUp.attachment_name.is_not(None) & or_(
        FollowUp.attachment.is_not(None), FollowUp.letter.is_not(None)
    )


def _stored(name: str | None, data: bytes | None, letter: str | None) -> Stored | None:
    if name is None or (data is None and letter is None):
        return None
    return Stored(name, None if data is None else bytes(data), letter)


def attachments(session: Session, keys: Iterable[str]) -> dict[str, Stored]:
    """The file of each follow-up of `keys` that has one, by key."""
    found: dict[str, Stored] = {}
    for chunk in chunked(sorted(set(keys))):
        query = select(
            FollowUp.key, FollowUp.attachment_name, FollowUp.attachment, FollowUp.letter
        ).where(FollowUp.key.in_(chunk), _has_file())
        for key, name, data, letter in session.execute(query):
            file = _stored(name, data, letter)
            if file is not None:  # as the query asks: for the types
                found[key] = file
    return found


def names(session: Session, keys: Iterable[str]) -> dict[str, Named]:
    """The file of each follow-up of `keys` that has one, by key, named without its bytes."""
    found: dict[str, Named] = {}
    for chunk in chunked(sorted(set(keys))):
        query = select(FollowUp.key, FollowUp.id, FollowUp.attachment_name).where(
            FollowUp.key.in_(chunk), _has_file()
        )
        for key, followup_id, name in session.execute(query):
            if name is not None:
                found[key] = (followup_id, name)
    return found


def named(session: Session, file: Named, scope: Scope | None = None) -> tuple[str, Stored] | None:
    """The file `file` names, with its follow-up's key: the file of that follow-up under that
    name, if it is the owner's of `scope` (any owner's without one); None if there is none."""
    followup_id, name = file
    query = select(FollowUp.key, FollowUp.attachment, FollowUp.letter).where(
        FollowUp.id == followup_id,
        FollowUp.attachment_name == name,
        scope.holds(FollowUp.owner) if scope is not None else true(),
    )
    for key, data, letter in session.execute(query):
        stored = _stored(name, data, letter)
        if stored is not None:
            return key, stored
    return None


def latest(session: Session, rule: str, subject_key: str) -> tuple[str, Stored] | None:
    """The file of `rule`'s latest follow-up about `subject_key` that has one, with that
    follow-up's key."""
    query = (
        select(FollowUp.key, FollowUp.attachment_name, FollowUp.attachment, FollowUp.letter)
        .where(FollowUp.rule == rule, FollowUp.subject_key == subject_key, _has_file())
        .order_by(FollowUp.due_at.desc(), FollowUp.id.desc())
        .limit(1)
    )
    for key, name, data, letter in session.execute(query):
        file = _stored(name, data, letter)
        if file is not None:
            return key, file
    return None
