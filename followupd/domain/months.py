"""Calendar months: a date moved by whole months, as contracts and the law count them."""

from __future__ import annotations

import calendar
from datetime import date


def add_months(day: date, months: int) -> date:
    """`day` moved by `months` calendar months (negative: back), clamped to the month's end.

    As French procedure counts a term in months or years (CPC art. 641 and 642): the
    same day of the month, or the month's last day when it has no such day.
    """
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))
