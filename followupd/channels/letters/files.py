"""The bytes of the files follow-ups carry (followupd.store.attachments): made when asked for.

A file recorded before schema 0013 is its bytes, given as they are. A formal
notice is its record, frozen at evaluation: its PDF is made here, from that
record alone, so the same follow-up always gives the same bytes.

A letter that cannot be made now (a record this version cannot read, a
value ReportLab chokes on) is that one file missing, logged with its
follow-up's key: the calendar item is written without it, the feed's link
answers 404, and the other items go on. `invoice letter` says why instead
(`file_bytes` raises).
"""

from __future__ import annotations

import logging
from functools import lru_cache

from followupd.channels.letters import formal_notice_pdf
from followupd.domain.formal_notice_record import loads
from followupd.store.attachments import Attachment, Stored

log = logging.getLogger("followupd.letters")


def file_bytes(file: Stored) -> bytes:
    """The bytes of `file`; whatever making its letter raised, if it cannot be made."""
    if file.data is not None:
        return file.data
    if file.letter is None:
        raise ValueError(f"{file.name}: neither bytes nor a letter")
    return _pdf(file.letter)


@lru_cache(maxsize=32)
def _pdf(record: str) -> bytes:
    """The PDF of a letter's record: the last few kept, as a calendar app may fetch the
    feed's link of one again and again (tens of milliseconds each)."""
    return formal_notice_pdf(loads(record))


def made(key: str, file: Stored | None) -> Attachment | None:
    """The name and bytes of `file`, the follow-up keyed `key`'s; None, logged, if it cannot be
    made (that file alone is missing)."""
    if file is None:
        return None
    try:
        return file.name, file_bytes(file)
    except Exception:  # a bug or a value ReportLab chokes on: this file alone
        log.exception("%s: its file %s could not be made", key, file.name)
        return None
