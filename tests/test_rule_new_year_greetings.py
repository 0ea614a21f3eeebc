"""`new_year_greetings` on the demo portfolio, through the engine, on both engines.

The expected greetings are worked out from the demo file itself, apart from
the rule: every contact with greetings on and an email address, of a client
with a mission (any status) running at some point in the 24 months before
1 January.
"""

from __future__ import annotations

import re
import tomllib
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest
from sqlalchemy import select

import followupd
from followupd.config.settings import Settings
from followupd.rules.base import Intent
from followupd.rules.new_year_greetings import NewYearGreetings
from followupd.sources.files.importer import import_files
from followupd.store.db import Store
from followupd.store.models import Client, Contact, FollowUp
from followupd.templates.loader import Templates
from tests.rulekit import (
    PARIS,
    RuleAlone,
    imported,
    mission_record,
    new_york,
    outbox,
    paris,
)
from tests.rulekit import settings as settings

DEMO = Path(followupd.__file__).parent / "resources" / "demo.toml"
# 1 January 2027 is a Friday and a public holiday in France, Belgium and the
# United States alike; the 2nd and 3rd are a weekend: Monday 4 January for all.
FIRST_WORKING_DAY_2027 = {"FR": date(2027, 1, 4), "BE": date(2027, 1, 4), "US": date(2027, 1, 4)}
SUBJECTS = {"fr": "Meilleurs vœux pour 2027", "en": "Best wishes for 2027"}
RULE = RuleAlone(NewYearGreetings, paris(2027, 1, 1), paris(2027, 1, 31))
MONEY = re.compile(
    r"factur|invoice|paiement|payment|pay|règlement|montant|amount|échéance|due|acompte"
    r"|deposit|impayé|unpaid|€|\$|\bEUR\b|\bUSD\b|\d[\d  ,.]*\d",
    re.IGNORECASE,
)


@pytest.fixture
def demo(store: Store) -> Store:
    import_files(store, [DEMO], PARIS)
    return store


def january_2027(store: Store, settings: Settings) -> dict[str, Intent]:
    intents = RULE.intents(store, settings)
    by_contact = {intent.subject_key: intent for intent in intents}
    assert len(by_contact) == len(intents), "one greeting per contact"
    return by_contact


def expected_2027() -> dict[str, dict[str, Any]]:
    """Contact key -> what its 2027 greeting must be, read from the demo file alone."""
    data = tomllib.loads(DEMO.read_text(encoding="utf-8"))
    clients = {client["key"]: client for client in data["clients"]}
    new_year, since = date(2027, 1, 1), date(2025, 1, 1)
    recent = {
        mission["client"]
        for mission in data["missions"]
        if mission["start"] <= new_year and mission.get("end", date.max) >= since
    }
    expected = {}
    for contact in data["contacts"]:
        client = clients[contact["client"]]
        if not contact.get("greetings", True) or not contact.get("email"):
            continue
        if contact["client"] not in recent:
            continue
        day = FIRST_WORKING_DAY_2027[client["country"]]
        tz = ZoneInfo(client["timezone"])
        expected[contact["key"]] = {
            "recipient": contact["email"],
            "language": contact.get("language") or client.get("language") or "fr",
            "due_at": datetime.combine(day, time(9, 0), tzinfo=tz),
            "expires_at": datetime(2027, 1, 31, 23, 59, 59, tzinfo=tz),
        }
    return expected


def test_the_first_working_day_of_2027_is_monday_the_4th_for_every_demo_country() -> None:
    def first_working_day(country: str) -> date:
        public = holidays.country_holidays(country, years=2027)
        day = date(2027, 1, 1)
        while day.weekday() >= 5 or day in public:
            day += timedelta(days=1)
        return day

    assert {country: first_working_day(country) for country in FIRST_WORKING_DAY_2027} == (
        FIRST_WORKING_DAY_2027
    )


def test_january_greets_every_eligible_demo_contact_once(demo: Store, settings: Settings) -> None:
    expected = expected_2027()
    # sanity of the independent computation: the demo's eight eligible contacts
    assert sorted(expected) == [
        "helene-morvan",
        "karim-benali",
        "luc-vandamme",
        "marion-leclerc",
        "pieter-janssens",
        "rachel-kim",
        "sophie-garnier",
        "thomas-bernard",
    ]
    greetings = january_2027(demo, settings)
    assert set(greetings) == set(expected)
    with demo.session() as session:
        contact_ids: dict[str, int] = dict(session.execute(select(Contact.key, Contact.id)).all())
    for key, want in expected.items():
        intent = greetings[key]
        assert intent.key == f"new_year_greetings:{key}:2027"
        assert (intent.rule, intent.step) == ("new_year_greetings", "greetings")
        assert (intent.audience, intent.channel) == ("client", "email")
        assert intent.recipient == want["recipient"]
        assert intent.language == want["language"], key
        assert intent.subject == SUBJECTS[want["language"]]
        assert intent.due_at == want["due_at"], key
        assert intent.expires_at == want["expires_at"]
        assert (intent.mission_id, intent.contact_id) == (None, contact_ids[key])
    # the contact of the disputed mission is greeted all the same
    assert greetings["helene-morvan"].due_at == paris(2027, 1, 4, 9, 0)
    # Belgium: Brussels time; the US: 09:00 in New York, 15:00 in Paris
    assert greetings["luc-vandamme"].due_at.astimezone(ZoneInfo("Europe/Brussels")).hour == 9
    assert greetings["rachel-kim"].due_at == new_york(2027, 1, 4, 9, 0)
    # in the contact's language, else the client's
    assert greetings["pieter-janssens"].language == "en"  # a Belgian client writing in French
    assert greetings["thomas-bernard"].language == "fr"  # a US client writing in English
    assert "julien-roux" not in greetings  # asked for no greetings
    with demo.session() as session:
        assert session.scalars(select(FollowUp)).all() == [], "plan changes nothing"


def test_the_greeting_is_warm_personal_and_never_about_money(
    demo: Store, settings: Settings
) -> None:
    greetings = january_2027(demo, settings)
    templates = Templates()
    with demo.session() as session:
        for key, intent in greetings.items():
            contact = session.scalars(select(Contact).where(Contact.key == key)).one()
            client = session.get(Client, contact.client_id)
            values = {"contact": contact, "client": client, "owner": settings.owner, "year": 2027}
            text = templates.render(
                intent.language, "new_year_greetings", "greetings", "text", values
            )
            assert contact.name in text
            assert text.rstrip().endswith(settings.owner.name)
            assert "2027" in text
            assert ("vœux" if intent.language == "fr" else "wishes") in text
            assert not MONEY.search(text.replace("2027", "")), (key, text)
            assert not MONEY.search(str(intent.subject).replace("2027", ""))


def test_no_greetings_for_old_clients_future_clients_or_contacts_without_email(
    demo: Store, settings: Settings, tmp_path: Path
) -> None:
    imported(
        demo,
        tmp_path,
        """\
[[clients]]
key = "ancien"
name = "Ancien client"
[[clients]]
key = "limite"
name = "Client limite"
[[clients]]
key = "futur"
name = "Futur client"

[[contacts]]
key = "ancien-contact"
client = "ancien"
name = "Anne Ancien"
email = "anne@ancien.example"
[[contacts]]
key = "limite-contact"
client = "limite"
name = "Louis Limite"
email = "louis@limite.example"
[[contacts]]
key = "futur-contact"
client = "futur"
name = "Fanny Futur"
email = "fanny@futur.example"
[[contacts]]
key = "sans-email"
client = "atelier-lumen"
name = "Simon Sans-Courriel"

# ended 25 months before 1 January 2027 (and a day more)
[[missions]]
key = "ancien-mission"
client = "ancien"
title = "Ancienne mission"
start = 2024-03-01
end = 2024-12-31
status = "closed"

# ended exactly 24 months before: still within the last 24 months
[[missions]]
key = "limite-mission"
client = "limite"
title = "Mission limite"
start = 2024-03-01
end = 2025-01-01
status = "closed"

# starts after 1 January 2027
[[missions]]
key = "futur-mission"
client = "futur"
title = "Mission future"
start = 2027-01-11
status = "proposed"
""",
        name="extra.toml",
    )
    greetings = january_2027(demo, settings)
    assert set(greetings) == {*expected_2027(), "limite-contact"}
    assert greetings["limite-contact"].language == "fr"  # the owner's: the client has none
    assert greetings["limite-contact"].due_at == paris(2027, 1, 4, 9, 0)


def test_a_dispute_or_a_pause_never_holds_greetings_back(
    demo: Store, settings: Settings, tmp_path: Path
) -> None:
    paused = mission_record(
        "morvan-tms",
        "TMS",
        "2025-09-01",
        'status = "disputed"',
        "paused_until = 2027-03-01",
        client="transports-morvan",
    )
    imported(demo, tmp_path, paused, name="paused.toml")
    assert january_2027(demo, settings)["helene-morvan"].due_at == paris(2027, 1, 4, 9, 0)


def test_nothing_after_january_31(demo: Store, settings: Settings) -> None:
    assert RULE.intents(demo, settings, paris(2027, 2, 1), paris(2027, 12, 31)) == []
    report = RULE.pass_at(demo, settings, paris(2027, 2, 1, 12, 0))
    assert {row.subject_key for row in report.recorded} == set(expected_2027())
    assert {row.state for row in report.recorded} == {"expired"}


def test_at_midnight_on_february_1_in_paris_it_is_still_january_in_new_york(
    demo: Store, settings: Settings
) -> None:
    report = RULE.pass_at(demo, settings, paris(2027, 2, 1, 0, 0))
    states = {row.subject_key: row.state for row in report.recorded}
    assert states.pop("rachel-kim") == "pending"
    assert states.pop("thomas-bernard") == "pending"
    assert set(states.values()) == {"expired"}


def test_evaluating_twice_adds_nothing(demo: Store, settings: Settings) -> None:
    at = paris(2027, 1, 4, 9, 0)
    first = RULE.pass_at(demo, settings, at)
    # New York opens its window at 15:00 Paris time
    assert {row.subject_key for row in first.recorded} == set(expected_2027()) - {
        "rachel-kim",
        "thomas-bernard",
    }
    assert {(row.state, row.late) for row in first.recorded} == {("pending", False)}
    second = RULE.pass_at(demo, settings, at)
    assert second.recorded == []
    assert second.cancelled == {}
    later = RULE.pass_at(demo, settings, paris(2027, 1, 4, 15, 0))
    assert {row.subject_key for row in later.recorded} == {"rachel-kim", "thomas-bernard"}


def test_withdrawn_consent_or_email_cancels_pending_greetings(
    demo: Store, settings: Settings, tmp_path: Path
) -> None:
    RULE.pass_at(demo, settings, paris(2027, 1, 4, 9, 0))
    imported(
        demo,
        tmp_path,
        '{"contacts": ['
        '{"key": "sophie-garnier", "client": "atelier-lumen", "name": "Sophie Garnier",'
        ' "greetings": false},'
        '{"key": "karim-benali", "client": "atelier-lumen", "name": "Karim Benali",'
        ' "email": null}]}',
        name="update.json",
    )
    report = RULE.pass_at(demo, settings, paris(2027, 1, 4, 10, 0))
    assert report.cancelled == {
        "new_year_greetings:sophie-garnier:2027": "contact sophie-garnier asked for no greetings",
        "new_year_greetings:karim-benali:2027": "contact karim-benali has no email address",
    }
    rows = outbox(demo)
    assert rows["new_year_greetings:sophie-garnier:2027"].state == "cancelled"
    assert rows["new_year_greetings:karim-benali:2027"].state == "cancelled"
    assert rows["new_year_greetings:luc-vandamme:2027"].state == "pending"


def test_a_contact_that_no_longer_exists_cancels_its_greeting(
    demo: Store, settings: Settings
) -> None:
    ghost = FollowUp(key="new_year_greetings:ghost:2027", subject_key="ghost")
    with demo.session() as session:
        reasons = RULE.built(settings).vanished(session, [ghost])
    assert reasons == {ghost.key: "contact ghost no longer exists"}


def test_each_january_has_its_own_greeting(demo: Store, settings: Settings) -> None:
    intents = RULE.intents(demo, settings, paris(2026, 12, 1), paris(2028, 1, 31))
    sophie = [i for i in intents if i.subject_key == "sophie-garnier"]
    assert [i.key for i in sophie] == [
        "new_year_greetings:sophie-garnier:2027",
        "new_year_greetings:sophie-garnier:2028",
    ]
    # 1 January 2028 is a Saturday: Monday the 3rd
    assert sophie[1].due_at == paris(2028, 1, 3, 9, 0)
    assert sophie[1].subject == "Meilleurs vœux pour 2028"
