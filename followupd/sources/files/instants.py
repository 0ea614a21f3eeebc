"""An instant as a data file or the command line writes it: an ISO date or datetime.

Apart from the data file's models (records.py), so that reading ``--now`` or
``--from`` loads none of them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo


def parse_instant(value: Any, zone: ZoneInfo) -> datetime:
    """An ISO date or datetime as an aware datetime; naive ones are read in `zone`."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"expected a date and time like 2026-11-10T10:00:00+01:00 (got {value!r})"
            ) from None
    if isinstance(value, datetime):
        instant = value if value.tzinfo is not None else value.replace(tzinfo=zone)
    elif isinstance(value, date):
        instant = datetime(value.year, value.month, value.day, tzinfo=zone)
    else:
        raise ValueError(f"expected a date and time like 2026-11-10T10:00:00+01:00 (got {value!r})")
    try:  # stored in UTC: 0001-01-01T00:00+14:00 has no UTC time
        instant.astimezone(ZoneInfo("UTC"))
    except OverflowError:
        raise ValueError(f"{instant.isoformat()} is out of range") from None
    return instant
