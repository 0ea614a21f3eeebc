"""Formal notices kept as their data (schema 0013), their PDF made when asked for.

The record gives back the very notice it was made of, so the PDF made from
it later is byte for byte the one evaluation would have made. Rows recorded
before 0013 keep the PDF they were recorded with, and are served as they are.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, inspect
from sqlalchemy.engine import URL

from followupd.channels.letters import formal_notice_pdf
from followupd.channels.letters.files import file_bytes, made
from followupd.domain.formal_notice import FormalNotice
from followupd.domain.formal_notice_record import dumps, loads
from followupd.domain.states import Audience, Channel, FollowUpState
from followupd.store import attachments
from followupd.store.attachments import Stored
from followupd.store.db import HEAD_REVISION, Store
from followupd.store.models import Base, FollowUp
from tests.conftest import to_revision
from tests.test_formal_notice import CONSUMER, ENGLISH, FRENCH, INVOICES

DOLLARS = replace(
    ENGLISH,
    currency="USD",
    place=None,
    reminded=False,
    margin_points=Decimal("7.5"),
    debtor=replace(ENGLISH.debtor, address=None, contact=None),
    creditor=replace(ENGLISH.creditor, phone=None, address=None),
    invoices=(replace(INVOICES[0], contract_rate=Decimal("12.50"), mission=None), INVOICES[1]),
)
OLD_PDF = b"%PDF-1.4\n" + bytes(range(256)) * 16  # as a pass before 0013 stored it
AT = datetime(2027, 1, 14, 8, tzinfo=UTC)
FOLLOWUPS = Base.metadata.tables["followups"]  # written to without the ORM: any schema


@pytest.mark.parametrize("notice", [FRENCH, ENGLISH, CONSUMER, DOLLARS])
def test_the_record_gives_back_the_notice_and_its_very_pdf(notice: FormalNotice) -> None:
    record = dumps(notice)
    assert loads(record) == notice
    assert str(loads(record).invoices[1].amount) == "2400.00", "the exponent kept"
    assert dumps(loads(record)) == record
    assert file_bytes(Stored("a.pdf", letter=record)) == formal_notice_pdf(notice)


@pytest.mark.parametrize(
    "record",
    ['{"version": 2}', "[]", "{}", "not json", dumps(FRENCH).replace('"dated":"2026-12-04"',
                                                                      '"dated":"soon"')],
)  # fmt: skip
def test_anything_but_a_record_is_refused(record: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        loads(record)


def test_a_letter_that_cannot_be_made_is_that_file_alone_missing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = Stored("mise-en-demeure-F-1.pdf", letter='{"version": 99}')
    with caplog.at_level(logging.ERROR, "followupd.letters"):
        assert made("formal_notice:F-1", broken) is None
    assert "formal_notice:F-1: its file mise-en-demeure-F-1.pdf could not be made" in caplog.text
    assert made("formal_notice:F-2", Stored("b.pdf", data=OLD_PDF)) == ("b.pdf", OLD_PDF)
    assert made("formal_notice:F-3", None) is None


def row(key: str, **file: object) -> dict[str, object]:
    """An owner's task recorded on 2027-01-14, with the columns of a file given in `file`."""
    return {
        "key": key, "rule": "formal_notice", "step": "send", "subject_key": key.split(":")[1],
        "concern": key, "audience": Audience.OWNER, "channel": Channel.CALENDAR,
        "language": "fr", "subject": "s", "body": "", "due_at": AT, "expires_at": AT,
        "state": FollowUpState.PENDING, "late": False, "attempts": 0, "created_at": AT,
        "updated_at": AT, **file,
    }  # fmt: skip


def test_0013_goes_up_and_down_and_the_pdfs_stored_before_are_served(database_url: URL) -> None:
    store = Store.open(database_url)
    try:
        store.upgrade()
        to_revision(store, "0012", down=True)
        columns = {column["name"] for column in inspect(store.engine).get_columns("followups")}
        assert "letter" not in columns
        old, plain = "formal_notice:F-2026-001", "invoice_due:F-2026-001:nudge-1"
        with store.engine.begin() as connection:  # as a pass before 0013 recorded them
            connection.execute(insert(FOLLOWUPS).values(
                row(old, attachment=OLD_PDF, attachment_name="mise-en-demeure-F-2026-001.pdf")
            ))  # fmt: skip
            connection.execute(insert(FOLLOWUPS).values(row(plain)))

        assert store.upgrade() == ("0012", HEAD_REVISION)
        with store.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        new = "formal_notice:F-2026-002"
        with store.engine.begin() as connection:  # as a pass records it now
            connection.execute(insert(FOLLOWUPS), [
                row(new, letter=dumps(FRENCH), attachment_name="mise-en-demeure-F-2026-002.pdf"),
            ])  # fmt: skip
        with store.session() as session:
            found = attachments.attachments(session, [old, plain, new])
            assert found == {
                old: Stored("mise-en-demeure-F-2026-001.pdf", data=OLD_PDF),
                new: Stored("mise-en-demeure-F-2026-002.pdf", letter=dumps(FRENCH)),
            }
            assert made(old, found[old]) == ("mise-en-demeure-F-2026-001.pdf", OLD_PDF)
            assert made(new, found[new]) == (
                "mise-en-demeure-F-2026-002.pdf", formal_notice_pdf(FRENCH)
            )  # fmt: skip
            names = attachments.names(session, [old, plain, new])
            assert set(names) == {old, new}
            assert attachments.named(session, names[old]) == (old, found[old])
            assert attachments.named(session, names[new]) == (new, found[new])
            assert attachments.latest(session, "formal_notice", "F-2026-001") == (old, found[old])

        to_revision(store, "0012", down=True)
        with store.engine.begin() as connection:
            kept = connection.execute(
                FOLLOWUPS.select().with_only_columns(FollowUp.key, FollowUp.attachment)
            ).all()
        assert {(key, None if data is None else bytes(data)) for key, data in kept} == {
            (old, OLD_PDF), (plain, None), (new, None)
        }, "downgrade keeps every follow-up and the bytes stored before"  # fmt: skip
        assert store.upgrade() == ("0012", HEAD_REVISION)
    finally:
        store.close()
