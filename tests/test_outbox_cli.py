"""`followupd outbox`: list, show, retry and cancel, as a user drives them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.engine import URL

from followupd.store.db import Store
from followupd.store.models import FollowUp
from tests.conftest import MINIMAL_CONFIG, RunCli


@pytest.fixture
def ticked(cli: RunCli, home: Path, database_url: URL) -> URL:
    """The demo, one pass on Saturday 28 November 2026 (client emails wait for Monday)."""
    config = home / "followupd.toml"
    config.write_text(MINIMAL_CONFIG, encoding="utf-8")
    assert cli("init", "--demo", "--today", "2026-11-22").code == 0
    assert cli("tick", "--now", "2026-11-28T10:00").code == 0
    return database_url


def set_state(database: URL, key: str, **values: object) -> None:
    store = Store.open(database)
    with store.session() as session:
        session.execute(update(FollowUp).where(FollowUp.key == key).values(**values))
    store.close()


def test_list_and_show(cli: RunCli, ticked: URL) -> None:
    listing = cli("outbox", "list")
    assert listing.code == 0, listing
    assert "invoice_due" in listing.out
    assert "pending" in listing.out
    assert "│ sent " in listing.out
    pending = cli("outbox", "list", "--state", "pending")
    rows = [line for line in pending.out.splitlines() if "invoice_due" in line]
    assert rows
    assert all("│ pending " in line for line in rows)
    none = cli("outbox", "list", "--state", "dead")
    assert none.out.strip() == "no follow-up matches", "the outbox is not empty: the filter is"
    shown = cli("outbox", "show", "invoice_due:F-2026-041:nudge-1")
    assert shown.code == 0, shown
    assert "rachel.kim@harborline.example" in shown.out
    assert "outside the send window" in shown.out
    assert "Dear Rachel Kim" in shown.out
    missing = cli("outbox", "show", "nope")
    assert missing.code == 1
    assert "no follow-up numbered or keyed 'nope'" in missing.err


def test_cancel_then_retry_rules(cli: RunCli, ticked: URL) -> None:
    key = "invoice_due:F-2026-041:nudge-1"
    cancelled = cli("outbox", "cancel", key)
    assert cancelled.code == 0, cancelled
    assert "cancelled" in cancelled.out
    again = cli("outbox", "cancel", key)
    assert again.code == 1
    assert "only pending ones are cancelled" in again.err
    refused = cli("outbox", "retry", key)
    assert refused.code == 1
    assert "only failed or dead ones are retried" in refused.err

    set_state(ticked, key, state="dead", attempts=8, last_error="SMTP 451 try again later")
    retried = cli("outbox", "retry", key)
    assert retried.code == 0, retried
    shown = cli("outbox", "show", key).out
    assert "pending: retried by hand" in shown
    assert "SMTP 451 try again later" in shown
