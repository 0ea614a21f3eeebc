"""A promise to pay as the owner writes it in a task: "promis 18/12", "promised 2026-12-18".

One convention, in both languages: a word of the promise (promis, promise,
promised, promesse; case and accents aside), then, a few words later at
most ("le", "pour le", "by", ":"…), a date: ISO (2026-12-18), or day first
(18/12/2026, 18/12/26, 18/12, 18.12, 18-12-2026). A date without its year
is the one nearest the day the task was done. The last such mention in the
text wins; none, or an impossible date (31/02), is no promise.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

_WORD = r"\b(?:promis|promise|promised|promesse)\b"
# a few words between the promise and its date ("pour le", "to pay by"), no digits
_BETWEEN = r"[^\d\n]{0,24}?"
_ISO = r"(?P<iso>\d{4}-\d{1,2}-\d{1,2})"
_DAY_FIRST = r"(?P<day>\d{1,2})[/.\-](?P<month>\d{1,2})(?:[/.\-](?P<year>\d{4}|\d{2}))?"
PROMISE = re.compile(rf"{_WORD}{_BETWEEN}(?:{_ISO}|{_DAY_FIRST})(?![\d/.\-]*\d)", re.IGNORECASE)


def promised_in(text: str, done_on: date) -> date | None:
    """The date the last promise mention of `text` names; None without a readable one."""
    found = None
    for match in PROMISE.finditer(_plain(text)):
        day = _date_of(match, done_on)
        if day is not None:
            found = day
    return found


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def _date_of(match: re.Match[str], done_on: date) -> date | None:
    try:
        if match["iso"]:
            return date.fromisoformat(_padded_iso(match["iso"]))
        day, month = int(match["day"]), int(match["month"])
        if match["year"]:
            year = int(match["year"])
            return date(year + 2000 if year < 100 else year, month, day)
        candidates = []
        for year in (done_on.year - 1, done_on.year, done_on.year + 1):
            try:
                candidates.append(date(year, month, day))
            except ValueError:  # 29 February of a common year
                continue
        return min(candidates, key=lambda one: abs(one - done_on), default=None)
    except ValueError:
        return None


def _padded_iso(text: str) -> str:
    year, month, day = text.split("-")
    return f"{year}-{int(month):02d}-{int(day):02d}"
