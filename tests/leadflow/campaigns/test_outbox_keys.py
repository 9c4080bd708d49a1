"""The outbox's keys after migration 0008: a message id is unique where there is one."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

INSERT = sa.text(
    "insert into ops.outbox (kind, campaign_id, step_id, enrolment_id, step_seq, contact_id,"
    " message, category, requested_at, scheduled_at, message_id)"
    " values ('campaign_mail', 'c', 's', :enrolment_id, 0, 'x', 'm', 'marketing',"
    " '2026-01-01', '2026-01-01', :message_id)"
)


def test_any_number_of_mails_without_a_message_id(warehouse: Engine) -> None:
    with warehouse.begin() as connection:
        for enrolment_id in (1, 2, 3):
            connection.execute(INSERT, {"enrolment_id": enrolment_id, "message_id": None})
        unset = connection.execute(
            sa.text("select count(*) from ops.outbox where message_id is null")
        ).scalar_one()
    assert unset == 3


def test_a_message_id_is_never_shared(warehouse: Engine) -> None:
    with warehouse.connect() as connection, connection.begin():
        connection.execute(INSERT, {"enrolment_id": 1, "message_id": "<a@leadflow>"})
        with pytest.raises(sa.exc.IntegrityError, match="outbox_message_id_key"):
            connection.execute(INSERT, {"enrolment_id": 2, "message_id": "<a@leadflow>"})


def test_lookups_by_message_id_can_use_the_index(warehouse: Engine) -> None:
    # The bounce handler finds mails by their ids (`message_id = any(...)`, `in (...)`):
    # the partial index must serve that predicate, not only `... and message_id is not null`.
    with warehouse.begin() as connection:
        connection.exec_driver_sql("set local enable_seqscan = off")
        plan = "\n".join(
            connection.exec_driver_sql(
                "explain select * from ops.outbox"
                " where message_id = any(array['<a@leadflow>', '<b@leadflow>'])"
            ).scalars()
        )
    assert "outbox_message_id_key" in plan
