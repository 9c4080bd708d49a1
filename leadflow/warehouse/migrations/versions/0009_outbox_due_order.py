"""outbox: the pending index in the order the dispatcher claims rows

The dispatcher claims due rows `order by scheduled_at, outbox_id ... for update skip locked
limit n`. The pending index of migration 0005 was on (status, scheduled_at): it could not give
that order, so every claim read and sorted *all* pending rows to lock the first n (31 ms per
claim of 200 out of 17,000 pending rows, measured with bench/dispatch.py). An index on
(scheduled_at, outbox_id) of the pending rows gives the order itself: the claim reads the
rows it locks and stops. It replaces the old one (its status column was the same value in
every entry), so a send step writing outbox rows maintains no more indexes than before.

Revision ID: 0009_outbox_due_order
Revises: 0008_outbox_message_id
"""

from alembic import op

revision = "0009_outbox_due_order"
down_revision = "0008_outbox_message_id"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "drop index ops.outbox_pending_idx;"
        "create index outbox_pending_idx on ops.outbox (scheduled_at, outbox_id)"
        " where status = 'pending';"
    )


def downgrade() -> None:
    op.execute(
        "drop index ops.outbox_pending_idx;"
        "create index outbox_pending_idx on ops.outbox (status, scheduled_at)"
        " where status = 'pending';"
    )
