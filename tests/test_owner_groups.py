"""Owners alike are evaluated together, and get what each would get evaluated alone.

An agency's consultants mostly share their options: the engine runs each rule
once for a group of owners with the same rule options, templates, zone,
language and country (`evaluation_scopes`), and records each follow-up for
the owner of its mission. These tests run a pass both ways over the same
store (the benchmark's agency, a few hundred missions dealt out to the
owners, some without an owner or with a key gone) and compare every
recorded row, digests included. Real SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

import followupd.engine.evaluation as engine
from followupd.config.load import parse_settings
from followupd.config.settings import Settings
from followupd.domain.owner_scope import evaluation_scopes, scopes
from followupd.engine.evaluation import evaluate
from followupd.rules.registry import enabled_rules
from followupd.store.chunks import batches
from followupd.store.db import Store
from followupd.store.models import FollowUp, Mission
from followupd.store.rows import streamed
from tests.bench.evaluate import AT, build

MISSIONS = 240


def owner(key: str, *lines: str) -> str:
    return "\n".join(["[[owners]]", f'key = "{key}"', f'name = "Consultant {key.upper()}"',
                      f'email = "{key}@agency.example"', *lines]) + "\n\n"  # fmt: skip


ALIKE = (
    owner("ana", 'reminders_by_email = "each"', 'phone = "+33 6 11 11 11 11"')
    + owner("ben", 'reminders_by_email = "digest"')
    + owner("cid", 'reminders_by_email = "each"', 'address = "1 rue de la Paix\\n75002 Paris"')
    + owner("dan")
)
UNLIKE = (
    owner("ana", 'reminders_by_email = "each"')
    + owner("ben", "[owners.rules.invoice_due]", "enabled = false")
    + owner("cid", 'language = "en"')
    + owner("dan", 'timezone = "America/Montreal"', 'country = "CA"')
    + owner("eve", 'reminders_by_email = "each"')
    + owner("fay", "[owners.rules.invoice_due]", "enabled = false")
)


def settings_of(text: str, tmp_path: Path) -> Settings:
    return parse_settings(text, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})


@pytest.fixture
def agency(store: Store) -> Store:
    """The benchmark's agency, its missions dealt out by `deal`."""
    build(store, MISSIONS, seed=3)
    return store


def deal(store: Store, keys: list[str | None]) -> None:
    """Mission n to `keys[n mod len(keys)]` (None: no owner)."""
    slot = (Mission.id - 1) % len(keys)
    with store.session() as session:
        session.execute(
            update(Mission).values(
                owner=case(*((slot == number, key) for number, key in enumerate(keys)))
            )
        )


def outbox_of(session: Session) -> set[tuple[Any, ...]]:
    return {
        tuple(row)
        for row in session.execute(
            select(
                FollowUp.key,
                FollowUp.owner,
                FollowUp.rule,
                FollowUp.step,
                FollowUp.recipient,
                FollowUp.language,
                FollowUp.subject,
                FollowUp.body,
                FollowUp.due_at,
                FollowUp.state,
                FollowUp.reason,
                FollowUp.attachment_name,
                FollowUp.letter,
            )
        )
    }


def one_by_one(store: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> set[Any]:
    """The outbox a pass at AT records evaluating each owner alone; left unrecorded."""
    rules = enabled_rules(settings.rules, settings.owners)
    session = store.sessions()
    try:
        with monkeypatch.context() as patched:
            patched.setattr(engine, "evaluation_scopes", scopes)
            evaluate(session, settings, rules, AT)
        return outbox_of(session)
    finally:
        session.rollback()
        session.close()


def together(store: Store, settings: Settings) -> set[Any]:
    rules = enabled_rules(settings.rules, settings.owners)
    with store.session() as session:
        evaluate(session, settings, rules, AT)
    with store.session() as session:
        return outbox_of(session)


def test_owners_alike_are_one_group_led_by_the_first(tmp_path: Path) -> None:
    groups = evaluation_scopes(settings_of(ALIKE, tmp_path))
    assert [group.keys for group in groups] == [("ana", "ben", "cid", "dan")]
    assert groups[0].key == "ana" and groups[0].first


def test_owners_unlike_are_kept_apart(tmp_path: Path) -> None:
    groups = evaluation_scopes(settings_of(UNLIKE, tmp_path))
    assert [group.keys for group in groups] == [
        ("ana", "eve"), ("ben", "fay"), ("cid",), ("dan",)
    ]  # fmt: skip
    assert [group.first for group in groups] == [True, False, False, False]


def test_owners_alike_get_what_each_would_get_alone(
    agency: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deal(agency, ["ana", "ben", "cid", "dan", None, "ben", "gone", "cid"])
    settings = settings_of(ALIKE, tmp_path)
    alone = one_by_one(agency, settings, monkeypatch)
    grouped = together(agency, settings)
    assert grouped == alone
    owners = {row[1] for row in grouped}
    assert owners == {"ana", "ben", "cid", "dan"}
    rules = {row[2] for row in grouped}
    assert {"invoice_due", "escalate_by_phone", "formal_notice", "digest"} <= rules
    # ben and dan (by default) want a digest, ana and cid one email each
    assert {row[1] for row in grouped if row[2] == "digest"} == {"ben", "dan"}
    # each owner's reminders by email go to their own address
    by_email = {(row[1], row[4]) for row in grouped if row[4] and "agency" in row[4]}
    assert len(by_email) >= 3
    assert all(address == f"{key}@agency.example" for key, address in by_email)


def test_owners_unlike_get_what_each_would_get_alone(
    agency: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deal(agency, ["ana", "ben", "cid", "dan", "eve", "fay", None, "gone"])
    settings = settings_of(UNLIKE, tmp_path)
    alone = one_by_one(agency, settings, monkeypatch)
    grouped = together(agency, settings)
    assert grouped == alone
    # rows without an owner, or with a key gone, are the first owner's
    with agency.session() as session:
        orphans = session.scalars(
            select(FollowUp.owner)
            .join(Mission, FollowUp.mission_id == Mission.id)
            .where(Mission.owner.is_(None) | (Mission.owner == "gone"))
        ).all()
    assert orphans and set(orphans) == {"ana"}
    invoices = {row[1] for row in grouped if row[2] == "invoice_due"}
    assert "ben" not in invoices and "fay" not in invoices  # their invoice_due is off
    languages = {row[5] for row in grouped if row[1] == "cid" and row[4] is None}
    assert languages == {"en"}  # cid's own tasks in his language


def test_a_pass_in_small_batches_records_the_same(
    agency: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Intents recorded a few at a time, rows streamed a few at a time (a server-side cursor
    on PostgreSQL, read between the inserts): the same outbox as in large batches."""
    deal(agency, ["ana", "ben", "cid", None])
    settings = settings_of(ALIKE, tmp_path)
    rules = enabled_rules(settings.rules, settings.owners)
    session = agency.sessions()
    try:
        evaluate(session, settings, rules, AT)
        large = outbox_of(session)
    finally:
        session.rollback()
        session.close()
    monkeypatch.setattr(batches, "__defaults__", (7,))
    monkeypatch.setattr(streamed, "__defaults__", (5,))
    small = together(agency, settings)
    assert len(small) > 40 and small == large
