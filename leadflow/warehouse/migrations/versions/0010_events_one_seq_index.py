"""raw.events: one index on event_seq, not two

Migration 0001 gave raw.events a BRIN index on event_seq for the incremental readers; 0003
added a b-tree on the same column, because after VACUUM new rows fill the free space of old
pages and the BRIN ranges then match half of the table. Since then every reader of
`event_seq > watermark` uses the b-tree, and the BRIN index is only maintained: one index
less for every event the tracking service, the importers and the dispatcher write.

Revision ID: 0010_events_one_seq_index
Revises: 0009_outbox_due_order
"""

from alembic import op

revision = "0010_events_one_seq_index"
down_revision = "0009_outbox_due_order"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("drop index if exists raw.events_seq_brin")


def downgrade() -> None:
    op.execute("create index if not exists events_seq_brin on raw.events using brin (event_seq)")
