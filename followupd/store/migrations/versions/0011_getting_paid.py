"""getting paid: clients' kind and ladder, part payments, promises, contract rates

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05

`clients.kind` (business | consumer: a consumer never sees late-payment
penalties), `clients.profile` (the invoice ladder it follows) and
`clients.address` (for a formal letter); `missions.late_payment_rate` (a
contract's own rate); `invoices.payments` (part payments, a JSON list, empty
for every invoice so far) and `invoices.promised` (a promise to pay by a date);
`followups.attachment` and `followups.attachment_name` (a file for the owner on
the calendar item: the formal notice to pay as a PDF).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


KINDS = "kind IN ('business', 'consumer')"


def upgrade() -> None:
    # plain ALTER TABLE, as 0005: a batch copy of `clients` or `missions` would trip over
    # the foreign keys that point to them; SQLite takes a CHECK only within ADD COLUMN
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE clients ADD COLUMN kind VARCHAR(8) DEFAULT 'business' NOT NULL "
            f"CONSTRAINT ck_clients_kind CHECK ({KINDS})"
        )
    else:
        op.add_column(
            "clients",
            sa.Column("kind", sa.String(length=8), nullable=False, server_default="business"),
        )
        op.create_check_constraint(op.f("ck_clients_kind"), "clients", KINDS)
    op.add_column("clients", sa.Column("profile", sa.String(length=40), nullable=True))
    op.add_column("clients", sa.Column("address", sa.Text(), nullable=True))
    op.add_column(
        "missions",
        sa.Column("late_payment_rate", sa.Numeric(precision=6, scale=3), nullable=True),
    )
    op.add_column(
        "invoices",
        sa.Column("payments", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
    )
    op.add_column("invoices", sa.Column("promised", sa.Date(), nullable=True))
    op.add_column("followups", sa.Column("attachment", sa.LargeBinary(), nullable=True))
    op.add_column("followups", sa.Column("attachment_name", sa.String(length=200), nullable=True))


def downgrade() -> None:
    op.drop_column("followups", "attachment_name")
    op.drop_column("followups", "attachment")
    op.drop_column("invoices", "promised")
    op.drop_column("invoices", "payments")
    op.drop_column("missions", "late_payment_rate")
    op.drop_column("clients", "address")
    op.drop_column("clients", "profile")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f("ck_clients_kind"), "clients", type_="check")
    op.drop_column("clients", "kind")
