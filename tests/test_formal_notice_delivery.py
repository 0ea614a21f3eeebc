"""The formal notice reaches the owner only: attached to the task on real CalDAV servers, in the
feed, and from `followupd invoice letter`; nothing goes to the client, on both engines."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar
from sqlalchemy import select, update

from followupd.channels.calendar import ical
from followupd.channels.feed.build import build_feed, feed_source, items_of
from followupd.channels.feed.files import FileLinks
from followupd.channels.letters import formal_notice_pdf
from followupd.channels.letters.files import file_bytes
from followupd.cli.app import App
from followupd.config.load import parse_settings
from followupd.config.settings import Settings
from followupd.domain import formal_notice_record, identity
from followupd.domain.states import MissionStatus
from followupd.store import attachments
from followupd.store.db import Store
from followupd.store.models import FollowUp, Invoice, Mission
from followupd.store.updates import mark_invoice_paid
from tests.conftest import MINIMAL_CONFIG, RunCli
from tests.davserver import PASSWORD_VARIABLE, SERVERS, USER, DavServer
from tests.rulekit import PARIS, imported, paris
from tests.smtpserver import Recorder, smtp_server
from tests.test_calendar_channel import deliver, record, remote, tick
from tests.test_rule_formal_notice import ADDRESS, CONSUMER, DATA, TRIGGER, pdf_text

CONFIG = MINIMAL_CONFIG.replace('reminders_by_email = "each"', 'reminders_by_email = "digest"')
AT = paris(2026, 12, 17, 9, 5)  # the task of F-2026-042 is due at 09:00
NAME = "mise-en-demeure-F-2026-042.pdf"


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    with smtp_server() as running:
        yield running


@pytest.fixture
def loaded(store: Store, tmp_path: Path) -> Store:
    return imported(store, tmp_path, DATA)


def settings_for(tmp_path: Path, dav: DavServer | None, smtp_port: int) -> Settings:
    text = CONFIG + ADDRESS
    if dav is not None:
        text += (f'[caldav]\nurl = "{dav.url}"\nusername = "{USER}"\n'
                 f'password_env = "{PASSWORD_VARIABLE}"\n')  # fmt: skip
    text += f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
    return parse_settings(text, tmp_path / "followupd.toml", {"HOME": str(tmp_path)})


def stored_pdf(store: Store, key: str = TRIGGER, name: str = NAME) -> bytes:
    """The PDF of the letter recorded with the follow-up keyed `key`, made from its record."""
    with store.session() as session:
        row = session.scalars(select(FollowUp).where(FollowUp.key == key)).one()
        assert row.attachment_name == name
        assert row.attachment is None, "no PDF is made at evaluation"
        assert row.letter is not None
        return formal_notice_pdf(formal_notice_record.loads(row.letter))


def attachment(part: Any) -> tuple[str, bytes]:
    """The file attached to a VTODO, checked to be written as RFC 5545 says."""
    found = ical.attachment_of(part)
    assert found is not None, part.to_ical()
    params = part["ATTACH"].params
    assert (params["FMTTYPE"], params["ENCODING"], params["VALUE"]) == (
        "application/pdf",
        "BASE64",
        "BINARY",
    )
    return found


@pytest.mark.parametrize("dav_kind", SERVERS)
def test_the_task_carries_the_pdf_and_the_client_gets_no_email(
    loaded: Store, tmp_path: Path, dav: DavServer, smtp: tuple[Recorder, int]
) -> None:
    recorder, port = smtp
    settings = settings_for(tmp_path, dav, port)
    tick(loaded, settings, paris(2026, 11, 30, 9, 5), "formal_notice")
    report = tick(loaded, settings, AT, "formal_notice")
    assert TRIGGER in report.sent
    task = remote(dav)[identity.uid(TRIGGER)]
    assert task.name == "VTODO"
    assert str(task["SUMMARY"]).startswith("Mise en demeure à envoyer : ACME SA, F-2026-042")
    assert "Pour obtenir le PDF de nouveau : followupd invoice letter F-2026-042" in str(
        task["DESCRIPTION"]
    )
    name, data = attachment(task)
    assert (name, data) == (NAME, stored_pdf(loaded)), "the server gives back the same bytes"
    assert "Mise en demeure de payer" in pdf_text(data, tmp_path)

    # the owner's digest lists the task; no email goes to ACME, whatever the step
    assert recorder.messages, "the owner's digest"
    assert {str(message["To"]) for message in recorder.messages} == {"claire@cabinet.example"}
    assert not any(
        part.get_filename() for message in recorder.messages for part in message.walk()
    ), "the letter is in the task, never mailed"
    digest = recorder.messages[-1].get_body(("plain",))
    assert digest is not None
    assert "Mise en demeure à envoyer : ACME SA, F-2026-042" in digest.get_content()

    # paid: the task is closed, the letter stays on it
    with loaded.session() as session:
        mark_invoice_paid(session, "F-2026-042", paris(2026, 12, 18).date())
    tick(loaded, settings, paris(2026, 12, 18, 9, 5), "formal_notice")
    closed = remote(dav)[identity.uid(TRIGGER)]
    assert str(closed["STATUS"]) == "COMPLETED"
    assert attachment(closed)[1] == data


@pytest.mark.parametrize("dav_kind", SERVERS)
def test_a_letter_that_cannot_be_made_at_delivery_is_that_file_alone_missing(
    loaded: Store,
    tmp_path: Path,
    dav: DavServer,
    smtp: tuple[Recorder, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The PDF is made when the task is written: one that fails then is logged with its
    follow-up's key, its task written without it, the other tasks with theirs."""
    settings = settings_for(tmp_path, dav, smtp[1])
    tick(loaded, settings, paris(2026, 11, 30, 9, 5), "formal_notice")
    record(loaded, settings, AT, "formal_notice")
    with loaded.session() as session:  # a record this version cannot read, say
        session.execute(
            update(FollowUp).where(FollowUp.key == TRIGGER).values(letter='{"version": 99}')
        )
    with caplog.at_level(logging.ERROR, "followupd.letters"):
        report = deliver(loaded, settings, AT)
    assert {TRIGGER, CONSUMER} <= set(report.sent)
    assert f"{TRIGGER}: its file {NAME} could not be made" in caplog.text
    tasks = remote(dav)
    assert "ATTACH" not in tasks[identity.uid(TRIGGER)], "written without its file"
    name, data = attachment(tasks[identity.uid(CONSUMER)])
    assert name == "mise-en-demeure-D-1.pdf" and data == stored_pdf(loaded, CONSUMER, name)


def test_the_feed_links_the_pdf_before_and_after_delivery(
    loaded: Store, tmp_path: Path, smtp: tuple[Recorder, int]
) -> None:
    """The feed's task names the PDF by URL, the one the daemon serves it at (see
    tests/test_feed_files.py for the fetch)."""
    settings = settings_for(tmp_path, None, smtp[1])
    links = FileLinks("http://127.0.0.1:8731", "secret")

    def served() -> dict[str, Any]:
        """The owner's feed, as `followupd run` serves it."""
        with loaded.session() as session:
            source = feed_source(session, AT)
        body = build_feed(items_of(source, PARIS, links), PARIS, "followupd").body
        return {str(part["UID"]): part for part in Calendar.from_ical(body).walk("VTODO")}

    def fetched(part: Any) -> bytes | None:
        """The bytes of the file the task links, checked to be linked as RFC 5545 says."""
        value = part["ATTACH"]
        assert dict(value.params) == {"FILENAME": NAME, "FMTTYPE": "application/pdf"}
        with loaded.session() as session:
            followup_id = session.scalars(select(FollowUp.id).where(FollowUp.key == TRIGGER)).one()
            assert str(value) == f"http://127.0.0.1:8731/feed/secret/files/{followup_id}/{NAME}"
            found = attachments.named(session, (followup_id, NAME))
        assert found is not None and found[0] == TRIGGER
        return file_bytes(found[1])

    record(loaded, settings, AT, "formal_notice")
    coming = served()[identity.uid(TRIGGER)]
    assert fetched(coming) == stored_pdf(loaded), "a task still to deliver"
    deliver(loaded, settings, AT)
    assert fetched(served()[identity.uid(TRIGGER)]) == stored_pdf(loaded)


@pytest.fixture
def config(home: Path) -> Path:
    path = home / "followupd.toml"
    path.write_text(CONFIG + ADDRESS, encoding="utf-8")
    (home / "data.toml").write_text(DATA, encoding="utf-8")
    return path


def test_invoice_letter_writes_the_recorded_pdf(
    cli: RunCli, home: Path, config: Path, store: Store, tmp_path: Path
) -> None:
    assert cli("import", home / "data.toml").code == 0
    ticked = cli("tick", "--now", AT.isoformat(), "--json")
    assert ticked.code == 0, ticked
    keys = {row["key"] for row in json.loads(ticked.out)["followups"]}
    assert TRIGGER in keys
    result = cli("invoice", "letter", "F-2026-042")
    assert result.code == 0, result
    written = home / NAME
    assert written.read_bytes() == stored_pdf(store), "the letter of the task, as recorded"
    assert f"written to {written} (recorded with the task {TRIGGER})" in result.out
    out = tmp_path / "lettre.pdf"
    assert cli("invoice", "letter", "F-2026-042", "--out", out).code == 0
    assert out.read_bytes() == written.read_bytes()
    with store.session() as session:  # a record this version cannot read: said, not guessed
        session.execute(
            update(FollowUp).where(FollowUp.key == TRIGGER).values(letter='{"version": 99}')
        )
    unreadable = cli("invoice", "letter", "F-2026-042", "--out", tmp_path / "x.pdf")
    assert unreadable.code == 1, unreadable
    assert f"the formal notice recorded with the task {TRIGGER} could not be made" in (
        unreadable.err
    )
    assert not (tmp_path / "x.pdf").exists()
    # after a dispute or a credit note: a new letter from the data as it stands
    (home / "data.toml").write_text(
        (home / "data.toml").read_text("utf-8").replace("amount = 8000\n", "amount = 7500\n"),
        "utf-8",
    )
    assert cli("import", home / "data.toml").code == 0
    fresh = tmp_path / "nouvelle.pdf"
    renewed = cli("invoice", "letter", "F-2026-042", "--today", "--out", fresh)
    assert renewed.code == 0, renewed
    assert "(made as of " in renewed.out
    assert "7 500,00 €" not in pdf_text(written.read_bytes(), tmp_path)
    assert "7 500,00 €" in pdf_text(fresh.read_bytes(), tmp_path), "the new amount"
    nowhere = tmp_path / "courrier" / "lettre.pdf"
    typo = cli("invoice", "letter", "F-2026-042", "--out", nowhere)
    assert typo.code == 2, "a usage error, said before any work"
    assert f"the directory '{nowhere.parent}' does not exist" in typo.err
    assert "unexpected error" not in typo.err


def test_invoice_letter_makes_one_when_none_was_recorded(
    cli: RunCli, home: Path, config: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("import", home / "data.toml").code == 0
    monkeypatch.setattr(App, "now", lambda self: datetime(2026, 12, 20, 10, tzinfo=UTC))
    result = cli("invoice", "letter", "F-2026-043")
    assert result.code == 0, result
    assert "(made as of 2026-12-20)" in result.out
    text = pdf_text((home / "mise-en-demeure-F-2026-043.pdf").read_bytes(), home)
    assert "Mise en demeure de payer" in text
    # the invoice asked for, and the others 45 days late or more on that day
    assert "F-2026-043" in text and "F-2026-040" in text and "F-2026-042" in text
    assert "dans un délai de 8 jours à compter de la réception de la présente." in text
    assert "Pénalités" in text

    missing = cli("invoice", "letter", "F-0000")
    assert missing.code == 1
    assert "no invoice numbered 'F-0000'" in missing.err
    paid = cli("invoice", "letter", "F-2026-041")
    assert paid.code == 1
    assert "invoice F-2026-041 was paid on 2026-10-25: no formal notice" in paid.err


def test_invoice_letter_refuses_a_disputed_mission_s_invoice(
    cli: RunCli, home: Path, config: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the rule: no formal notice while the mission is disputed, not even --today."""
    assert cli("import", home / "data.toml").code == 0
    monkeypatch.setattr(App, "now", lambda self: datetime(2026, 12, 20, 10, tzinfo=UTC))
    with store.session() as session:
        mission = session.scalars(
            select(Mission).join(Invoice).where(Invoice.number == "F-2026-043")
        ).one()
        mission.status = MissionStatus.DISPUTED
        key = mission.key
    for today in ((), ("--today",)):
        result = cli("invoice", "letter", "F-2026-043", *today)
        assert result.code == 1, result
        assert f"mission {key} is disputed, no formal notice while it is" in result.err
    assert not (home / "mise-en-demeure-F-2026-043.pdf").exists()
