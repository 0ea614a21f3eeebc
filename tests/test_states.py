"""The closed sets of words (followupd.domain.states): the same wherever they are spelled."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import get_args

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import IntegrityError

from followupd.config import rule_options
from followupd.domain.states import (
    ACTIVE_STATES,
    CANCELLABLE_STATES,
    FAILED_STATES,
    FINISHED_STATES,
    UNSENT_STATES,
    Audience,
    Channel,
    FollowUpState,
    Severity,
)
from followupd.store.db import HEAD_REVISION, Store, _alembic_config
from followupd.store.models import Base, FollowUp
from tests.conftest import sample_followup

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
KEY = "invoice_due:F-1:heads-up"


def test_the_config_spells_the_words_of_the_domain() -> None:
    """The config is validated below the domain layer: its Literals repeat the enums' words."""
    assert set(get_args(rule_options.Audience)) == set(Audience)
    assert set(get_args(rule_options.Severity)) == set(Severity)


def test_every_state_is_active_or_finished_and_the_subsets_are_of_them() -> None:
    assert set(FollowUpState) == ACTIVE_STATES | FINISHED_STATES
    assert not ACTIVE_STATES & FINISHED_STATES
    assert FAILED_STATES <= UNSENT_STATES < FINISHED_STATES
    assert FollowUpState.SENT not in UNSENT_STATES
    assert CANCELLABLE_STATES <= ACTIVE_STATES


def test_the_database_takes_every_word_and_gives_back_members(store: Store) -> None:
    with store.session() as session:
        for state in FollowUpState:
            row = sample_followup(f"state:{state}", NOW)
            row.state = state
            session.add(row)
        for channel in Channel:
            row = sample_followup(f"channel:{channel}", NOW)
            row.channel = channel
            session.add(row)
    with store.engine.connect() as connection:  # stored as the words themselves
        stored = set(connection.execute(text("SELECT state FROM followups")).scalars())
        assert stored == {state.value for state in FollowUpState}
    with store.session() as session:
        states = set(session.scalars(select(FollowUp.state)))
    assert states == set(FollowUpState)
    assert all(type(state) is FollowUpState for state in states)


@pytest.mark.parametrize(("column", "word"), [("state", "skipped"), ("channel", "feed")])
def test_words_nothing_wrote_are_refused(store: Store, column: str, word: str) -> None:
    with pytest.raises(IntegrityError), store.session() as session:
        row = sample_followup("k", NOW)
        setattr(row, column, word)
        session.add(row)


def _insert(connection: Connection, key: str, state: str, channel: str) -> None:
    """A row written as the schema of its time takes it, past the models' checks."""
    stamp = NOW if connection.dialect.name == "postgresql" else NOW.replace(tzinfo=None)
    connection.execute(
        text(
            "INSERT INTO followups (key, rule, step, subject_key, audience, channel, language,"
            " subject, body, due_at, late, state, attempts, created_at, updated_at)"
            " VALUES (:key, 'invoice_due', 'heads-up', 'F-1', 'owner', :channel, 'fr',"
            " 'Facture F-1', '', :at, false, :state, 1, :at, :at)"
        ),
        {"key": key, "state": state, "channel": channel, "at": stamp},
    )


def test_a_0006_database_upgrades_keeping_its_followups(database_url: URL) -> None:
    """0007 rewrites the CHECKs of state and channel; the rows, indexes and keys stay."""
    store = Store.open(database_url)
    try:
        config = _alembic_config()
        with store.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0006")
        with store.engine.begin() as connection:
            _insert(connection, KEY, "sent", "calendar")
            _insert(connection, "kept:skipped", "skipped", "feed")  # the old CHECKs took them
        with store.engine.begin() as connection:
            connection.execute(text("DELETE FROM followups WHERE key = 'kept:skipped'"))
        assert store.upgrade() == ("0006", HEAD_REVISION)
        with store.session() as session:
            (kept,) = session.scalars(select(FollowUp)).all()
        assert (kept.key, kept.state, kept.channel) == (KEY, "sent", "calendar")
        with store.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        for state, channel in (("skipped", "calendar"), ("sent", "feed")):
            with pytest.raises(IntegrityError), store.engine.begin() as connection:
                _insert(connection, f"new:{state}:{channel}", state, channel)
    finally:
        store.close()
