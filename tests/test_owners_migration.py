"""A single-owner database from before owners (schema 0004), upgraded: nothing is sent again.

The database is filled and its follow-ups sent with the single-owner form,
then taken back to schema 0004 (no owner columns) and upgraded, as `followupd
init` or the daemon does. Its rows keep their keys, their owner is NULL (the
first owner), and neither the single form nor a move to ``[[owners]]``
records or sends any of them again.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, select

from followupd.channels.feed.build import feed_items
from followupd.config.load import parse_settings
from followupd.config.settings import Settings
from followupd.domain.owner_scope import scopes
from followupd.store.db import HEAD_REVISION, MIGRATIONS, Store
from followupd.store.models import FollowUp, Mission
from tests.conftest import MINIMAL_CONFIG
from tests.rulekit import ACME, BOB, CLAIRE, PARIS, imported, outbox, paris
from tests.test_owners import tick

DATA = ACME.replace("contract_signed = 2026-08-25\n", "") + (
    '[[invoices]]\nnumber = "F-1"\nmission = "acme-audit"\namount = 12000.00\n'
    "issued = 2026-10-31\ndue = 2026-11-30\n"
)
OWNERS = CLAIRE + 'phone = "+33 6 00 00 00 00"\n' + BOB


def settings_of(text: str, tmp_path: Path) -> Settings:
    return parse_settings(text, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})


def back_to_0004(store: Store) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0004")


def mailed(settings: Settings) -> int:
    return len(list((settings.state_dir / "Maildir" / "new").iterdir()))


def test_an_upgraded_single_owner_database_sends_nothing_twice(
    store: Store, tmp_path: Path
) -> None:
    imported(store, tmp_path, DATA)
    single = settings_of(MINIMAL_CONFIG, tmp_path)
    first = tick(store, single, paris(2026, 12, 1, 10))
    before = outbox(store)
    assert sorted(first.sent) == sorted(before)
    assert "invoice_due:F-1:nudge-1" in before and mailed(single) > 0
    sent_mail = mailed(single)

    back_to_0004(store)
    assert "owner" not in {
        column["name"] for column in inspect(store.engine).get_columns("missions")
    }
    assert store.upgrade() == ("0004", HEAD_REVISION)
    after = outbox(store)
    assert {key: (row.state, row.owner) for key, row in after.items()} == dict.fromkeys(
        before, ("sent", None)
    )
    with store.session() as session:
        assert session.scalars(select(Mission.owner)).all() == [None]

    again = tick(store, single, paris(2026, 12, 1, 11))
    assert (again.sent, mailed(single)) == ([], sent_mail), "the single form: nothing again"

    several = settings_of(OWNERS, tmp_path)
    moved = tick(store, several, paris(2026, 12, 1, 12))
    assert (moved.sent, mailed(several)) == ([], sent_mail), "[[owners]]: nothing again"
    assert set(outbox(store)) == set(before), "no new key for an old follow-up"
    claire, bob = scopes(several)
    moment = paris(2026, 12, 1, 12)
    with store.session() as session:
        feeds = {
            scope.key: {item.key for item in feed_items(session, moment, PARIS, scope)}
            for scope in (claire, bob)
        }
    tasks = {key for key, row in before.items() if row.channel == "calendar"}
    assert "invoice_due:F-1:heads-up" in tasks
    assert feeds == {"claire": tasks, "bob": set()}, "the old rows are the first owner's"

    later = tick(store, several, paris(2026, 12, 8, 10))
    assert "invoice_due:F-1:nudge-2" in later.sent
    rows = outbox(store)
    assert (rows["invoice_due:F-1:nudge-2"].owner, rows["invoice_due:F-1:nudge-1"].owner) == (
        "claire",
        None,
    )
    with store.session() as session:
        nudges = session.scalars(
            select(FollowUp.key).where(FollowUp.key.like("invoice_due:F-1:nudge-%"))
        ).all()
    assert sorted(nudges) == ["invoice_due:F-1:nudge-1", "invoice_due:F-1:nudge-2"]
