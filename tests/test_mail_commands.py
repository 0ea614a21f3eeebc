"""`sync`, `tick` and `check` with a mailbox (``[imap]``), against the real throwaway Dovecot.

`sync` shows each folder it read and how; `tick` reads the mailbox before its
pass and still evaluates and delivers when the mailbox cannot be read (exit
69); `check` says how each folder syncs, or why the mailbox cannot be used.
The password comes from the environment and is never shown.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import URL

import followupd
from followupd.errors import EX_UNAVAILABLE
from followupd.store.db import Store
from followupd.store.mailbox import folder_state
from followupd.store.models import FollowUp, MailMessage
from tests.conftest import MINIMAL_CONFIG, RunCli
from tests.daemon import environment
from tests.imapserver import PASSWORD, SENT_FOLDER, ImapServer
from tests.test_imap_sync import closed_port, corpus, mail

PASSWORD_VARIABLE = "IMAP_TEST_PASSWORD"
WRONG_PASSWORD = "zq-not-the-imap-password"
DEMO_DAY = "2026-11-22"  # `init --demo --today`: invoices fall due the days after
TICK_AT = "2026-11-23T10:00"  # a Monday in the send window: the demo's first nudges leave
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def imap_section(
    server: ImapServer, user: str, *, port: int | None = None, folders: str | None = None
) -> str:
    """``[imap]`` reading `user`'s mailbox over TLS (the test CA), its password in the env."""
    lines = [
        "[imap]",
        f'url = "imaps://{server.host}:{port or server.imaps_port}/"',
        f'username = "{user}"',
        f'password_env = "{PASSWORD_VARIABLE}"',
        f'ca_file = "{server.ca_file}"',
    ]
    if folders is not None:
        lines.append(f"folders = {folders}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def user(imap_server: ImapServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A mailbox of this test's own, its password in the environment."""
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    return imap_server.new_user()


def configure(cli: RunCli, home: Path, *sections: str) -> Path:
    """The config with `sections`, and the database made."""
    config = home / "followupd.toml"
    config.write_text(MINIMAL_CONFIG + "".join(sections), encoding="utf-8")
    assert cli("init").code == 0
    return config


def messages(database_url: URL) -> dict[str | None, MailMessage]:
    """The messages recorded in the store, by subject."""
    store = Store.open(database_url)
    try:
        with store.session() as session:
            return {row.subject: row for row in session.scalars(select(MailMessage))}
    finally:
        store.close()


def table_rows(out: str) -> list[list[str]]:
    """The cells of the rows of the table `sync` printed (its header and rule left out)."""
    return [
        [cell.strip() for cell in line.split("│")]
        for line in out.splitlines()
        if line.count("│") == 5
    ]


# -- sync ------------------------------------------------------------------------------------


def test_sync_reads_the_inbox_and_the_sent_folder_then_nothing_new(
    cli: RunCli, home: Path, imap_server: ImapServer, user: str, database_url: URL
) -> None:
    imap_server.append(user, "INBOX", mail("Re: Facture F-042", date=NOW - timedelta(hours=2)))
    imap_server.append(user, "INBOX", mail("Re: devis", date=NOW - timedelta(hours=1)))
    imap_server.append(user, SENT_FOLDER, mail("Point d'avancement", sender="claire@x.example"))
    configure(cli, home, imap_section(imap_server, user))
    account = f"{user}@{imap_server.host}:{imap_server.imaps_port}"

    first = cli("sync", "--now", TICK_AT)

    assert first.code == 0, first
    assert table_rows(first.out) == [
        [account, "INBOX", "inbox", "full", "2", "2"],
        [account, SENT_FOLDER, "sent", "full", "1", "1"],
    ]
    assert first.err == ""
    recorded = messages(database_url)
    assert sorted(recorded, key=str) == ["Point d'avancement", "Re: Facture F-042", "Re: devis"]
    assert recorded["Point d'avancement"].folder == SENT_FOLDER

    second = cli("sync", "--now", "2026-11-23T10:05")

    assert second.code == 0, second
    assert table_rows(second.out) == [
        [account, "INBOX", "inbox", "unchanged", "0", "0"],
        [account, SENT_FOLDER, "sent", "unchanged", "0", "0"],
    ]
    assert len(messages(database_url)) == 3


def test_sync_with_the_mailbox_down_exits_69_with_one_line_never_the_password(
    cli: RunCli, home: Path, imap_server: ImapServer, user: str
) -> None:
    port = closed_port()
    configure(cli, home, imap_section(imap_server, user, port=port))
    # the followupd under test, wherever the environment's editable install points
    source = str(Path(followupd.__file__).parents[1])
    env = {**environment(home), PASSWORD_VARIABLE: PASSWORD, "PYTHONPATH": source}

    ran = subprocess.run(  # a real process: what its logging writes to stderr counts too
        [sys.executable, "-m", "followupd", "--config", str(home / "followupd.toml"), "sync"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert ran.returncode == EX_UNAVAILABLE, ran
    assert ran.stderr.splitlines() == [
        f"followupd: mailbox {user}@127.0.0.1:{port}: connection refused; tried again next time"
    ]
    assert "│" not in ran.stdout, "no table of folders: none was read"
    assert PASSWORD not in ran.stdout + ran.stderr


def test_sync_with_the_login_refused_never_shows_the_password(
    cli: RunCli,
    home: Path,
    imap_server: ImapServer,
    user: str,
    database_url: URL,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    imap_server.append(user, "INBOX", mail("Re: Facture F-042"))
    configure(cli, home, imap_section(imap_server, user))
    monkeypatch.setenv(PASSWORD_VARIABLE, WRONG_PASSWORD)

    refused = cli("sync")

    assert refused.code == EX_UNAVAILABLE, refused
    (line,) = refused.err.splitlines()
    assert line.startswith(f"followupd: mailbox {user}@127.0.0.1:{imap_server.imaps_port}: ")
    assert "login refused" in line
    assert WRONG_PASSWORD not in refused.out + refused.err
    assert messages(database_url) == {}


def test_sync_without_calendar_or_mailbox_is_a_usage_error(cli: RunCli, home: Path) -> None:
    configure(cli, home)
    result = cli("sync")
    assert result.code == 2, result
    assert "no [caldav] or [imap] section in the config" in result.err


# -- tick ------------------------------------------------------------------------------------


@pytest.fixture
def demo(cli: RunCli, home: Path) -> Path:
    """The demo's clients and invoices loaded: a tick at `TICK_AT` sends nudges."""
    config = configure(cli, home)
    assert cli("init", "--demo", "--today", DEMO_DAY).code == 0
    return config


def outbox_states(database_url: URL) -> dict[str, str]:
    store = Store.open(database_url)
    try:
        with store.session() as session:
            return {row.key: row.state for row in session.scalars(select(FollowUp))}
    finally:
        store.close()


def test_tick_reads_the_mailbox_then_evaluates_and_delivers(
    cli: RunCli, demo: Path, imap_server: ImapServer, user: str, database_url: URL
) -> None:
    uid = imap_server.append(user, "INBOX", mail("Re: Facture", date=NOW - timedelta(hours=1)))
    with demo.open("a", encoding="utf-8") as config:
        config.write(imap_section(imap_server, user))

    ticked = cli("tick", "--now", TICK_AT)

    assert ticked.code == 0, ticked
    assert list(messages(database_url)) == ["Re: Facture"]
    store = Store.open(database_url)
    try:
        with store.session() as session:
            state = folder_state(session, None, "INBOX")
    finally:
        store.close()
    assert state is not None and state.last_uid == uid
    assert "sent" in outbox_states(database_url).values()


def test_tick_with_the_mailbox_down_still_delivers_and_exits_69(
    cli: RunCli, demo: Path, imap_server: ImapServer, user: str, database_url: URL
) -> None:
    port = closed_port()
    with demo.open("a", encoding="utf-8") as config:
        config.write(imap_section(imap_server, user, port=port))

    ticked = cli("tick", "--now", TICK_AT, "--json")

    assert ticked.code == EX_UNAVAILABLE, ticked
    assert ticked.err.splitlines() == [
        f"followupd: mailbox {user}@127.0.0.1:{port}: connection refused; tried again next time"
    ]
    shown = {item["key"]: item["state"] for item in json.loads(ticked.out)["followups"]}
    assert "sent" in shown.values(), "the pass evaluated and delivered all the same"
    assert shown == outbox_states(database_url)
    assert messages(database_url) == {}


def test_tick_skips_a_malformed_message_and_goes_on(
    cli: RunCli,
    demo: Path,
    imap_server: ImapServer,
    user: str,
    database_url: URL,
    caplog: pytest.LogCaptureFixture,
) -> None:
    junk = b"X-Junk: \xff\xfe\r\nX-Other: nothing a reader wants\r\n\r\nno header facts\r\n"
    unreadable = imap_server.append(user, "INBOX", junk)
    imap_server.append(user, "INBOX", corpus("latin1-8bit-headers.eml"))
    imap_server.append(user, "INBOX", mail("Re: devis", date=NOW - timedelta(hours=1)))
    with demo.open("a", encoding="utf-8") as config:
        config.write(imap_section(imap_server, user))

    with caplog.at_level(logging.WARNING, "followupd.sources.imap"):
        ticked = cli("tick", "--now", TICK_AT)

    assert ticked.code == 0, ticked
    skipped = [r.getMessage() for r in caplog.records if "message skipped" in r.getMessage()]
    assert skipped == [
        f"message skipped: INBOX UID {unreadable}: no Message-ID, Date or From could be read (none)"
    ]
    recorded = messages(database_url)
    assert len(recorded) == 2 and recorded["Re: devis"].problem is None
    latin = next(row for subject, row in recorded.items() if subject != "Re: devis")
    assert "Windows-1252" in (latin.problem or "")
    assert "sent" in outbox_states(database_url).values()


# -- check -----------------------------------------------------------------------------------


def imap_lines(out: str) -> list[str]:
    """The lines of the mailbox's checks (not of its password's, nor of the settings)."""
    return [line for line in out.splitlines() if re.match(r"imap +(ok|FAILED) ", line)]


def test_check_says_how_the_mailbox_and_each_folder_sync(
    cli: RunCli, home: Path, imap_server: ImapServer, user: str
) -> None:
    imap_server.append(user, "INBOX", mail("Re: Facture F-042"))
    imap_server.append(user, "INBOX", mail("Re: devis"))
    imap_server.append(user, SENT_FOLDER, mail("Point d'avancement", sender="claire@x.example"))
    configure(cli, home, imap_section(imap_server, user))

    checked = cli("check")

    assert checked.code == 0, checked
    reachable, inbox, sent = imap_lines(checked.out)
    assert reachable.split()[:2] == ["imap", "ok"]
    account = f"{user}@127.0.0.1:{imap_server.imaps_port}"
    assert f"{account}: reachable, read-only" in reachable
    assert "CONDSTORE" in reachable and "IDLE" in reachable
    assert inbox.split()[:2] == ["imap", "ok"] and "'INBOX' (replies): 2 messages" in inbox
    assert f"'{SENT_FOLDER}' (what you send): 1 message" in sent
    assert PASSWORD not in checked.out + checked.err


def test_check_fails_clearly_on_a_refused_login(
    cli: RunCli, home: Path, imap_server: ImapServer, user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(cli, home, imap_section(imap_server, user))
    monkeypatch.setenv(PASSWORD_VARIABLE, WRONG_PASSWORD)

    checked = cli("check")

    assert checked.code == EX_UNAVAILABLE, checked
    (line,) = imap_lines(checked.out)
    assert line.split()[:2] == ["imap", "FAILED"]
    assert f"mailbox {user}@127.0.0.1:{imap_server.imaps_port}: login refused" in line
    assert WRONG_PASSWORD not in checked.out + checked.err


def test_check_fails_on_a_folder_the_server_does_not_have(
    cli: RunCli, home: Path, imap_server: ImapServer, user: str
) -> None:
    configure(cli, home, imap_section(imap_server, user, folders='["INBOX", "Clients"]'))

    checked = cli("check")

    assert checked.code == EX_UNAVAILABLE, checked
    lines = imap_lines(checked.out)
    failed = [line for line in lines if line.split()[1] == "FAILED"]
    assert len(failed) == 1 and "folder 'Clients' not found on the server" in failed[0]
    assert any("'INBOX' (replies): 0 messages" in line for line in lines)


# -- what the mail means, end to end ---------------------------------------------------------

BOUNCED_ID = b"<4c9bca52657770004d737597855312b314b47f69.followupd@cabinet.example>"
BOUNCED_ADDRESS = b"jean.dupond@client.example"  # in bounce-postfix.eml
BOUNCE_DATE = b"Tue, 10 Nov 2026 09:00:05 +0100"  # its own Date: the returned one's is later


def sent_to_clients(database_url: URL) -> list[FollowUp]:
    """The client emails the pass sent, each with its Message-ID: invoices' nudges first."""
    store = Store.open(database_url)
    try:
        with store.session() as session:
            found = session.scalars(
                select(FollowUp).where(FollowUp.audience == "client", FollowUp.state == "sent")
            )
            return sorted(found, key=lambda row: (row.rule != "invoice_due", row.key))
    finally:
        store.close()


def test_a_reply_pauses_the_nudges_and_a_bounce_fails_its_followup(
    cli: RunCli, demo: Path, imap_server: ImapServer, user: str, database_url: URL
) -> None:
    """A client answers a nudge, another nudge bounces: the next `tick` acts on both."""
    with demo.open("a", encoding="utf-8") as config:
        config.write(imap_section(imap_server, user))
    assert cli("tick", "--now", TICK_AT).code == 0
    emails = sent_to_clients(database_url)
    assert len(emails) >= 2 and emails[0].rule == "invoice_due", [e.key for e in emails]
    answered, bounced = emails[0], emails[1]
    assert answered.message_id is not None and bounced.message_id is not None
    invoice = answered.key.split(":")[1]
    reply_at = NOW + timedelta(hours=3)
    imap_server.append(user, "INBOX", mail(
        f"Re: {answered.subject}", sender=str(answered.recipient), date=reply_at,
        In_Reply_To=answered.message_id, References=answered.message_id,
    ))  # fmt: skip
    bounce = corpus("bounce-postfix.eml").replace(BOUNCED_ID, bounced.message_id.encode())
    bounce = bounce.replace(BOUNCE_DATE, b"Mon, 23 Nov 2026 11:00:05 +0100", 1)  # after it left
    imap_server.append(  # the address it was sent to refused, as the report says
        user, "INBOX", bounce.replace(BOUNCED_ADDRESS, str(bounced.recipient).encode())
    )

    later = cli("tick", "--now", "2026-11-23T15:00", "--json")

    assert later.code == 3, later  # a follow-up failed in this pass: the bounced nudge
    assert "in the mailbox: 1 reply" in later.err and "1 bounce" in later.err
    shown = {item["key"]: item for item in json.loads(later.out)["followups"]}
    failed = shown[bounced.key]
    assert (failed["action"], failed["state"]) == ("failed", "failed")
    assert "5.1.1" in failed["reason"]
    tasks = [item for item in shown.values() if item["rule"] == "client_replied"]
    assert [(task["audience"], task["action"]) for task in tasks] == [("owner", "sent")]
    assert invoice in tasks[0]["subject"]
    fixes = [item for item in shown.values() if item["rule"] == "email_bounced"]
    assert [fix["audience"] for fix in fixes] == ["owner"]

    # the answered invoice's next nudges wait 7 working days from the reply (Mon 23 Nov):
    # none before Wednesday 2 December
    planned = json.loads(cli("plan", "--from", "2026-11-24", "--to", "2026-12-20", "--json").out)
    waiting = [
        datetime.fromisoformat(item["due_at"]).date()
        for item in planned["followups"]
        if item["key"].startswith(f"invoice_due:{invoice}:nudge") and item["audience"] == "client"
    ]
    assert waiting, "the ladder goes on after the pause"
    assert min(waiting) >= datetime(2026, 12, 2).date(), waiting
