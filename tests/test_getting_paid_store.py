"""Schema 0011 on both engines: clients' kind and ladder, part payments, promises, rates."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.engine import URL

from followupd.domain.payments import Payment, unpaid_on
from followupd.domain.states import Audience, Channel, ClientKind, FollowUpState
from followupd.errors import DataError
from followupd.sources.files.importer import import_files
from followupd.store.attachments import Stored, attachments
from followupd.store.db import HEAD_REVISION, Store, _alembic_config
from followupd.store.models import Base, Client, FollowUp, Invoice, Mission

PARIS = ZoneInfo("Europe/Paris")

DATA = """\
[[clients]]
key = "acme"
name = "ACME SA"
kind = "business"
profile = "gentle"
address = "12 rue de la Paix\\n75002 Paris"

[[clients]]
key = "martin"
name = "Paul Martin"
kind = "consumer"

[[missions]]
key = "acme-audit"
client = "acme"
title = "Audit du SI"
start = 2026-09-01
late_payment_rate = 12.5

[[invoices]]
number = "F-2026-042"
mission = "acme-audit"
amount = 12000.00
issued = 2026-10-31
due = 2026-11-30
promised = 2026-12-15
payments = [{ on = 2026-12-03, amount = 4000 }, { on = 2026-12-01, amount = 1000.50 }]
"""


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def test_the_new_fields_are_imported_and_read_back(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "data.toml", DATA)
    report = import_files(store, [path], PARIS)
    assert report.created == {"clients": 2, "missions": 1, "invoices": 1}
    with store.session() as session:
        acme = session.scalars(select(Client).where(Client.key == "acme")).one()
        martin = session.scalars(select(Client).where(Client.key == "martin")).one()
        invoice = session.scalars(select(Invoice)).one()
        mission = session.scalars(select(Mission)).one()
        assert (acme.kind, acme.profile, acme.address) == (
            ClientKind.BUSINESS,
            "gentle",
            "12 rue de la Paix\n75002 Paris",
        )
        assert martin.kind == ClientKind.CONSUMER
        assert martin.profile is None
        assert mission.late_payment_rate == Decimal("12.5")
        assert invoice.promised == date(2026, 12, 15)
        assert invoice.payments == (
            Payment(date(2026, 12, 1), Decimal("1000.50")),
            Payment(date(2026, 12, 3), Decimal("4000.00")),
        )
        assert unpaid_on(invoice.amount, invoice.payments, date(2026, 12, 2)) == Decimal("10999.50")
    again = import_files(store, [path], PARIS)
    assert again.changes == 0, "re-importing the same file changes nothing"


def test_an_invoice_without_payments_has_none(store: Store, tmp_path: Path) -> None:
    data = DATA.replace("payments = [", "# payments = [").replace("promised = ", "# promised = ")
    import_files(store, [write(tmp_path, "data.toml", data)], PARIS)
    with store.session() as session:
        invoice = session.scalars(select(Invoice)).one()
        assert invoice.payments == ()
        assert invoice.promised is None


@pytest.mark.parametrize(
    ("old", "new", "where", "says"),
    [
        ('kind = "consumer"', 'kind = "company"', "clients[1] (martin) kind", "business"),
        ('profile = "gentle"', 'profile = "Gentle One"', "clients[0] (acme) profile", "pattern"),
        ("amount = 4000 }", "amount = 40000 }", "invoices[0] (F-2026-042)", "more than"),
        ("amount = 1000.50 }", "amount = -5 }", "payments[1].amount", "greater than 0"),
        ("on = 2026-12-03", "on = 2026-12-03T10:00:00", "payments[0].on", "without a time"),
        ("late_payment_rate = 12.5", "late_payment_rate = 120", "late_payment_rate", "100"),
    ],
)
def test_bad_values_are_named(
    store: Store, tmp_path: Path, old: str, new: str, where: str, says: str
) -> None:
    assert old in DATA
    path = write(tmp_path, "data.toml", DATA.replace(old, new))
    with pytest.raises(DataError) as raised:
        import_files(store, [path], PARIS)
    text = str(raised.value)
    assert where in text
    assert says in text
    with store.session() as session:
        assert session.scalars(select(Client)).all() == [], "nothing was written"


def test_0011_goes_up_and_down_keeping_the_invoices(database_url: URL, tmp_path: Path) -> None:
    store = Store.open(database_url)
    try:
        store.upgrade()
        import_files(store, [write(tmp_path, "data.toml", DATA)], PARIS)
        config = _alembic_config()
        with store.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0010")
        assert store.current_revision() == "0010"
        columns = {column["name"] for column in inspect(store.engine).get_columns("invoices")}
        assert {"payments", "promised"}.isdisjoint(columns)
        columns = {column["name"] for column in inspect(store.engine).get_columns("followups")}
        assert {"attachment", "attachment_name"}.isdisjoint(columns)

        assert store.upgrade() == ("0010", HEAD_REVISION)
        with store.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        with store.session() as session:
            invoice = session.scalars(select(Invoice)).one()
            assert invoice.amount == Decimal("12000.00")
            assert invoice.payments == ()
            assert invoice.promised is None
            assert {client.kind for client in session.scalars(select(Client))} == {
                ClientKind.BUSINESS
            }, "every client stored before is a business"
        pdf = b"%PDF-1.4\n" + bytes(range(256)) * 64  # binary, not text: stored as it is
        with store.session() as session:
            session.add(followup("formal_notice:F-2026-042", pdf, "mise-en-demeure-F-2026-042.pdf"))
            session.add(followup("invoice_due:F-2026-042:nudge-1", None, None))
        with store.session() as session:
            found = attachments(
                session, ["formal_notice:F-2026-042", "invoice_due:F-2026-042:nudge-1"]
            )
            assert found == {
                "formal_notice:F-2026-042": Stored("mise-en-demeure-F-2026-042.pdf", pdf)
            }
            row = session.scalars(
                select(FollowUp).where(FollowUp.attachment_name.is_not(None))
            ).one()
            assert "attachment" in inspect(row).unloaded, "the bytes are not read with the row"
            assert row.attachment == pdf
    finally:
        store.close()


def followup(key: str, attachment: bytes | None, name: str | None) -> FollowUp:
    """An owner's task recorded on 2027-01-14, with or without a file."""
    at = datetime(2027, 1, 14, 8, tzinfo=UTC)
    return FollowUp(
        key=key, rule=key.split(":")[0], step="send", subject_key="F-2026-042", concern=key,
        audience=Audience.OWNER, channel=Channel.CALENDAR, language="fr", subject="s", body="",
        due_at=at, expires_at=at, state=FollowUpState.PENDING, created_at=at, updated_at=at,
        attachment=attachment, attachment_name=name,
    )  # fmt: skip


def test_unpaid_never_goes_below_zero() -> None:
    payments = [Payment(date(2026, 1, 1), Decimal(50)), Payment(date(2026, 2, 1), Decimal(80))]
    assert unpaid_on(Decimal(100), payments, date(2025, 12, 31)) == Decimal(100)
    assert unpaid_on(Decimal(100), payments, date(2026, 1, 1)) == Decimal(50)
    assert unpaid_on(Decimal(100), payments, date(2026, 3, 1)) == Decimal(0)
