"""the unpaid invoices by due and issue date, missions by end and pause, clients by kind

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

Each evaluation pass looks for the unpaid invoices falling due, or issued,
in a span (invoice_due, formal_notice, escalate_by_phone, limitation_alert),
and for the missions paused until, or ending, in one: without an index each
lookup read every invoice or mission of the store. The invoices' indexes hold
the unpaid ones only (most are paid, and every lookup asks for unpaid ones),
the pause's the paused missions only (few are). limitation_alert also looks
for the invoices of one kind of client: few, in most stores.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNPAID = sa.text("paid IS NULL")
PAUSED = sa.text("paused_until IS NOT NULL")


def upgrade() -> None:
    for column in ("due", "issued"):
        op.create_index(
            op.f(f"ix_invoices_{column}"),
            "invoices",
            [column],
            sqlite_where=UNPAID,
            postgresql_where=UNPAID,
        )
    op.create_index(
        op.f("ix_missions_paused_until"),
        "missions",
        ["paused_until"],
        sqlite_where=PAUSED,
        postgresql_where=PAUSED,
    )
    op.create_index(op.f("ix_missions_end"), "missions", ["end"])
    op.create_index(op.f("ix_clients_kind"), "clients", ["kind"])


def downgrade() -> None:
    op.drop_index(op.f("ix_clients_kind"), table_name="clients")
    op.drop_index(op.f("ix_missions_end"), table_name="missions")
    op.drop_index(op.f("ix_missions_paused_until"), table_name="missions")
    for column in ("issued", "due"):
        op.drop_index(op.f(f"ix_invoices_{column}"), table_name="invoices")
