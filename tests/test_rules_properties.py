"""Properties of the ten rules together, over random portfolios and instants.

Every example starts from an empty SQLite store (no record, no follow-up, no
previous pass), loads a random portfolio through `import_files` from a JSON
data file (so only data the importer accepts is generated) and runs all ten
rules through `plan` and `evaluate`. The data never changes between the passes
of an example: whatever a pass records or cancels follows from the data and
the instants alone.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.engine import make_url

from followupd.config.rule_options import RuleOptions
from followupd.config.settings import MAILBOX_RULES
from followupd.domain.business_calendar import BusinessCalendar
from followupd.domain.states import MissionStatus, Severity, TouchpointKind
from followupd.engine.evaluation import PassReport, cancel_vanished, evaluate, plan
from followupd.rules.base import Intent, Rule
from followupd.rules.book import RuleBook
from followupd.rules.registry import RULES, enabled_rules
from followupd.sources.files.importer import import_files
from followupd.store.db import Store
from followupd.store.models import Base, Client, Contact, FollowUp, Issue, Mission
from tests.conftest import ENGINES, fresh_postgres_database
from tests.rulekit import NEW_YORK, PARIS, owner_settings

pytestmark = pytest.mark.slow  # Hypothesis, through the store: tens of seconds each

SETTINGS = owner_settings(Path("/nonexistent"))
RULE_SET: list[Rule[RuleOptions]] = enabled_rules(SETTINGS.rules)
CALENDAR = BusinessCalendar(SETTINGS.business)
OPENS = SETTINGS.business.window[0]

PLACES = [("Europe/Paris", "FR"), ("America/New_York", "US"), ("Europe/Brussels", "BE")]
FIRST_DAY, LAST_DAY = date(2025, 6, 1), date(2027, 3, 31)
FIRST_INSTANT = datetime(2025, 9, 1, tzinfo=UTC)
LAST_INSTANT = datetime(2027, 3, 31, 23, 59, tzinfo=UTC)
DATA_START = datetime(2025, 6, 1, tzinfo=UTC)
# plan() over this window sees every follow-up the data can give
WIDE = (datetime(2025, 5, 1, tzinfo=PARIS), datetime(2027, 7, 1, tzinfo=PARIS))

PROFILE = hypothesis_settings(
    derandomize=True,
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# for the property that the README does not spell out (a pass cancels nothing on an
# unchanged store): fewer examples keep the file within about a minute
EXTRA_PROFILE = hypothesis_settings(PROFILE, max_examples=40)

# -- random portfolios ------------------------------------------------------------------


def days_between(first: date, last: date) -> st.SearchStrategy[date]:
    return st.integers(0, max(0, (last - first).days)).map(lambda n: first + timedelta(days=n))


def instants_between(first: datetime, last: datetime) -> st.SearchStrategy[datetime]:
    minutes = int((last - first).total_seconds()) // 60
    return st.integers(0, minutes).map(lambda n: first + timedelta(minutes=n))


def optional(strategy: st.SearchStrategy[Any], present: int = 1, absent: int = 1) -> Any:
    """`strategy`, or None (the field left out) `absent` times in `present + absent`."""
    return st.integers(1, present + absent).flatmap(
        lambda n: strategy if n <= present else st.none()
    )


WRITTEN_IN = (UTC, PARIS, NEW_YORK)


def written(instant: datetime) -> str:
    """An instant as a data file gives it: ISO 8601 with the offset of one of three zones
    (picked from the instant's minute: one draw less per instant)."""
    return instant.astimezone(WRITTEN_IN[instant.minute % 3]).isoformat()


def put(record: dict[str, Any], name: str, value: Any) -> None:
    """Set an optional field, or leave it out (so the record gets its default)."""
    if value is not None:
        record[name] = value.isoformat() if isinstance(value, date) else value


@st.composite
def portfolios(draw: st.DrawFn) -> dict[str, list[dict[str, Any]]]:
    """A valid data file (README, "Importing data") as JSON-ready records."""
    data: dict[str, list[dict[str, Any]]] = {
        kind: [] for kind in ("clients", "contacts", "missions", "invoices", "issues")
    }
    data["touchpoints"] = []
    for c in range(draw(st.integers(1, 3))):
        client_key = f"c{c}"
        client: dict[str, Any] = {"key": client_key, "name": f"Client {c}"}
        place = draw(optional(st.sampled_from(PLACES)))
        if place is not None:  # sometimes the owner's zone and country, by default
            client["timezone"], client["country"] = place
        put(client, "language", draw(optional(st.sampled_from(["fr", "en"]))))
        data["clients"].append(client)
        contacts = [f"{client_key}-p{n}" for n in range(draw(st.integers(1, 3)))]
        for n, key in enumerate(contacts):
            contact: dict[str, Any] = {"key": key, "client": client_key, "name": f"Person {n}"}
            if draw(st.integers(0, 3)):  # mostly with an email address
                contact["email"] = f"{key}@client{c}.example"
            put(contact, "phone", draw(optional(st.just(f"+33 6 00 00 0{c} 0{n}"))))
            put(contact, "language", draw(optional(st.sampled_from(["fr", "en"]))))
            put(contact, "greetings", draw(optional(st.booleans())))
            data["contacts"].append(contact)
        for m in range(draw(st.integers(1, 4))):
            data_mission(draw, data, client_key, f"{client_key}-m{m}", contacts)
    return data


def data_mission(
    draw: st.DrawFn,
    data: dict[str, list[dict[str, Any]]],
    client_key: str,
    key: str,
    contacts: list[str],
) -> None:
    start = draw(days_between(FIRST_DAY, LAST_DAY))
    mission: dict[str, Any] = {"key": key, "client": client_key, "title": f"Mission {key}"}
    put(mission, "contact", draw(optional(st.sampled_from(contacts), present=3)))
    mission["start"] = start.isoformat()
    put(mission, "end", draw(optional(days_between(start, LAST_DAY), present=2)))
    mission["status"] = draw(st.sampled_from(MissionStatus))
    put(mission, "contract_signed", draw(optional(days_between(FIRST_DAY, LAST_DAY))))
    put(mission, "deposit_amount", draw(optional(st.sampled_from([0, 1500, 3000.5]), 2)))
    put(mission, "deposit_paid", draw(optional(days_between(FIRST_DAY, LAST_DAY), absent=2)))
    put(mission, "paused_until", draw(optional(days_between(FIRST_DAY, LAST_DAY), absent=2)))
    put(mission, "deliverables", draw(optional(st.booleans())))
    put(mission, "status_update_every_days", draw(optional(st.sampled_from([7, 14, 30]))))
    data["missions"].append(mission)
    for n in range(draw(st.integers(0, 3))):
        issued = draw(days_between(FIRST_DAY, LAST_DAY))
        invoice: dict[str, Any] = {"number": f"F-{key}-{n}", "mission": key, "amount": 1200.5}
        invoice["issued"] = issued.isoformat()
        invoice["due"] = (issued + timedelta(days=draw(st.integers(0, 60)))).isoformat()
        put(invoice, "paid", draw(optional(days_between(issued, LAST_DAY))))
        data["invoices"].append(invoice)
    for n in range(draw(st.integers(0, 3))):
        opened = draw(instants_between(DATA_START, LAST_INSTANT))
        issue: dict[str, Any] = {"key": f"{key}-i{n}", "mission": key, "summary": "A problem"}
        issue["opened"] = written(opened)
        issue["severity"] = draw(st.sampled_from(Severity))
        later = instants_between(opened, opened + timedelta(days=30))
        for name in ("client_informed", "resolved"):
            if draw(st.booleans()):
                issue[name] = written(draw(later))
        data["issues"].append(issue)
    seen: set[tuple[str, datetime, str | None]] = set()
    for _ in range(draw(st.integers(0, 3))):
        at = draw(instants_between(DATA_START, LAST_INSTANT))
        kind = draw(st.sampled_from(TouchpointKind))
        contact = draw(optional(st.sampled_from(contacts)))
        if (kind, at, contact) in seen:  # the same touchpoint twice is an import error
            continue
        seen.add((kind, at, contact))
        touchpoint: dict[str, Any] = {"mission": key, "kind": kind, "at": written(at)}
        put(touchpoint, "contact", contact)
        data["touchpoints"].append(touchpoint)


# days between t1 and t2: within a rule's grace (7 days), around it, or well past it
GAPS = (0, 1, 3, 6, 8, 12, 20, 40, 90, 200)


@st.composite
def instant_pairs(draw: st.DrawFn) -> tuple[datetime, datetime]:
    """Two instants t1 <= t2 (drawn from a list of gaps: Hypothesis favours t2 == t1)."""
    t1 = draw(instants_between(FIRST_INSTANT, LAST_INSTANT))
    gap = timedelta(days=draw(st.sampled_from(GAPS)), minutes=draw(st.integers(0, 1439)))
    return t1, min(t1 + gap, LAST_INSTANT)


# -- stores -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pool:
    """Two stores migrated once, emptied and loaded again for every example."""

    folder: Path
    stores: tuple[Store, Store]


@pytest.fixture(scope="module", params=ENGINES)
def pool(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pool]:
    """The stores of every example, on each engine, with the real migrated schema.

    An example empties them rather than opening a new database: SQLAlchemy caches
    compiled statements per engine, and a new engine per example (even on a copy of
    a migrated file, or with Base.metadata.create_all) compiles every statement of
    the ten rules again: each pass took nearly three times as long, and this file
    twice as long.
    """
    folder = tmp_path_factory.mktemp("properties")
    opened = []
    for name in ("first", "second"):
        if request.param == "sqlite":
            url = make_url(f"sqlite:///{folder / name}.db")
        else:
            url = fresh_postgres_database(request.getfixturevalue("postgres_url"))
        store = Store.open(url)
        store.upgrade()
        opened.append(store)
    yield Pool(folder, (opened[0], opened[1]))
    for store in opened:
        store.close()


def loaded(pool: Pool, data: dict[str, Any], count: int = 1) -> list[Store]:
    """`count` empty stores (no record, no follow-up, no previous pass) holding `data`,
    imported from one JSON data file."""
    source = pool.folder / "data.json"
    source.write_text(json.dumps(data), encoding="utf-8")
    stores = list(pool.stores[:count])
    for store in stores:
        with store.session() as session:
            for table in reversed(Base.metadata.sorted_tables):
                session.execute(table.delete())
        import_files(store, [source], PARIS)
    return stores


def planned(store: Store) -> list[Intent]:
    with store.session() as session:
        return plan(session, SETTINGS, RULE_SET, *WIDE)


def run(store: Store, at: datetime) -> PassReport:
    with store.session() as session:
        return evaluate(session, SETTINGS, RULE_SET, at)


@dataclass(frozen=True)
class Row:
    key: str
    rule: str
    step: str
    subject_key: str
    audience: str
    mission_id: int | None
    contact_id: int | None
    due_at: datetime
    state: str


def outbox(store: Store) -> list[Row]:
    columns = (FollowUp.key, FollowUp.rule, FollowUp.step, FollowUp.subject_key,
               FollowUp.audience, FollowUp.mission_id, FollowUp.contact_id, FollowUp.due_at,
               FollowUp.state)  # fmt: skip
    with store.session() as session:
        return [Row(*row) for row in session.execute(select(*columns))]


@dataclass(frozen=True)
class Place:
    """Where a client is: its zone and country, None when it takes the owner's."""

    timezone: str | None
    country: str | None


@dataclass(frozen=True)
class Facts:
    """What the properties need to know of the stored portfolio."""

    by_mission: dict[int, Place]
    by_contact: dict[int, Place]
    paid_invoices: set[str]
    resolved_issues: set[str]
    open_issues: dict[str, list[datetime]]  # mission key -> when its unresolved ones opened

    def place(self, mission_id: int | None, contact_id: int | None) -> Place:
        if mission_id is not None:
            return self.by_mission[mission_id]
        assert contact_id is not None, "a follow-up is about a mission or a contact"
        return self.by_contact[contact_id]


def facts(data: dict[str, list[dict[str, Any]]], store: Store) -> Facts:
    with store.session() as session:
        places = {
            client_id: Place(timezone, country)
            for client_id, timezone, country in session.execute(
                select(Client.id, Client.timezone, Client.country)
            )
        }
        by_mission = {mid: places[cid] for mid, cid in session.execute(
            select(Mission.id, Mission.client_id))}  # fmt: skip
        by_contact = {pid: places[cid] for pid, cid in session.execute(
            select(Contact.id, Contact.client_id))}  # fmt: skip
        open_issues: dict[str, list[datetime]] = {}
        for mission, opened in session.execute(
            select(Mission.key, Issue.opened)
            .join(Mission, Issue.mission_id == Mission.id)
            .where(Issue.resolved.is_(None))
        ):
            open_issues.setdefault(mission, []).append(opened)
    return Facts(
        by_mission,
        by_contact,
        {invoice["number"] for invoice in data["invoices"] if "paid" in invoice},
        {issue["key"] for issue in data["issues"] if "resolved" in issue},
        open_issues,
    )


def recipient_place(audience: str, place: Place) -> tuple[ZoneInfo, tuple[str, ...]]:
    """The zone and the holiday countries a follow-up to `audience` is placed in."""
    owner = SETTINGS.owner
    client_country = place.country or owner.country
    if audience == "client":
        return ZoneInfo(place.timezone or owner.timezone), (client_country,)
    return ZoneInfo(owner.timezone), tuple(dict.fromkeys((owner.country, client_country)))


# -- properties -------------------------------------------------------------------------


def test_all_twelve_rules_take_part() -> None:
    """All but those a mailbox feeds: the portfolios hold no mail (tests/test_mail_meaning.py)."""
    assert len(RULES) == 12 + len(MAILBOX_RULES)
    assert sorted(rule.name for rule in RULE_SET) == sorted(set(RULES) - set(MAILBOX_RULES))


@PROFILE
@given(data=portfolios(), instants=instant_pairs())
def test_no_two_followups_share_a_key(
    pool: Pool, data: dict[str, Any], instants: tuple[datetime, datetime]
) -> None:
    (store,) = loaded(pool, data)
    keys = Counter(intent.key for intent in planned(store))
    assert [key for key, count in keys.items() if count > 1] == []
    recorded = [row.key for instant in instants for row in run(store, instant).recorded]
    assert len(recorded) == len(set(recorded))
    rows = outbox(store)
    assert len(rows) == len({row.key for row in rows})
    assert {row.key for row in rows} == set(recorded)
    assert set(recorded) <= set(keys), "a pass records only what plan() finds due"


@PROFILE
@given(data=portfolios())
def test_every_followup_is_due_at_the_opening_of_a_working_day_window(
    pool: Pool, data: dict[str, Any]
) -> None:
    (store,) = loaded(pool, data)
    known = facts(data, store)
    for intent in planned(store):
        place = known.place(intent.mission_id, intent.contact_id)
        tz, countries = recipient_place(intent.audience, place)
        local = intent.due_at.astimezone(tz)
        assert CALENDAR.in_window(intent.due_at, tz, countries), (intent.key, local, countries)
        assert local.time() == OPENS, (intent.key, local)


@PROFILE
@given(data=portfolios(), instants=instant_pairs())
def test_nothing_is_due_for_a_paid_invoice_or_a_resolved_issue(
    pool: Pool, data: dict[str, Any], instants: tuple[datetime, datetime]
) -> None:
    (store,) = loaded(pool, data)
    known = facts(data, store)
    gone = known.paid_invoices | known.resolved_issues
    intents = planned(store)
    for instant in instants:
        run(store, instant)
    assert [intent.key for intent in intents if intent.subject_key in gone] == []
    due = [row for row in outbox(store) if row.state in ("pending", "expired")]
    assert [row.key for row in due if row.subject_key in gone] == []
    # checkpoint_meeting's issue trigger counts the unresolved issues only: its reminders
    # come from the day the second of them was opened (in the owner's zone); and whatever
    # calls for them, a mission's reminders are one per period of `every` days
    every = SETTINGS.rules.checkpoint_meeting.every_days
    needed = SETTINGS.rules.checkpoint_meeting.open_issues
    periods: dict[str, list[date]] = {}
    for intent in intents:
        if intent.rule != "checkpoint_meeting":
            continue
        period = date.fromisoformat(intent.key.rsplit(":", 1)[1])
        periods.setdefault(intent.subject_key, []).append(period)
        if intent.step != "open-issues":
            continue
        opened = sorted(known.open_issues.get(intent.subject_key, []))
        assert len(opened) >= needed, intent.key
        assert period >= opened[needed - 1].astimezone(PARIS).date(), intent.key
    for mission, days in periods.items():
        ordered = sorted(days)
        assert all((b - a).days % every == 0 for a, b in pairwise(ordered)), (mission, ordered)


@PROFILE
@given(data=portfolios(), instants=instant_pairs())
def test_evaluating_twice_at_the_same_instant_adds_nothing(
    pool: Pool, data: dict[str, Any], instants: tuple[datetime, datetime]
) -> None:
    t1, t2 = instants
    (store,) = loaded(pool, data)
    run(store, t1)
    run(store, t2)  # the second pass at t2 looks back to t1: the widest window
    again = run(store, t2)
    assert [row.key for row in again.recorded] == []
    assert again.cancelled == {}


@EXTRA_PROFILE
@given(data=portfolios(), instants=instant_pairs())
def test_on_a_store_that_does_not_change_a_pass_cancels_nothing(
    pool: Pool, data: dict[str, Any], instants: tuple[datetime, datetime]
) -> None:
    """What a rule records as due, its own `vanished` must not call gone at once.

    Asked here of every pending row after each pass: a pass on an empty outbox does not ask
    (evaluate), on the strength of this property.
    """
    (store,) = loaded(pool, data)
    book = RuleBook(SETTINGS, RULE_SET, only_enabled=True)
    for instant in instants:
        assert run(store, instant).cancelled == {}
        with store.session() as session:
            assert cancel_vanished(session, book, instant) == {}


@PROFILE
@given(data=portfolios(), instants=instant_pairs())
def test_an_earlier_pass_changes_nothing_still_within_its_grace(
    pool: Pool, data: dict[str, Any], instants: tuple[datetime, datetime]
) -> None:
    """Evaluating at t1 then t2 gives the outbox of evaluating at t2 alone, apart from
    what is past its grace at t2.

    Past its grace means recorded `expired` in either outbox, or pending in the
    first one only, because the pass at t1 recorded it while it was within its
    grace: evaluate() alone delivers nothing, and a pass at t2 alone does not
    reach back that far.
    """
    t1, t2 = instants
    both, alone = loaded(pool, data, count=2)
    run(both, t1)
    run(both, t2)
    run(alone, t2)
    states = [{row.key: row.state for row in outbox(store)} for store in (both, alone)]
    expired = {key for state in states for key, value in state.items() if value == "expired"}
    only_first = states[0].keys() - states[1].keys() - expired
    expires = {intent.key: intent.expires_at for intent in planned(alone)} if only_first else {}
    missed = {key for key in only_first if expires[key] < t2}
    kept = [
        {key: value for key, value in state.items() if key not in expired | missed}
        for state in states
    ]
    assert kept[0] == kept[1]
    assert set(kept[0].values()) <= {"pending"}
