"""the unpaid invoices by due and issue date, the missions by end and pause

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

Each evaluation pass looks for the unpaid invoices falling due, or issued,
in a span (invoice_due, formal_notice, escalate_by_phone, limitation_alert),
and for the missions paused until, or ending, in one: without an index each
lookup read every invoice or mission of the store. The missions' indexes are
partial (few are paused; and SQLite, without statistics, would read an index
of every end for `end IS NULL OR end >= ?`). The invoices' are partial on
PostgreSQL only, holding the unpaid invoices (every lookup asks for those):
SQLite would read such an index in place of the table wherever a query asks
for unpaid invoices, in the index's order.
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
ENDED = sa.text('"end" IS NOT NULL')


def upgrade() -> None:
    for column in ("due", "issued"):
        op.create_index(
            op.f(f"ix_invoices_{column}"), "invoices", [column], postgresql_where=UNPAID
        )
    for column, where in (("paused_until", PAUSED), ("end", ENDED)):
        op.create_index(
            op.f(f"ix_missions_{column}"),
            "missions",
            [column],
            sqlite_where=where,
            postgresql_where=where,
        )


def downgrade() -> None:
    for column in ("end", "paused_until"):
        op.drop_index(op.f(f"ix_missions_{column}"), table_name="missions")
    for column in ("issued", "due"):
        op.drop_index(op.f(f"ix_invoices_{column}"), table_name="invoices")
