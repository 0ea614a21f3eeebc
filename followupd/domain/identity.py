"""What names an item across the store, the calendar and the feed.

A follow-up's key is its identity everywhere: the UID of its calendar object
is the key plus ``@followupd``, so a rewrite is an update of the same object,
never a duplicate, and an object of anyone else's is never taken for ours.
Touchpoints have no key in a data file: theirs is derived from what they are.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

UID_SUFFIX = "@followupd"


def uid(key: str) -> str:
    return key + UID_SUFFIX


def uid_after(concern: str, run: int) -> str:
    """The UID of a concern's item written anew, at its `run`th period, because the user
    made the event followupd had written into a meeting of their own (they invited
    someone: followupd.channels.calendar.ical.invited). Still followupd's, unlike theirs."""
    return uid(f"{concern}~{run}")


def slug(text: str) -> str:
    """`text` with only the characters every server takes in a URL path segment."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")


def resource_name(key: str) -> str:
    """The object's file name in the collection: a safe slug of the key, made unique.

    Servers refuse some characters in a resource name (Radicale answers 400
    to ':'), so the name is chosen here; the UID keeps the readable key.
    """
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return f"{slug(key)[:120]}-{digest}.ics"


def object_name(item_uid: str) -> str:
    """The file name of the object of UID `item_uid`: its concern's, for a concern's first
    UID (`uid`), so that a write interrupted and made again finds the same object."""
    return resource_name(item_uid.removesuffix(UID_SUFFIX))


def touchpoint_key(mission: str, kind: str, at: datetime, contact: str | None) -> str:
    """Touchpoints have no key in the data file: this one is derived from what they are."""
    return f"{mission}|{kind}|{at.astimezone(UTC).isoformat()}|{contact or ''}"
