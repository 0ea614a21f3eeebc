"""What calendar events mean to followupd: mission events and meetings.

The conventions a user can follow in any calendar app (README, "Your
calendar as a source"):

- a **mission event** has ``mission`` among its categories, or a title that
  starts with ``[mission]``. Its title (without the prefix) is the mission's
  title, its first and last days are the mission's start and end, and its
  description holds ``field: value`` lines with the other fields of a
  ``[[missions]]`` record (``key`` and ``client`` are required). Values are
  read as in a TOML data file (``true``, ``3000``, ``2026-09-01``), or as text.
  A line that names no field is a note and is left alone; a bad value is a
  problem of that event only. A description in HTML (Google Calendar writes
  its editor's HTML there) is read as the lines of text it shows.
- a **meeting** is an event that has ended, is not a mission event, and either
  has a known contact among its attendees or names a mission key in brackets
  in its title (``Point d'étape [acme-audit]``).
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from followupd.sources.caldav.html_text import html_to_lines, looks_like_html
from followupd.sources.ical.happenings import Happening

MISSION_PREFIX = "[mission]"
# `name: value`, where name looks like a field (a note line such as "Lieu : Lyon" has a capital)
FIELD_LINE = re.compile(r"^\s*([a-z][a-z_]*)\s*:\s*(.*?)\s*$")
BRACKETED = re.compile(r"\[([a-z0-9][a-z0-9._-]*)\]", re.IGNORECASE)


@cache
def mission_fields() -> tuple[str, ...]:
    """The fields a mission event's description may give: a mission record's.

    Asked for when a mission event is read, so that what only tells meetings
    from mission events (an evaluation's meetings) loads no data-file models.
    """
    from followupd.sources.files.records import MissionRecord

    return tuple(MissionRecord.model_fields)


def is_mission_event(event: Happening) -> bool:
    return "mission" in event.categories or event.summary.lower().startswith(MISSION_PREFIX)


@dataclass
class MissionEvent:
    """The ``[[missions]]`` record an event describes, and what is wrong with its lines."""

    fields: dict[str, Any]
    problems: list[str] = field(default_factory=list)


def _value(text: str) -> Any:
    """A value as TOML reads it (number, boolean, date), else the text itself."""
    if text.lower() in ("none", "aucun", "aucune", ""):
        return None
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except (ValueError, RecursionError):  # TOMLDecodeError, a number too long, too deep
        return text


def mission_event(event: Happening) -> MissionEvent:
    title = event.summary
    if title.lower().startswith(MISSION_PREFIX):
        title = title[len(MISSION_PREFIX) :]
    found = MissionEvent({"title": title.strip(), "start": event.first_day})
    if event.backwards:  # the app's end is a mistake; a one-day mission would be a guess
        found.problems.append("the event ends before it starts: correct its end date")
    elif not event.open_end:
        found.fields["end"] = event.last_day
    for number, line in enumerate(description_lines(event.description), start=1):
        match = FIELD_LINE.match(line)
        if not match:
            continue
        name, text = match.groups()
        if name not in mission_fields():
            close = difflib.get_close_matches(name, mission_fields(), n=1)
            if close:  # a likely typo of a field; other words are notes
                found.problems.append(
                    f"description line {number}: unknown field {name!r}; did you mean {close[0]!r}?"
                )
            continue
        found.fields[name] = _value(text)
    for required in ("key", "client"):
        if required not in found.fields:
            found.problems.append(f"description: add a line '{required}: …' (required)")
    return found


def description_lines(description: str) -> list[str]:
    """The lines a description shows: HTML ones read as text (see html_text)."""
    if looks_like_html(description):
        description = html_to_lines(description)
    return description.splitlines()


def bracketed_keys(event: Happening) -> set[str]:
    """Mission keys named in brackets in the title, such as ``[acme-audit]``."""
    return {key.lower() for key in BRACKETED.findall(event.summary) if key.lower() != "mission"}


def is_past(event: Happening, at: datetime) -> bool:
    return event.end <= at if event.end > event.start else event.start <= at
