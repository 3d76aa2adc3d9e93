"""The ticket outbox remembers a create that was sent, and who holds an attempt.

`create_sent_at`: set just before a create is sent, so that a later attempt knows an issue may
exist although no answer came back (and searches for it by the run's label, after a delay for
the search index, instead of creating a second one). `leased_until`: the lease of the worker
attempting the ticket now, apart from the backoff in `next_attempt_at`, so that
`rollbot tickets retry` can skip backoff yet never attempt a ticket another worker holds.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as tickets:
        tickets.add_column(sa.Column("create_sent_at", sa.DateTime(timezone=True), nullable=True))
        tickets.add_column(sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tickets") as tickets:
        tickets.drop_column("leased_until")
        tickets.drop_column("create_sent_at")
