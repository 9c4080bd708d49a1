"""Segment membership as spans: one row per stretch of membership, not per member and night

Until now every nightly run wrote every segment's full membership for its date into
`ops.segment_members` and kept 62 dates: at 1,000,000 contacts the example segments hold
about 1.9 million members, so the table grew to some 120 million rows, and each night
inserted 1.9 million of them although only a few thousand memberships changed.

`ops.segment_member_spans` keeps, per segment and contact, the stretches of membership: from
the first materialised date the contact was a member (`valid_from`) to the first materialised
date of that segment it no longer was (`valid_to`; null while it still is). A nightly run
writes only what changed. `ops.segment_members` becomes a view with the same columns as the
table it replaces: the members of every (date, segment) of `ops.segment_materializations`,
so every reader (the mart, segment-entry triggers, tests) reads it as before.

The upgrade turns the stored dates into spans (consecutive materialised dates of a segment
with the contact a member form one span); the downgrade expands the spans back into dates.

Revision ID: 0011_segment_member_spans
Revises: 0010_events_one_seq_index
"""

from alembic import op

revision = "0011_segment_member_spans"
down_revision = "0010_events_one_seq_index"
branch_labels = None
depends_on = None

SPANS = """
create table ops.segment_member_spans (
    segment     text not null,
    contact_id  text not null,
    -- the first materialised date of the segment the contact was a member
    valid_from  date not null,
    -- the first materialised date after that the contact was not; null: a member at the latest
    valid_to    date check (valid_to > valid_from),
    primary key (segment, contact_id, valid_from)
);

-- At most one open span per member; the nightly run compares the new members with these.
create unique index segment_member_spans_open
    on ops.segment_member_spans (segment, contact_id) where valid_to is null;
"""

# Islands of consecutive materialised dates: a member's dates numbered among the segment's
# dates minus numbered among its own dates is constant exactly while no date is skipped.
DATES_TO_SPANS = """
with

dates as (
    select
        segment,
        as_of,
        row_number() over (partition by segment order by as_of) as date_number,
        lead(as_of) over (partition by segment order by as_of) as next_date
    from ops.segment_materializations
),

numbered as (
    select
        members.segment,
        members.contact_id,
        members.as_of,
        dates.next_date,
        dates.date_number - row_number() over (
            partition by members.segment, members.contact_id order by members.as_of
        ) as island
    from ops.segment_members_by_date as members
    inner join dates
        on members.segment = dates.segment and members.as_of = dates.as_of
)

insert into ops.segment_member_spans (segment, contact_id, valid_from, valid_to)
select
    segment,
    contact_id,
    min(as_of),
    (array_agg(next_date order by as_of desc))[1]
from numbered
group by segment, contact_id, island
"""

MEMBERS_VIEW = """
create view ops.segment_members as
select
    materialized.as_of,
    span.segment,
    span.contact_id
from ops.segment_materializations as materialized
inner join ops.segment_member_spans as span
    on
        span.segment = materialized.segment
        and span.valid_from <= materialized.as_of
        and (span.valid_to is null or span.valid_to > materialized.as_of)
"""

MEMBERS_TABLE = """
create table ops.segment_members (
    as_of           date not null,
    segment         text not null,
    contact_id      text not null,
    primary key (as_of, segment, contact_id)
)
"""


def upgrade() -> None:
    op.execute(SPANS)
    op.execute("alter table ops.segment_members rename to segment_members_by_date")
    op.execute(DATES_TO_SPANS)
    op.execute("drop table ops.segment_members_by_date")
    op.execute(MEMBERS_VIEW)


def downgrade() -> None:
    op.execute("alter view ops.segment_members rename to segment_members_by_span")
    op.execute(MEMBERS_TABLE)
    op.execute(
        "insert into ops.segment_members (as_of, segment, contact_id) "
        "select as_of, segment, contact_id from ops.segment_members_by_span"
    )
    op.execute("drop view ops.segment_members_by_span")
    op.execute("drop table ops.segment_member_spans")
