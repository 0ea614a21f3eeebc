"""What the user did to followupd's own calendar items, in whatever app: the calendar as a remote.

followupd writes its reminders as VTODOs (and tentative VEVENTs for meetings
to place) whose UID ends with ``@followupd``. On each sync it reads them
back: one completed, cancelled, or put off is an answer from the user. Apps
say so in their own ways, all read here:

- completed: STATUS:COMPLETED, a COMPLETED stamp (Apple Reminders may write
  it alone), or PERCENT-COMPLETE:100 alone (old ownCloud and Nextcloud Tasks);
- cancelled: STATUS:CANCELLED;
- put off: the due (a VTODO's DUE, else its DTSTART; a VEVENT's DTSTART) moved
  later, or an alarm snoozed past the due: an RFC 9074 snooze alarm (a VALARM
  with ``RELATED-TO;RELTYPE=SNOOZE`` and an absolute TRIGGER, what Apple
  writes), or Thunderbird's ``X-MOZ-SNOOZE-TIME`` (``X-MOZ-SNOOZE-TIME-<n>``
  for one occurrence of a recurring item; tasks.org writes it too).

Reading never raises: a property that cannot be read leaves that field None,
and a document that cannot be parsed gives no item.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from icalendar import Calendar, Component, vText

from followupd.domain.identity import UID_SUFFIX
from followupd.sources.ical.vtimezone import ObjectParser

MOZ_SNOOZE = "X-MOZ-SNOOZE-TIME"  # and X-MOZ-SNOOZE-TIME-<recurrence id in µs>
T = TypeVar("T")


@dataclass(frozen=True)
class ItemSeen:
    """One of followupd's items as the calendar holds it; a field that cannot be read is None."""

    uid: str
    kind: Literal["task", "event"]
    status: str | None  # upper case as written; "" when there is none
    completed: bool | None
    completed_at: datetime | None  # the app's time of completion
    cancelled: bool | None
    due: datetime | None  # a task's DUE (else DTSTART), an event's DTSTART
    snoozed_until: datetime | None  # the latest snooze of an alarm, if any
    # its title and notes (SUMMARY, DESCRIPTION) as the app left them, one per line
    text: str | None = None
    due_day: date | None = None  # the day of `due` in the zone items are read in


@dataclass(frozen=True)
class NoAction:
    """Nothing the user did says anything: the item stays as followupd wrote it."""


@dataclass(frozen=True)
class Completed:
    """Done by the user; `at` is the app's time, None when it wrote none."""

    at: datetime | None


@dataclass(frozen=True)
class Dismissed:
    """Cancelled by the user: not to be done."""


@dataclass(frozen=True)
class Snoozed:
    """Put off by the user until `until` (the due moved later, or an alarm snoozed)."""

    until: datetime


UserAction = NoAction | Completed | Dismissed | Snoozed


def user_action(seen: ItemSeen, written_due: datetime) -> UserAction:
    """What the user did to an item followupd wrote due at `written_due`.

    Completed wins over cancelled, which wins over put off: an app that
    completes a task keeps its due. A due moved earlier is no answer.
    """
    if seen.completed:
        return Completed(at=seen.completed_at)
    if seen.cancelled:
        return Dismissed()
    later = [when for when in (seen.due, seen.snoozed_until) if when and when > written_due]
    return Snoozed(until=max(later)) if later else NoAction()


def items_seen(data: str | bytes, zone: ZoneInfo) -> list[ItemSeen]:
    """followupd's VTODOs and VEVENTs in one document; `zone` reads floating times and dates.

    An exception to a recurrence (a RECURRENCE-ID) is left out when its
    master is there: followupd writes no recurrence, and the master says
    what the user did to the item.
    """
    text = _text(data)
    if UID_SUFFIX not in _FOLD.sub("", text):  # most of a calendar: the user's, not parsed again
        return []
    try:
        calendar = _TolerantParser(text).calendar()
    except Exception:  # icalendar raises ValueError and others on broken text
        return []
    if not isinstance(calendar, Calendar):
        return []
    parts = [
        part
        for part in calendar.walk()
        if part.name in ("VTODO", "VEVENT") and _uid(part).endswith(UID_SUFFIX)
    ]
    masters = {_uid(part) for part in parts if "RECURRENCE-ID" not in part}
    return [
        _seen(part, zone)
        for part in parts
        if "RECURRENCE-ID" not in part or _uid(part) not in masters
    ]


class _TolerantParser(ObjectParser):
    """The reader's parser, but a property it cannot parse is kept as text, in a task too.

    icalendar gives up on a whole VTODO for one value it cannot read (a DUE
    of "next week"); kept as text, that property reads as None here, and
    the rest of the item is read. Only the hook and stack ObjectParser uses
    are relied on (tests/test_ical_internals.py checks them).
    """

    def parse_and_add_property(
        self, name: str, params: Any, val: str, tzid: str | None, line: Any
    ) -> None:
        try:
            super().parse_and_add_property(name, params, val, tzid, line)
        except (ValueError, TypeError):
            if self._stack:
                self._stack[-1].add(name, vText(val), encode=False)


_FOLD = re.compile(r"\r?\n[ \t]")  # a long line goes on after a break and a space or tab


def _text(data: str | bytes) -> str:
    """UTF-8 as RFC 5545 says, else Windows-1252 (old apps); without a byte order mark."""
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _seen(part: Component, zone: ZoneInfo) -> ItemSeen:
    task = part.name == "VTODO"
    status = _read(lambda: _status(part))
    completed_at = _read(lambda: _completed_at(part, zone))
    due = _read(lambda: _due(part, zone, task))
    return ItemSeen(
        uid=_uid(part),
        kind="task" if task else "event",
        status=status,
        completed=_read(lambda: _completed(part, status, completed_at)),
        completed_at=completed_at,
        cancelled=None if status is None else status == "CANCELLED",
        due=due,
        snoozed_until=_read(lambda: _snoozed_until(part)),
        text=_read(lambda: _text_of(part)),
        due_day=due.astimezone(zone).date() if due is not None else None,
    )


def _read(what: Callable[[], T]) -> T | None:
    """A field, or None when the property it comes from cannot be read."""
    try:
        return what()
    except Exception:  # one odd property must not hide what the rest of the item says
        return None


def _uid(part: Component) -> str:
    value = part.get("UID")
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value).strip() if value is not None else ""


def _single(part: Component, name: str) -> Any:
    value = part.get(name)
    if isinstance(value, list):  # written twice: which one to trust is unknown
        raise ValueError(f"{name} appears {len(value)} times")
    return value


def _text_of(part: Component) -> str:
    """The item's SUMMARY and DESCRIPTION, as written, one after the other."""
    return "\n".join(
        str(_single(part, name)) for name in ("SUMMARY", "DESCRIPTION") if name in part
    )


def _status(part: Component) -> str:
    value = _single(part, "STATUS")
    return "" if value is None else str(value).strip().upper()


def _completed(part: Component, status: str | None, completed_at: datetime | None) -> bool:
    """Done by any of the three signs apps use; a COMPLETED stamp counts even if unreadable."""
    if status == "COMPLETED" or completed_at is not None or "COMPLETED" in part:
        return True
    percent = _single(part, "PERCENT-COMPLETE")
    return percent is not None and int(str(percent).strip()) >= 100


def _completed_at(part: Component, zone: ZoneInfo) -> datetime | None:
    if "COMPLETED" not in part:
        return None
    return _aware(_single(part, "COMPLETED"), zone)


def _due(part: Component, zone: ZoneInfo, task: bool) -> datetime | None:
    for name in ("DUE", "DTSTART") if task else ("DTSTART",):
        if name in part:
            return _aware(_single(part, name), zone)
    return None


def _aware(prop: Any, zone: ZoneInfo) -> datetime:
    """A date or time property as an aware time: floating ones and dates read in `zone`."""
    value = getattr(prop, "dt", None)
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)
    if isinstance(value, date):
        return datetime.combine(value, time.min, tzinfo=zone)
    raise ValueError(f"not a date or time: {prop!r}")


def _snoozed_until(part: Component) -> datetime | None:
    """The latest snooze of the item's alarms: RFC 9074 snooze alarms, Thunderbird's property."""
    found = [_utc_text(value) for name, value in part.property_items(recursive=False)
             if name.upper().startswith(MOZ_SNOOZE)]  # fmt: skip
    found += [when for alarm in part.subcomponents if (when := _snooze_alarm_time(alarm))]
    return max(found, default=None)


def _snooze_alarm_time(alarm: Component) -> datetime | None:
    """When an RFC 9074 snooze alarm fires; None for any other component, or a relative one."""
    if alarm.name != "VALARM" or not _is_snooze_alarm(alarm):
        return None
    value = getattr(_single(alarm, "TRIGGER"), "dt", None)
    return value if isinstance(value, datetime) and value.tzinfo is not None else None


def _is_snooze_alarm(alarm: Component) -> bool:
    """A VALARM that snoozes another: ``RELATED-TO;RELTYPE=SNOOZE:<that alarm's UID>``."""
    related: Any = alarm.get("RELATED-TO")
    for value in related if isinstance(related, list) else [related]:
        params = getattr(value, "params", {})
        if str(params.get("RELTYPE", "")).upper() == "SNOOZE":
            return True
    return False


def _utc_text(value: Any) -> datetime:
    """A time Thunderbird writes as text in UTC (its X- properties reach icalendar unparsed)."""
    text = value.to_ical().decode() if hasattr(value, "to_ical") else str(value)
    return datetime.strptime(text.strip(), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
