"""ops.activity_event_points: a cheap test before the URL path is cut out

An activity rule with a path pattern (`/produkte/*`) compares the event's URL path, the URL
without `scheme://host`, which the view cuts out with a regular expression: for every web
visit and every such rule, 3.9 million times at 1,000,000 contacts. The path is the end of
the URL, or `/` when nothing is left, so a path matching the pattern implies that the URL
matches `%` + pattern, or that `/` does. The view now tests that first and runs the regular
expression only for the URLs that pass. The rows are the same (checked on 20 million
events); a full rebuild of the activity state reads them 1.3 s faster (9.8 s → 8.5 s).

Only the rule condition changes: the view is 0003's with that one expression replaced.

Revision ID: 0012_activity_url_prefilter
Revises: 0011_segment_member_spans
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0012_activity_url_prefilter"
down_revision = "0011_segment_member_spans"
branch_labels = None
depends_on = None

PATH_TEST = """\
            and (case when rule.url_is_path then event.url_path else event.url end)
            like rule.url_like"""

# `'/' like rule.url_like` is the same for every event: PostgreSQL evaluates it per rule.
PATH_TEST_WITH_PREFILTER = """\
            and (
                case
                    when rule.url_is_path
                        then (event.url like '%' || rule.url_like or '/' like rule.url_like)
                        and event.url_path like rule.url_like
                    else event.url like rule.url_like
                end
            )"""


def _view_of_0003() -> str:
    """The `create view ops.activity_event_points` statement of migration 0003."""
    path = Path(__file__).with_name("0003_scoring.py")
    spec = importlib.util.spec_from_file_location("leadflow_migration_0003", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    statement = module.ACTIVITY[module.ACTIVITY.index("create view ops.activity_event_points") :]
    assert PATH_TEST in statement, "0003's view no longer has the path test this replaces"
    return statement.replace("create view", "create or replace view", 1)


def upgrade() -> None:
    op.execute(_view_of_0003().replace(PATH_TEST, PATH_TEST_WITH_PREFILTER))


def downgrade() -> None:
    op.execute(_view_of_0003())
