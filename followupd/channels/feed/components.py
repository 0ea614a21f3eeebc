"""The feed's objects as bytes: made once per item, kept while the item stays the same.

The VTODO and VEVENT are the CalDAV channel's own (`ical.component`), and
their bytes are icalendar's, to the octet: only the folding of long lines is
done here. icalendar folds a line one character at a time, encoding each to
count its octets; the inline PDFs of formal notices (tens of thousands of
base64 characters each) made that most of the time a feed took to build.
`folded` cuts the encoded line at the same places by slicing.

`Components` keeps each item's bytes from one build to the next, and the
calendar item made of each stored row: after a change, a feed of 10,000
items makes again the few items that changed.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from functools import partial
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

from icalendar import Component

from followupd.channels.calendar import ical

LIMIT = 75  # icalendar's: a folded line holds at most LIMIT - 1 octets before its CRLF
ESCAPES = b"\\^"  # never left last on a folded line: icalendar moves them to the next one


def folded(line: str) -> bytes:
    """A content line folded in UTF-8 as icalendar folds it (``Contentline.to_ical``).

    The longest start that fits in LIMIT - 1 octets without cutting a
    character, less a last backslash or caret, then the same with the rest.
    """
    data = str(line).encode("utf-8")
    width, pieces, start = LIMIT - 1, [], 0
    while len(data) - start > width:
        end = start + width
        while data[end] & 0xC0 == 0x80:  # inside a character: cut before it
            end -= 1
        if data[end - 1] in ESCAPES:
            end -= 1
        pieces.append(data[start:end])
        start = end
    pieces.append(data[start:])
    return b"\r\n ".join(pieces)


def serialized(part: Component) -> bytes:
    """`part` as ``part.to_ical()`` writes it, folded faster."""
    return b"".join(folded(line) + b"\r\n" for line in part.content_lines() if line)


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Kept(Generic[K, V]):
    """Values made in one round, kept for the next: those a round does not ask for are let go."""

    def __init__(self) -> None:
        self._last: dict[K, V] = {}
        self._now: dict[K, V] = {}

    def get(self, key: K, make: Callable[[], V]) -> V:
        """The value of `key` from this round or the last, else `make()`."""
        if key in self._now:
            return self._now[key]
        found = self._last[key] if key in self._last else make()
        self._now[key] = found
        return found

    def end_round(self) -> None:
        self._last, self._now = self._now, {}


class Components:
    """What the last build made, to reuse what did not change: each item's bytes, and each
    stored row's calendar item (`build.items_of`)."""

    def __init__(self) -> None:
        self.parts: Kept[tuple[str, ical.CalendarItem], bytes] = Kept()
        self.items: Kept[Hashable, ical.CalendarItem] = Kept()

    def of(self, items: Sequence[ical.CalendarItem], zone: ZoneInfo) -> list[bytes]:
        """The VTODO or VEVENT of each item, its times in `zone`; keeps these for the next call."""
        parts = [self.parts.get((zone.key, item), partial(_made, item, zone)) for item in items]
        self.parts.end_round()
        return parts


def _made(item: ical.CalendarItem, zone: ZoneInfo) -> bytes:
    return serialized(ical.component(item, zone))
