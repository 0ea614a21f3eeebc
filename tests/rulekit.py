"""Helpers shared by the rule tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from followupd.rules.base import Intent
from followupd.sources.files.importer import import_files
from followupd.store.db import Store
from followupd.store.models import FollowUp
from followupd.templates.loader import LazySubject

PARIS = ZoneInfo("Europe/Paris")
# A client, its contact (with a phone number) and one signed mission, for the tests of
# delivery and of the calendar to add invoices, issues or events to.
ACME = """\
[[clients]]
key = "acme"
name = "ACME SA"
[[contacts]]
key = "jdupont"
client = "acme"
name = "Jeanne Dupont"
email = "jeanne.dupont@acme.example"
phone = "+33 6 12 34 56 78"
[[missions]]
key = "acme-audit"
client = "acme"
title = "Audit du SI"
contact = "jdupont"
start = 2026-09-01
contract_signed = 2026-08-25
"""

# Two owners of one agency, for the tests of several owners. Lines written right
# after a table belong to it: Bob's comes last, so `BOB + "key = value\n"` is his.
CLAIRE = """\
[[owners]]
key = "claire"
name = "Claire Martin"
email = "claire@cabinet.example"
"""
BOB = """\
[[owners]]
key = "bob"
name = "Bob Durand"
email = "bob@cabinet.example"
"""
BOB_IN_MONTREAL = BOB + 'timezone = "America/Montreal"\nlanguage = "en"\ncountry = "CA"\n'


def imported(store: Store, tmp_path: Path, text: str, owners: Sequence[str] = ("owner",)) -> Store:
    """`store` with the data file `text` imported, its missions' owners among `owners`."""
    path = tmp_path / "data.toml"
    path.write_text(text, encoding="utf-8")
    import_files(store, [path], PARIS, owners)
    return store


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A wall-clock time in Paris."""
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


def outbox(store: Store) -> dict[str, FollowUp]:
    """Every recorded follow-up, by key."""
    with store.session() as session:
        return {row.key: row for row in session.scalars(select(FollowUp))}


def body(intent: Intent) -> str:
    """An intent's message body, rendered as the engine renders it when recording."""
    assert isinstance(intent.subject, LazySubject)
    return intent.subject.text()
