"""the invoices with a promise to pay, indexed

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

`invoices.promised`, indexed where set: each evaluation pass looks up the
unpaid invoices with a promise (three rules ask), and without an index each
lookup read every invoice of the store. Partial: few invoices carry a promise,
and the planners use an index on `promised IS NOT NULL` only when it holds
no others.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROMISED = sa.text("promised IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        op.f("ix_invoices_promised"),
        "invoices",
        ["promised"],
        sqlite_where=PROMISED,
        postgresql_where=PROMISED,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_invoices_promised"), table_name="invoices")
