"""the mailbox as a source: each folder's sync state and the messages read

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05

`mail_folders`: per mailbox and folder, the UIDVALIDITY and the highest UID
read (and the CONDSTORE mod-sequence), as mbsync keeps them. `mail_messages`:
the header facts of each message read (never a body), recorded once per
mailbox whatever folder or UIDVALIDITY it shows up in again. `followups`
gets an index on `message_id`: replies and bounces are matched by it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAIL_KINDS = "'reply', 'sent', 'bounce', 'automatic', 'other'"


def upgrade() -> None:
    op.create_table(
        "mail_folders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=40), server_default="", nullable=False),
        sa.Column("account", sa.String(length=400), nullable=False),
        sa.Column("folder", sa.String(length=400), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("highest_modseq", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_folders")),
        sa.UniqueConstraint("owner", "folder", name=op.f("uq_mail_folders_owner")),
    )
    op.create_table(
        "mail_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=40), server_default="", nullable=False),
        sa.Column("folder", sa.String(length=400), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=True),
        sa.Column("date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sender", sa.Text(), nullable=True),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("answers", sa.Text(), nullable=False),
        sa.Column("automatic", sa.Boolean(), nullable=False),
        sa.Column("report", sa.Boolean(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("followup_key", sa.String(length=400), nullable=True),
        sa.Column("delivery_status", sa.String(length=16), nullable=True),
        sa.Column("diagnostic", sa.Text(), nullable=True),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"kind IN ({MAIL_KINDS})", name=op.f("ck_mail_messages_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_messages")),
        sa.UniqueConstraint(
            "owner", "folder", "uidvalidity", "uid", name=op.f("uq_mail_messages_folder_uid")
        ),
        sa.UniqueConstraint("owner", "fingerprint", name=op.f("uq_mail_messages_fingerprint")),
    )
    with op.batch_alter_table("mail_messages") as batch_op:
        batch_op.create_index(op.f("ix_mail_messages_message_id"), ["message_id"])
        batch_op.create_index(op.f("ix_mail_messages_followup_key"), ["followup_key"])
        batch_op.create_index(op.f("ix_mail_messages_created_at"), ["created_at"])
    with op.batch_alter_table("followups") as batch_op:
        batch_op.create_index(op.f("ix_followups_message_id"), ["message_id"])


def downgrade() -> None:
    with op.batch_alter_table("followups") as batch_op:
        batch_op.drop_index(op.f("ix_followups_message_id"))
    op.drop_table("mail_messages")
    op.drop_table("mail_folders")
