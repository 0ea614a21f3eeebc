"""formal notices kept as their data, their PDF made when asked for

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

`followups.letter`: the formal notice a follow-up carries, as JSON
(followupd.domain.formal_notice_record), instead of its PDF in
`followups.attachment`: evaluation no longer draws each letter, which was
most of a first pass's time. The rows recorded before keep their bytes in
`attachment`, and are served from there.

Downgrade drops the column: a follow-up recorded since then keeps its file's
name but no bytes, and the older followupd, which serves only the rows that
have bytes, shows it without its file.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("followups", sa.Column("letter", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("followups", "letter")
