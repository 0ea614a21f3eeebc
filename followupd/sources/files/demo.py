"""`followupd init --demo`: the demo portfolio, loaded in the week of the day it is loaded.

The first time, its dates are moved to the week of `today` (see `demo_dates`).
Loaded again into a store that holds it, it keeps the dates it was first
loaded with, whatever the day: the Quick start line is run again to start
the daemon again, and moving the dates then would leave behind what was
recorded on the old ones (touchpoints are keyed by their instant, periodic
follow-ups by their day). Which week that was is read back from the stored
invoices of the demo, whose issue dates nothing but an import changes.
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from followupd.config.owners import SINGLE_OWNER_KEY
from followupd.sources.files.demo_dates import REFERENCE_DAY, moved_by_weeks, weeks_for
from followupd.sources.files.importer import ImportReport, import_files
from followupd.store.db import Store
from followupd.store.models import Invoice

DEMO_DATA = Path(__file__).parents[2] / "resources" / "demo.toml"


@dataclass(frozen=True)
class DemoLoad:
    """What loading the demo did: the import, and the Sunday its dates are seen from."""

    report: ImportReport
    weeks: int  # how far its dates were moved
    kept: bool  # the demo was already there: its dates were kept

    @property
    def seen_from(self) -> date:
        return REFERENCE_DAY + timedelta(weeks=self.weeks)


def load_demo(
    store: Store,
    today: date,
    zone: ZoneInfo,
    owners: Collection[str] = (SINGLE_OWNER_KEY,),
    path: Path = DEMO_DATA,
) -> DemoLoad:
    """Import the demo with its dates in the week of `today`, or where it was loaded before."""
    stored = weeks_stored(store, tomllib.loads(path.read_text(encoding="utf-8")))
    weeks = weeks_for(today) if stored is None else stored
    report = import_files(
        store, [path], zone, owners, adjust=lambda data: moved_by_weeks(data, weeks, zone)
    )
    return DemoLoad(report, weeks, kept=stored is not None)


def weeks_stored(store: Store, data: dict[str, Any]) -> int | None:
    """By how many weeks the demo in the store was moved; None when it is not stored.

    Read from the first of the demo's invoices that is stored with its issue
    date a whole number of weeks from the file's.
    """
    written: dict[str, date] = {
        invoice["number"]: invoice["issued"]
        for invoice in data.get("invoices", [])
        if isinstance(invoice.get("number"), str) and isinstance(invoice.get("issued"), date)
    }
    if not written:
        return None
    with store.sessions() as session:
        query = select(Invoice.number, Invoice.issued).where(Invoice.number.in_(written))
        found: dict[str, date] = dict(session.execute(query).all())
    for number, issued in written.items():
        stored = found.get(number)
        if stored is not None and (stored - issued).days % 7 == 0:
            return (stored - issued).days // 7
    return None
