"""`plan` and `tick` from the command line, with their JSON shape (README, "Commands")."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL

from followupd.cli import render
from followupd.delivery.deliverer import RetryPolicy
from followupd.errors import EX_FOLLOWUPS_FAILED, EX_UNAVAILABLE
from followupd.store import live_items
from followupd.store.db import Store
from tests.conftest import MINIMAL_CONFIG, ONE_EMAIL_PER_INVOICE, RunCli
from tests.smtpserver import smtp_server

FIELDS = {"key", "rule", "mission", "contact", "audience", "channel", "recipient", "due_at",
          "subject"}  # fmt: skip


@pytest.fixture
def demo(cli: RunCli, home: Path) -> Path:
    config = home / "followupd.toml"
    config.write_text(MINIMAL_CONFIG, encoding="utf-8")
    assert cli("init", "--demo", "--today", "2026-11-22").code == 0
    return config


def as_json(text: str) -> dict[str, Any]:
    document = json.loads(text)
    assert isinstance(document, dict)
    return document


def test_plan_json_shape_and_no_side_effect(cli: RunCli, demo: Path) -> None:
    result = cli("plan", "--from", "2026-11-22", "--to", "2026-12-31", "--json")
    assert result.code == 0, result
    document = as_json(result.out)
    assert set(document) == {"now", "followups"}
    followups = document["followups"]
    assert followups, "the demo has invoices falling due in December"
    for item in followups:
        assert set(item) >= FIELDS
        assert item["audience"] in ("owner", "client")
        assert item["channel"] in ("email", "calendar")
        assert item["key"].startswith(item["rule"] + ":")
        due = datetime.fromisoformat(item["due_at"])
        assert due.utcoffset() is not None
        assert datetime(2026, 11, 22).date() <= due.date() <= datetime(2026, 12, 31).date()
        if item["audience"] == "client":
            assert "@" in item["recipient"]
    assert len({item["key"] for item in followups}) == len(followups)
    keys = [item["key"] for item in followups]
    assert "invoice_due:F-2026-041:nudge-1" in keys
    tick = as_json(cli("tick", "--now", "2026-11-22T08:00", "--dry-run", "--json").out)
    assert all(item["state"] in ("pending", "expired") for item in tick["followups"])
    again = as_json(cli("plan", "--from", "2026-11-22", "--to", "2026-12-31", "--json").out)
    assert [item["key"] for item in again["followups"]] == keys


def test_tick_records_once_and_reports_states(cli: RunCli, demo: Path) -> None:
    first = cli("tick", "--now", "2026-11-23T10:00", "--json")
    assert first.code == 0, first
    document = as_json(first.out)
    assert document["now"] == "2026-11-23T10:00:00+01:00"
    states = {item["key"]: item for item in document["followups"]}
    # a reminder to the owner without CalDAV is delivered by being in the feed
    assert states["invoice_due:F-2026-041:heads-up"]["state"] == "sent"
    # client emails went to the Maildir (no [smtp] in this config)
    emails = [i for i in document["followups"] if i["channel"] == "email"]
    sent_emails = [i for i in emails if i["state"] == "sent"]
    assert sent_emails
    # several periods of one reminder due at once (a first start): the latest goes, once
    superseded = [i for i in emails if i["state"] == "superseded"]
    assert len(sent_emails) + len(superseded) == len(emails)
    sent_keys = {item["key"]: item["concern"] for item in sent_emails}
    for item in superseded:
        newer = item["reason"].removeprefix("superseded by ")
        assert sent_keys[newer] == item["concern"], item
    assert len({(i["recipient"], i["subject"]) for i in sent_emails}) == len(sent_emails), (
        "nobody receives two messages with the same subject"
    )
    assert all(
        item["state"] in ("sent", "pending", "superseded") for item in document["followups"]
    ), "a first pass records nothing already past its grace"
    maildir = demo.parent / ".local" / "state" / "followupd" / "Maildir" / "new"
    assert len(list(maildir.iterdir())) == len(sent_emails)
    again = as_json(cli("tick", "--now", "2026-11-23T10:00", "--json").out)
    assert again["followups"] == []


@pytest.mark.slow
def test_after_a_downtime_missed_followups_are_recorded_expired(cli: RunCli, demo: Path) -> None:
    assert cli("tick", "--now", "2026-11-23T10:00").code == 0
    # down for four weeks: what fell due meanwhile and is past its grace is expired
    document = as_json(cli("tick", "--now", "2026-12-21T10:00", "--json").out)
    states = {item["key"]: item for item in document["followups"]}
    missed = states["invoice_due:F-2026-041:nudge-1"]  # due 27 November
    assert missed["state"] == "expired"
    # in the owner's time: due 27 November at 15:00 in Paris, a week of grace
    assert missed["reason"] == "missed: its grace ended 2026-12-04 15:00"
    assert states["invoice_due:F-2026-045:heads-up"]["state"] == "sent"  # due 15 December
    for item in document["followups"]:
        due = datetime.fromisoformat(item["due_at"])
        assert due > datetime.fromisoformat("2026-11-23T10:00:00+01:00") - timedelta(days=7)


def test_tick_dry_run_records_nothing(cli: RunCli, demo: Path) -> None:
    dry = as_json(cli("tick", "--now", "2026-12-02T10:00", "--dry-run", "--json").out)
    assert dry["followups"]
    real = as_json(cli("tick", "--now", "2026-12-02T10:00", "--json").out)
    assert [item["key"] for item in real["followups"]] == [item["key"] for item in dry["followups"]]


def test_paying_then_ticking_reports_the_cancellation(cli: RunCli, demo: Path) -> None:
    # Saturday: the New York client's send window is closed, so the nudge waits
    waiting = as_json(cli("tick", "--now", "2026-11-28T10:00", "--json").out)
    held = {i["key"]: i for i in waiting["followups"]}["invoice_due:F-2026-041:nudge-1"]
    assert held["state"] == "pending"
    assert held["reason"] == "outside the send window"
    assert cli("invoice", "paid", "F-2026-041", "--on", "2026-11-28").code == 0
    document = as_json(cli("tick", "--now", "2026-11-30T10:00", "--json").out)
    cancelled = {i["key"]: i for i in document["followups"] if i["state"] == "cancelled"}
    assert cancelled["invoice_due:F-2026-041:nudge-1"]["reason"] == (
        "invoice F-2026-041 paid on 2026-11-28"
    )


def test_plan_window_errors_and_text_output(cli: RunCli, demo: Path) -> None:
    backwards = cli("plan", "--from", "2026-12-01", "--to", "2026-11-01")
    assert backwards.code == 2
    assert "--to is before --from" in backwards.err
    text = cli("plan", "--from", "2026-11-22", "--to", "2026-11-24")
    assert text.code == 0
    assert "you (calendar)" in text.out
    empty = cli("plan", "--from", "2030-06-01", "--to", "2030-06-02")
    assert "nothing becomes due in this window" in empty.out


def test_tick_json_uses_only_the_states_the_readme_documents(cli: RunCli, demo: Path) -> None:
    from followupd.cli.json_output import README_STATES
    from followupd.domain.states import FollowUpState

    spec = {"sent", "failed", "pending", "expired", "cancelled", "superseded", "dismissed"}
    assert {README_STATES.get(state, state) for state in FollowUpState} <= spec
    document = as_json(cli("tick", "--now", "2026-11-28T10:00", "--json").out)
    assert {item["state"] for item in document["followups"]} <= spec


# -- tick's exit status ---------------------------------------------------------------------

OTHER_RULES = ("deposit_due", "contract_missing", "escalate_by_phone", "client_not_informed",
               "status_update_due", "checkpoint_meeting", "mission_closeout",
               "open_ended_mission", "new_year_greetings")  # fmt: skip
NUDGE_DUE = datetime.fromisoformat("2026-12-01T00:00:00+01:00")  # invoices due 30 November


def mailing(home: Path, smtp_port: int, invoices: int) -> None:
    """A config sending one email a due invoice to `smtp_port`, and the invoices to nudge."""
    disabled = "".join(f"[rules.{name}]\nenabled = false\n" for name in OTHER_RULES)
    (home / "followupd.toml").write_text(
        MINIMAL_CONFIG
        + f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
        + '[business]\nsend_window = "00:00-24:00"\n'
        + 'working_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]\n'
        + ONE_EMAIL_PER_INVOICE
        + 'steps = [{ name = "nudge-1", offset_days = 1, audience = "client" }]\n'
        + disabled,
        encoding="utf-8",
    )
    data = (
        '[[clients]]\nkey = "acme"\nname = "ACME SA"\n'
        '[[contacts]]\nkey = "jd"\nclient = "acme"\nname = "Jeanne Dupont"\n'
        'email = "jeanne@acme.example"\n'
        '[[missions]]\nkey = "audit"\nclient = "acme"\ntitle = "Audit"\ncontact = "jd"\n'
        "start = 2026-09-01\ncontract_signed = 2026-08-25\n"
    ) + "".join(
        f'[[invoices]]\nnumber = "F-{n}"\nmission = "audit"\namount = 100\n'
        "issued = 2026-10-31\ndue = 2026-11-30\n"
        for n in range(1, invoices + 1)
    )
    (home / "data.toml").write_text(data, encoding="utf-8")


@pytest.mark.slow
def test_tick_exits_3_when_a_follow_up_failed_even_with_a_server_unreachable(
    cli: RunCli, home: Path
) -> None:
    with smtp_server() as (recorder, port):
        mailing(home, port, invoices=2)
        assert cli("init").code == 0
        assert cli("import", home / "data.toml").code == 0
        recorder.refuse(451)  # the first message: try again later (exit 69 alone)
        recorder.refuse(550)  # the second: refused for good
        first = cli("tick", "--now", (NUDGE_DUE + timedelta(hours=10)).isoformat(), "--json")
        later = cli("tick", "--now", (NUDGE_DUE + timedelta(hours=20)).isoformat(), "--json")
    assert first.code == EX_FOLLOWUPS_FAILED == 3, first
    states = {item["key"]: item["state"] for item in as_json(first.out)["followups"]}
    assert sorted(states.values()) == ["failed", "pending"], states
    (failed,) = [key for key, state in states.items() if state == "failed"]
    assert failed in first.err and "1 follow-up(s) failed in this pass" in first.err
    # the next pass sends the one retried; the one failed before is not this pass's
    assert later.code == 0, later
    assert [item["state"] for item in as_json(later.out)["followups"]] == ["sent"]
    assert len(recorder.messages) == 1


@pytest.mark.slow
def test_tick_exits_69_while_retrying_then_3_when_it_gives_up(cli: RunCli, home: Path) -> None:
    with smtp_server() as (recorder, port):
        mailing(home, port, invoices=1)
        assert cli("init").code == 0
        assert cli("import", home / "data.toml").code == 0
        recorder.refuse(451, times=RetryPolicy().max_attempts)
        codes: list[int] = []
        now = NUDGE_DUE + timedelta(minutes=5)
        for _ in range(RetryPolicy().max_attempts):
            result = cli("tick", "--now", now.isoformat(), "--json")
            codes.append(result.code)
            now += RetryPolicy().cap + timedelta(hours=1)  # past any retry's delay
    assert codes == [EX_UNAVAILABLE] * (RetryPolicy().max_attempts - 1) + [EX_FOLLOWUPS_FAILED]
    (last,) = as_json(result.out)["followups"]
    assert last["state"] == "failed" and last["reason"].startswith("gave up after 8 attempts")
    assert "invoice_due:F-1:nudge-1" in result.err
    assert recorder.messages == []


def test_tick_help_documents_its_exit_status(cli: RunCli) -> None:
    shown = " ".join(cli("tick", "--help").out.split())
    assert f"{EX_FOLLOWUPS_FAILED} when a follow-up became failed or dead" in shown
    assert f"{EX_UNAVAILABLE} when a server" in shown


ACTIONS = {"recorded", "sent", "retrying", "failed", "cancelled", "expired", "superseded",
           "closed"}  # fmt: skip


def test_tick_says_what_its_pass_did_and_lists_nothing_else(cli: RunCli, demo: Path) -> None:
    first = as_json(cli("tick", "--now", "2026-12-15T10:00", "--json").out)
    assert first["followups"]
    assert {item["action"] for item in first["followups"]} <= ACTIONS
    for item in first["followups"]:
        if item["action"] == "sent":
            assert item["state"] == "sent"
        if item["action"] == "superseded":
            assert item["state"] == "superseded"
    heads_up = {i["key"]: i for i in first["followups"]}["invoice_due:F-2026-045:heads-up"]
    assert (heads_up["action"], heads_up["state"]) == ("sent", "sent")
    # the same instant again: nothing left to do, nothing listed
    assert as_json(cli("tick", "--now", "2026-12-15T10:00", "--json").out)["followups"] == []
    # paid: the heads-up sent days before is closed by this pass, and says so
    assert cli("invoice", "paid", "F-2026-045", "--on", "2026-12-15").code == 0
    after = {i["key"]: i for i in as_json(cli("tick", "--now", "2026-12-15T11:00", "--json").out)
             ["followups"]}  # fmt: skip
    assert (after["invoice_due:F-2026-045:heads-up"]["action"],
            after["invoice_due:F-2026-045:heads-up"]["state"]) == ("closed", "sent")  # fmt: skip
    assert after["invoice_due:F-2026-045:heads-up"]["reason"] == (
        "closed: invoice F-2026-045 paid on 2026-12-15"
    ), "followupd closed it, not the user in their calendar"
    table = cli("outbox", "list", "--rule", "invoice_due", "--limit", "200").out
    assert "closed: invoice F-2026-045 paid on" in table
    assert "completed in your calendar" not in table
    assert all(not key.startswith("invoice_due:F-2026-045:") or item["action"] in
               ("closed", "cancelled") for key, item in after.items())  # fmt: skip


def test_the_dry_run_says_recorded(cli: RunCli, demo: Path) -> None:
    dry = as_json(cli("tick", "--now", "2026-12-02T10:00", "--dry-run", "--json").out)
    assert {item["action"] for item in dry["followups"]} == {"recorded"}


def test_the_table_has_a_column_for_this_pass(cli: RunCli, demo: Path) -> None:
    result = cli("tick", "--now", "2026-12-02T10:00")
    assert result.code == 0, result
    assert "this pass" in result.out
    assert "sent" in result.out


def test_plan_shows_what_would_go(cli: RunCli, home: Path, database_url: URL) -> None:
    """Reminders by email say they go in the digest; a dismissed concern is not planned."""
    config = home / "followupd.toml"
    config.write_text(MINIMAL_CONFIG.replace('reminders_by_email = "each"\n', ""), "utf-8")
    assert cli("init", "--demo", "--today", "2026-11-22").code == 0
    text = cli("plan", "--from", "2026-11-23", "--to", "2026-12-10").out
    assert "you (digest)" in text
    assert "you (email)" not in text
    assert cli("tick", "--now", "2026-11-28T10:00").code == 0
    store = Store.open(database_url)
    try:
        with store.session() as session:
            concern = "client_not_informed:crm-export-incomplet"
            found = live_items.of_concerns(session, [concern])[concern]
            live_items.dismissed_by_user(found, "deleted in your calendar", found.updated_at)
    finally:
        store.close()
    planned = as_json(cli("plan", "--from", "2026-11-28", "--to", "2026-12-31", "--json").out)
    rules = {item["rule"] for item in planned["followups"]}
    assert "client_not_informed" not in rules, "dismissed: it would not go"
    assert "contract_missing" in rules

    config.write_text(MINIMAL_CONFIG.replace('"each"', '"off"'), "utf-8")
    off = as_json(cli("plan", "--from", "2026-11-28", "--to", "2026-12-31", "--json").out)
    owners = [item for item in off["followups"] if item["audience"] == "owner"]
    assert owners
    assert all(item["channel"] == "calendar" for item in owners)


def test_a_long_pass_is_counted_and_its_json_lists_every_follow_up(
    cli: RunCli, demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Printing a row costs ~1 ms: a Monday burst of thousands is counted instead (issue 17)."""
    listed = as_json(cli("tick", "--now", "2026-12-15T10:00", "--dry-run", "--json").out)
    assert len(listed["followups"]) > 3
    monkeypatch.setattr(render, "TABLE_ROWS", 3)
    result = cli("tick", "--now", "2026-12-15T10:00", "--dry-run")
    assert result.code == 0, result
    assert f"{len(listed['followups'])} follow-ups, counted" in result.out
    counted = [line.split("│") for line in result.out.splitlines() if line.count("│") == 3]
    assert sum(int(cells[3]) for cells in counted) == len(listed["followups"])
    assert {cells[1].strip() for cells in counted} == {"recorded"}
