"""followups remember their calendar object: where it is and whether it is still open

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("followups") as batch_op:
        batch_op.add_column(sa.Column("calendar_href", sa.String(length=1000), nullable=True))
        batch_op.add_column(sa.Column("calendar_state", sa.String(length=12), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("followups") as batch_op:
        batch_op.drop_column("calendar_state")
        batch_op.drop_column("calendar_href")
