"""The demo's dates, moved to the week it is loaded in.

The demo portfolio is written as seen from one Sunday, `REFERENCE_DAY`. Loaded
as written months later, every follow-up in it would be long past; so
`followupd init --demo` moves every date and date-time of the parsed file by
the same whole number of weeks, putting the reference day on the last Sunday
on or before the day of loading. Whole weeks keep each weekday as written (a
Tuesday meeting is still on a Tuesday), so the working days, and what is due
on them, keep their pattern.

A date-time keeps its wall-clock time in the zone of the client it concerns
(a 10:00 meeting in Paris stays at 10:00 across a change of daylight-saving
time), else in `zone`, else at the UTC offset it was written with. Dates in
strings (JSON) are left as they are: the demo is TOML, whose parser gives
dates as such.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The day the demo's dates are written from: Sunday 22 November 2026. A demo
# loaded in the week that starts on it is loaded as written.
REFERENCE_DAY = date(2026, 11, 22)


def last_sunday(day: date) -> date:
    """The Sunday on or before `day`."""
    return day - timedelta(days=(day.weekday() + 1) % 7)


def weeks_for(today: date) -> int:
    """How many weeks to move the demo so that its reference day is `last_sunday(today)`."""
    return (last_sunday(today) - REFERENCE_DAY).days // 7


def shifted(data: Mapping[str, Any], today: date, zone: tzinfo | None = None) -> dict[str, Any]:
    """`data` (a parsed demo file) with every date moved to the week of `today`."""
    return moved_by_weeks(data, weeks_for(today), zone)


def moved_by_weeks(
    data: Mapping[str, Any], weeks: int, zone: tzinfo | None = None
) -> dict[str, Any]:
    """`data` with every date and date-time moved by `weeks` weeks; `data` is left as it is."""
    if weeks == 0:
        return {kind: _copy(records) for kind, records in data.items()}
    zones = _ZonesOfRecords(data, zone)
    moved: dict[str, Any] = {}
    for kind, records in data.items():
        if not isinstance(records, list):
            moved[kind] = _move(records, weeks, zone)
            continue
        moved[kind] = [_move(record, weeks, zones.of(kind, record)) for record in records]
    return moved


def _move(value: Any, weeks: int, zone: tzinfo | None) -> Any:
    if isinstance(value, datetime):
        return _move_instant(value, weeks, zone)
    if isinstance(value, date):
        return value + timedelta(weeks=weeks)
    if isinstance(value, Mapping):
        return {name: _move(item, weeks, zone) for name, item in value.items()}
    if isinstance(value, list):
        return [_move(item, weeks, zone) for item in value]
    return value


def _move_instant(instant: datetime, weeks: int, zone: tzinfo | None) -> datetime:
    if instant.tzinfo is None or zone is None:  # naive: read later in the owner's zone
        return instant + timedelta(weeks=weeks)
    wall = instant.astimezone(zone).replace(tzinfo=None) + timedelta(weeks=weeks)
    # through UTC and back: a wall time in a spring-forward gap becomes a real one
    return wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {name: _copy(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


class _ZonesOfRecords:
    """The zone each record's times are written in: its client's, found through the file."""

    def __init__(self, data: Mapping[str, Any], fallback: tzinfo | None) -> None:
        self.fallback = fallback
        self.clients: dict[str, tzinfo | None] = {}
        for client in _records(data, "clients"):
            self.clients[str(client.get("key"))] = _zone(client.get("timezone")) or fallback
        self.missions = {
            str(mission.get("key")): self.clients.get(str(mission.get("client")), fallback)
            for mission in _records(data, "missions")
        }

    def of(self, kind: str, record: Any) -> tzinfo | None:
        if not isinstance(record, Mapping):
            return self.fallback
        if kind == "clients":
            return self.clients.get(str(record.get("key")), self.fallback)
        if "mission" in record:
            return self.missions.get(str(record["mission"]), self.fallback)
        if "client" in record:
            return self.clients.get(str(record["client"]), self.fallback)
        return self.fallback


def _records(data: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    records = data.get(kind)
    if not isinstance(records, list):
        return []
    return [record for record in records if isinstance(record, Mapping)]


def _zone(name: Any) -> tzinfo | None:
    if not isinstance(name, str):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None  # the import reports the bad name
