"""Repeating reminders: the nominal dates of a cadence that can fall in a window."""

from __future__ import annotations

from datetime import date, timedelta


def cadence_dates(first: date, every_days: int, earliest: date, latest: date) -> list[date]:
    """``first``, ``first + every``, … that lie in ``[earliest, latest]``.

    Each date names its period, so it goes into the follow-up's key: the same
    period always gives the same key, whatever the instant of evaluation.
    """
    if every_days <= 0:
        raise ValueError("every_days must be positive")
    if latest < first:
        return []
    skip = max(0, (earliest - first).days // every_days)
    current = first + timedelta(days=skip * every_days)
    dates = []
    while current <= latest:
        if current >= earliest:
            dates.append(current)
        current += timedelta(days=every_days)
    return dates


def period_key(rule: str, subject: str, day: date) -> str:
    """The key of `rule`'s follow-up about `subject` for the period named `day`:
    ``<rule>:<subject>:<ISO day>``, one per period (a repeating reminder's)."""
    return f"{rule}:{subject}:{day.isoformat()}"
