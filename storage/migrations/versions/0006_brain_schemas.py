"""What rollbot has seen: each version of a target healthy on a brain schema.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "brain_schemas",
        sa.Column("target", sa.String(128), primary_key=True),
        sa.Column("version", sa.String(160), primary_key=True),
        sa.Column("schema", sa.Integer, primary_key=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("brain_schemas")
