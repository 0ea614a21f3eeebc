"""What a calendar's sync learns of it: what changed since the last token, and what was fetched.

Shared by the two ways of asking: the caldav library (followupd.sources.caldav.changes)
and plain requests (followupd.sources.caldav.plain_calendar).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ETags = dict[str, str | None]  # object URL -> ETag


@dataclass(frozen=True)
class Changes:
    mode: str  # incremental | full | etag comparison
    changed: dict[str, str | None]  # URL -> ETag
    deleted: set[str]
    token: str | None


@dataclass
class Fetched:
    """What one fetch brought: each object's data, and those to fetch again next time."""

    data: dict[str, bytes] = field(default_factory=dict)  # URL -> calendar data
    missed: set[str] = field(default_factory=set)  # not fetched (a failed GET): tried again


def differing(listed: ETags, known: ETags) -> ETags:
    """The listed objects that are new, or whose ETag is not the one stored."""
    return {href: etag for href, etag in listed.items() if href not in known or known[href] != etag}
