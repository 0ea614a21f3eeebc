"""Acceptance: the new-year greetings of the demo portfolio, through the real command line.

`followupd init --demo`, then `followupd plan --from 2027-01-01 --to 2027-01-31
--json`. The expected greetings are worked out here from the demo data file
itself, with the README's rules and none of followupd's code: one per contact
with ``greetings = true`` (the default) and an email address, of a client with
a mission (any status, disputes included) running at some point in the 24
months before 1 January 2027; on the client's first working day of January, at
09:00 in the client's zone, in the contact's language.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest

import followupd
from tests.conftest import MINIMAL_CONFIG, RunCli

DEMO = Path(followupd.__file__).parent / "resources" / "demo.toml"
OWNER = {"timezone": "Europe/Paris", "language": "fr", "country": "FR"}  # MINIMAL_CONFIG's
NEW_YEAR = date(2027, 1, 1)
LOOKBACK_START = date(2025, 1, 1)  # 24 months before
FRENCH = re.compile(r"vœux|bonne année", re.IGNORECASE)
ENGLISH = re.compile(r"wishes|happy new year|greetings", re.IGNORECASE)


@dataclass(frozen=True)
class Greeting:
    contact: str
    email: str
    language: str
    due_at: datetime


def first_working_day(country: str) -> date:
    public = holidays.country_holidays(country, years=NEW_YEAR.year)
    day = NEW_YEAR
    while day.weekday() >= 5 or day in public:
        day += timedelta(days=1)
    return day


def expected_greetings() -> dict[str, Greeting]:
    with DEMO.open("rb") as file:
        demo: dict[str, Any] = tomllib.load(file)
    recent = {
        mission["client"]
        for mission in demo["missions"]
        if mission["start"] <= NEW_YEAR and mission.get("end", NEW_YEAR) >= LOOKBACK_START
    }
    clients = {client["key"]: client for client in demo["clients"]}
    expected = {}
    for contact in demo["contacts"]:
        client = clients[contact["client"]]
        if not contact.get("greetings", True) or not contact.get("email"):
            continue
        if client["key"] not in recent:
            continue
        zone = ZoneInfo(client.get("timezone", OWNER["timezone"]))
        day = first_working_day(client.get("country", OWNER["country"]))
        expected[contact["key"]] = Greeting(
            contact=contact["key"],
            email=contact["email"],
            language=contact.get("language", client.get("language", OWNER["language"])),
            due_at=datetime.combine(day, time(9, 0), tzinfo=zone),
        )
    return expected


@pytest.fixture
def demo(cli: RunCli, home: Path) -> Path:
    config = home / "followupd.toml"
    config.write_text(MINIMAL_CONFIG, encoding="utf-8")
    result = cli("init", "--demo", "--today", "2026-11-22")
    assert result.code == 0, result
    return config


def test_the_expectations_cover_the_cases_that_matter() -> None:
    """The demo data holds what this test is about: checked here, apart from followupd."""
    expected = expected_greetings()
    assert "julien-roux" not in expected, "greetings = false"
    assert "helene-morvan" in expected, "the contact of the disputed mission morvan-tms"
    assert "luc-vandamme" in expected, "a client whose only mission is closed"
    assert {greeting.language for greeting in expected.values()} == {"fr", "en"}
    assert first_working_day("FR") == date(2027, 1, 4)  # Friday 1st a holiday, then a weekend
    assert len({greeting.due_at for greeting in expected.values()}) > 1, "several zones"


@pytest.mark.slow
def test_plan_lists_one_greeting_per_eligible_contact(cli: RunCli, demo: Path) -> None:
    result = cli("plan", "--from", "2027-01-01", "--to", "2027-01-31", "--json")
    assert result.code == 0, result
    document = json.loads(result.out)
    greetings = [item for item in document["followups"] if item["rule"] == "new_year_greetings"]
    expected = expected_greetings()

    by_contact = {item["contact"]: item for item in greetings}
    assert len(by_contact) == len(greetings), "one greeting per contact"
    assert set(by_contact) == set(expected)
    for key, greeting in expected.items():
        item = by_contact[key]
        assert item["key"] == f"new_year_greetings:{key}:2027"
        assert (item["audience"], item["channel"]) == ("client", "email"), key
        assert item["recipient"] == greeting.email
        due = datetime.fromisoformat(item["due_at"])
        # written in the owner's zone, with its offset (CET in January)
        assert due.utcoffset() == timedelta(hours=1), item["due_at"]
        assert due == greeting.due_at, (key, item["due_at"], greeting.due_at.isoformat())
        local = due.astimezone(greeting.due_at.tzinfo)
        assert (local.date(), local.time()) == (greeting.due_at.date(), time(9, 0))
        subject = item["subject"]
        assert "2027" in subject, subject
        if greeting.language == "fr":
            assert FRENCH.search(subject) and not ENGLISH.search(subject), (key, subject)
        else:
            assert ENGLISH.search(subject) and not FRENCH.search(subject), (key, subject)
    # the disputed mission's contact is greeted; the one who declined is not
    assert "helene-morvan" in by_contact
    assert "julien-roux" not in by_contact
