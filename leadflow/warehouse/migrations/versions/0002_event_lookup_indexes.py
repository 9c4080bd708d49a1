"""indexes for the filter compiler's per-contact lookups (events, installed base)

Segments, audiences and triggers compile to correlated EXISTS / count subqueries keyed on the
contact (leadflow/segments/compiler.py). These indexes make each probe an index range scan:
- raw.events (contact_id, event_type, occurred_at): "human events of a type since X".
- raw.installed_base (account_id) and (contact_id): "installed at the contact's account".
raw.orders (contact_id, ordered_at) exists since 0001, and raw.order_items' primary key
(order_id, line_no) already serves lookups by order_id, so neither gets another index.

Revision ID: 0002_event_lookup_indexes
Revises: 0001
"""

from alembic import op

revision = "0002_event_lookup_indexes"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEXES = {
    "events_contact_type_time_idx": "raw.events (contact_id, event_type, occurred_at)",
    "installed_base_account_idx": "raw.installed_base (account_id)",
    "installed_base_contact_idx": "raw.installed_base (contact_id)",
}


def upgrade() -> None:
    for name, target in INDEXES.items():
        op.execute(f"create index if not exists {name} on {target}")


def downgrade() -> None:
    for name in INDEXES:
        op.execute(f"drop index if exists raw.{name}")
