"""Helpers shared by the rule tests: the owner's settings, data files, clock instants, and a
rule run alone through the engine."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from followupd.config.load import parse_settings
from followupd.config.rule_options import RuleOptions
from followupd.config.settings import Settings
from followupd.domain.business_calendar import BusinessCalendar
from followupd.domain.states import FollowUpState
from followupd.engine.evaluation import PassReport, evaluate, plan
from followupd.rules.base import Evaluation, Intent, Rule
from followupd.sources.files.importer import import_files
from followupd.store.db import Store
from followupd.store.models import FollowUp, LiveItem
from followupd.store.updates import get_mission
from followupd.templates.loader import LazySubject, Templates
from tests.conftest import MINIMAL_CONFIG

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")

# Contacts of the rule tests' clients. Lines written right after a table belong to
# it: `JDUPONT` is `JDUPONT_WITHOUT_PHONE` and a phone line.
JDUPONT_WITHOUT_PHONE = """\
[[contacts]]
key = "jdupont"
client = "acme"
name = "Jeanne Dupont"
email = "jeanne.dupont@acme.example"
"""
JDUPONT = JDUPONT_WITHOUT_PHONE + 'phone = "+33 6 12 34 56 78"\n'
BSMITH = """\
[[contacts]]
key = "bsmith"
client = "globex"
name = "Bob Smith"
email = "bob@globex.example"
"""
BSMITH_WITH_PHONE = BSMITH + 'phone = "+1 212 555 0100"\n'
# Two clients in two countries, zones and languages, for the rule tests: the
# holidays, the zone and the language of a follow-up depend on them.
ACME_AND_GLOBEX = """\
[[clients]]
key = "acme"
name = "ACME SA"
language = "fr"
timezone = "Europe/Paris"
country = "FR"

[[clients]]
key = "globex"
name = "Globex Inc."
language = "en"
timezone = "America/New_York"
country = "US"
"""

# A client, its contact (with a phone number) and one signed mission, for the tests of
# delivery and of the calendar to add invoices, issues or events to.
ACME = (
    '[[clients]]\nkey = "acme"\nname = "ACME SA"\n'
    + JDUPONT
    + """\
[[missions]]
key = "acme-audit"
client = "acme"
title = "Audit du SI"
contact = "jdupont"
start = 2026-09-01
contract_signed = 2026-08-25
"""
)

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

# `extra` for owner_settings: the owner writes in English
IN_ENGLISH = 'language = "en"\n'


def mission_record(key: str, title: str, start: str, *lines: str, client: str = "acme") -> str:
    """A ``[[missions]]`` record, to import over the one of the same key in a store:
    `lines` are its other ``name = value`` fields, and those left out keep their value."""
    fields = [f'key = "{key}"', f'client = "{client}"', f'title = "{title}"', f"start = {start}"]
    return "\n".join(["[[missions]]", *fields, *lines]) + "\n"


def owner_settings(tmp_path: Path, extra: str = "") -> Settings:
    """The settings of MINIMAL_CONFIG's owner (Claire Martin: French, in Paris), with
    `extra` TOML lines after its table (IN_ENGLISH, a ``[rules.NAME]`` table…)."""
    return parse_settings(
        MINIMAL_CONFIG + extra, tmp_path / "followupd.toml", {"HOME": str(tmp_path)}
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The owner's settings, all rules with their default options.

    A test module takes it with ``from tests.rulekit import settings as settings``
    (the alias tells linters the import is the fixture, used by name).
    """
    return owner_settings(tmp_path)


def imported(
    store: Store,
    tmp_path: Path,
    text: str,
    owners: Sequence[str] = ("owner",),
    *,
    name: str = "data.toml",
) -> Store:
    """`store` with the data file `text` imported, its missions' owners among `owners`.

    `name` is the file's name in `tmp_path` (its ending says TOML or JSON): another
    name for a file imported over the first, such as ``update.toml``.
    """
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    import_files(store, [path], PARIS, owners)
    return store


def loaded_with(data: str) -> Callable[..., Store]:
    """The fixture `loaded` of a test module: the test's store with the data file `data`
    imported (write ``loaded = loaded_with(DATA)``)."""

    @pytest.fixture
    def loaded(store: Store, tmp_path: Path) -> Store:
        return imported(store, tmp_path, data)

    return loaded


def change_mission(store: Store, mission: str, **fields: Any) -> None:
    """Set fields of a stored mission, as an edit of the database would."""
    with store.session() as session:
        row = get_mission(session, mission)
        for name, value in fields.items():
            setattr(row, name, value)


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A wall-clock time in Paris."""
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


def new_york(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A wall-clock time in New York."""
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK)


def outbox(store: Store) -> dict[str, FollowUp]:
    """Every recorded follow-up, by key."""
    with store.session() as session:
        return {row.key: row for row in session.scalars(select(FollowUp))}


def mark_sent(store: Store, key: str, at: datetime) -> None:
    """The recorded follow-up keyed `key` sent at `at`, as delivery records it."""
    with store.session() as session:
        row = session.scalar(select(FollowUp).where(FollowUp.key == key))
        assert row is not None, f"no follow-up {key}"
        row.state, row.sent_at, row.attempts = FollowUpState.SENT, at, row.attempts + 1


def item(store: Store, key: str) -> LiveItem:
    """The calendar item of the follow-up keyed `key` (its concern's), as stored now."""
    with store.session() as session:
        concern = session.scalar(select(FollowUp.concern).where(FollowUp.key == key))
        found = session.scalar(select(LiveItem).where(LiveItem.concern == concern))
    assert found is not None, f"no calendar item for {key}"
    return found


def body(intent: Intent) -> str:
    """An intent's message body, rendered as the engine renders it when recording."""
    assert isinstance(intent.subject, LazySubject)
    return intent.subject.text()


@dataclass(frozen=True)
class RuleAlone:
    """One rule run by itself through the engine, built directly from the settings'
    options (the registry is not needed), over the window ``[start, end]`` its tests
    look at unless they name another."""

    kind: type[Rule[Any]]
    start: datetime
    end: datetime

    def built(self, settings: Settings, options: RuleOptions | None = None) -> Rule[RuleOptions]:
        """The rule with the settings' ``[rules.NAME]`` options, or `options`."""
        return self.kind(options or getattr(settings.rules, self.kind.name))

    def rules(
        self, settings: Settings, options: RuleOptions | None = None
    ) -> list[Rule[RuleOptions]]:
        """The rule alone, as the engine takes it."""
        return [self.built(settings, options)]

    def intents(
        self,
        store: Store,
        settings: Settings,
        start: datetime | None = None,
        end: datetime | None = None,
        options: RuleOptions | None = None,
    ) -> list[Intent]:
        """What `plan` finds due in the window, in its order; it records nothing."""
        rules = self.rules(settings, options)
        with store.session() as session:
            return plan(session, settings, rules, start or self.start, end or self.end)

    def planned(
        self,
        store: Store,
        settings: Settings,
        start: datetime | None = None,
        end: datetime | None = None,
        options: RuleOptions | None = None,
    ) -> dict[str, Intent]:
        """What `plan` finds due in the window, by key."""
        intents = self.intents(store, settings, start, end, options)
        return {intent.key: intent for intent in intents}

    def texts(
        self,
        store: Store,
        settings: Settings,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> dict[str, str]:
        """The bodies (``text`` blocks) of the intents due in the window, by key, as the
        engine renders them when it records."""
        rule = self.built(settings)
        calendar = BusinessCalendar(settings.business)
        with store.session() as session:
            evaluation = Evaluation(
                session, settings, calendar, Templates(), start or self.start, end or self.end
            )
            return {intent.key: body(intent) for intent in rule.evaluate(evaluation)}

    def pass_at(self, store: Store, settings: Settings, at: datetime) -> PassReport:
        """One pass of `evaluate` at `at`, in a session of its own."""
        with store.session() as session:
            return evaluate(session, settings, self.rules(settings), at)

    def run(
        self, store: Store, settings: Settings, at: datetime
    ) -> tuple[list[str], dict[str, str]]:
        """One pass at `at`: the keys it recorded, and the keys it cancelled with why."""
        report = self.pass_at(store, settings, at)
        return [row.key for row in report.recorded], report.cancelled
