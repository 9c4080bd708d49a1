"""Lead routing on hand-made MQLs: first matching rule → team → round-robin by contact_id,
continuing across batches; recorded once; one mail per owner and batch, received by a real
SMTP server on loopback; a crash between routing and mailing is resumed without re-routing.

Teams (conftest.ROUTING_YAML): north = Anna, Bert, Cora (rule de_north: DE and postcode 1*);
south = Dora, Emil (de_rest: any other DE); france = Fleur (fr). No rule for IT.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa

from leadflow.routing import (
    NotificationError,
    SmtpSettings,
    next_member,
    route,
    route_leads,
    send_pending_notifications,
)
from leadflow.routing.assign import notification_message_id
from tests.leadflow.routing.conftest import add, mql, owners, rows
from tests.leadflow.segments.data import TEST_RELATIONS

AS_OF = dt.date(2026, 11, 27)

FIRST_BATCH = [
    mql("m01", "DE", "10115"),
    mql("m02", "DE", "80331"),
    mql("m03", "DE", "12345"),
    mql("m04", "FR", "75001"),
    mql("m05", "DE", "13000"),
    mql("m06", "IT", "00100"),  # no rule: not routed
    mql("m07", "DE", "10000", owner="Rita Bestand"),  # has an owner from the CRM
    mql("m08", "DE", "10000", is_mql=False, matrix_cell="C3"),  # not an MQL
    mql("m09", "DE", "20000"),  # postcode 2*: south
    mql("m10", "DE", "11111"),
]
# (contact, team, owner, rule) in batch order: by contact_id, each team taking turns.
FIRST_ASSIGNMENTS = [
    ("m01", "north", "Anna Nord", "de_north"),
    ("m02", "south", "Dora Süd", "de_rest"),
    ("m03", "north", "Bert Nord", "de_north"),
    ("m04", "france", "Fleur France", "fr"),
    ("m05", "north", "Cora Nord", "de_north"),
    ("m09", "south", "Emil Süd", "de_rest"),
    ("m10", "north", "Anna Nord", "de_north"),  # the turn wraps around
]
# The rotation continues where the first batch stopped: north after Anna, south after Emil.
SECOND_BATCH = [mql("m11", "DE", "19999"), mql("m12", "DE", "88888"), mql("m13", "DE", "15000")]
SECOND_ASSIGNMENTS = [
    ("m11", "north", "Bert Nord", "de_north"),
    ("m12", "south", "Dora Süd", "de_rest"),
    ("m13", "north", "Cora Nord", "de_north"),
]


def route_test_pool(engine, config, smtp=None, **options):
    return route(engine, config, AS_OF, relations=TEST_RELATIONS, smtp=smtp, **options)


def recorded(engine) -> list[tuple]:
    return rows(
        engine,
        "select contact_id, team_id, owner_name, rule_id from ops.lead_assignments "
        "order by batch_id, batch_position",
    )


def summary(result) -> list[tuple]:
    return [(a.contact_id, a.team_id, a.owner_name, a.rule_id) for a in result.assignments]


def test_first_matching_rule_and_round_robin_by_contact_id(pool, routing_config, smtp, sink):
    add(pool, *FIRST_BATCH)

    report = route_test_pool(pool, routing_config, smtp)

    assert summary(report.routing) == FIRST_ASSIGNMENTS
    assert recorded(pool) == FIRST_ASSIGNMENTS
    assert report.routing.unmatched == ["m06"]
    [(batch_id, routed, unmatched)] = rows(
        pool, "select batch_id, routed, unmatched from ops.routing_batches"
    )
    assert (routed, unmatched) == (7, 1) and report.routing.batch_id == batch_id
    assert rows(
        pool, "select team_id, last_owner_email, assigned from ops.routing_cursors order by team_id"
    ) == [
        ("france", "fleur@example.com", 1),
        ("north", "anna@example.com", 4),
        ("south", "emil@example.com", 2),
    ]
    # The contacts relation shows the new owners at once; the CRM's owner and the rest stay.
    found = owners(pool)
    assert found["m01"] == "Anna Nord" and found["m09"] == "Emil Süd"
    assert found["m07"] == "Rita Bestand"
    assert found["m06"] is None and found["m08"] is None
    # Every assignment is queued for the CRM push.
    outbox = rows(
        pool,
        "select entity, entity_id, payload ->> 'owner_email', payload ->> 'team_id', pushed_at "
        "from ops.crm_outbox order by outbox_id",
    )
    assert [(entity, contact) for entity, contact, *_ in outbox] == [
        ("owner_assignment", contact) for contact, *_ in FIRST_ASSIGNMENTS
    ]
    assert outbox[0][2:] == ("anna@example.com", "north", None)


def test_the_rotation_continues_across_batches(pool, routing_config, smtp, sink):
    add(pool, *FIRST_BATCH)
    first = route_test_pool(pool, routing_config, smtp)
    add(pool, *SECOND_BATCH)

    second = route_test_pool(pool, routing_config, smtp)

    assert summary(second.routing) == SECOND_ASSIGNMENTS
    assert second.routing.batch_id == first.routing.batch_id + 1
    assert second.routing.unmatched == ["m06"]  # still no rule for it, still reported
    assert recorded(pool) == FIRST_ASSIGNMENTS + SECOND_ASSIGNMENTS


def test_a_team_member_who_left_restarts_the_turn_at_the_first(routing_config):
    north = next(team for team in routing_config.routing.teams if team.id == "north")
    assert next_member(north, None).name == "Anna Nord"
    assert next_member(north, "BERT@example.com").name == "Cora Nord"
    assert next_member(north, "cora@example.com").name == "Anna Nord"
    assert next_member(north, "left@example.com").name == "Anna Nord"


def test_running_again_routes_nobody_twice_and_sends_nothing_new(pool, routing_config, smtp, sink):
    add(pool, *FIRST_BATCH)
    route_test_pool(pool, routing_config, smtp)
    mails = len(sink.received())

    again = route_test_pool(pool, routing_config, smtp)

    assert again.routing.assignments == [] and again.routing.batch_id is None
    assert again.notifications == []
    assert len(sink.received()) == mails == 6
    assert recorded(pool) == FIRST_ASSIGNMENTS
    assert rows(pool, "select count(*) from ops.routing_batches") == [(1,)]


def test_a_routed_contact_is_not_routed_again_even_if_the_marts_still_show_no_owner(
    pool, routing_config, smtp, sink
):
    add(pool, *FIRST_BATCH)
    route_test_pool(pool, routing_config, smtp)
    # A rebuild of the contacts relation from data without the routed owners.
    with pool.begin() as connection:
        connection.execute(
            sa.text("update public.test_facts set owner = null where contact_id = 'm01'")
        )

    again = route_test_pool(pool, routing_config, smtp)

    assert again.routing.assignments == []


def test_one_mail_per_owner_per_batch_with_their_leads(pool, routing_config, smtp, sink):
    add(pool, *FIRST_BATCH)

    report = route_test_pool(pool, routing_config, smtp)

    messages = {message["To"]: message for message in sink.messages()}
    assert sorted(messages) == [
        "anna@example.com",
        "bert@example.com",
        "cora@example.com",
        "dora@example.com",
        "emil@example.com",
        "fleur@example.com",
    ]
    assert len(sink.received()) == 6 and len(report.notifications) == 6
    anna = messages["anna@example.com"]
    batch = report.routing.batch_id
    assert anna["X-RcptTo"] == "anna@example.com"
    assert anna["Subject"] == f"2 new leads for you (routing batch {batch})"
    assert anna["From"] == "leadflow lead routing <info@steinhoff-hydraulik.example>"
    assert anna["Message-ID"] == notification_message_id(
        batch, "anna@example.com", "info@steinhoff-hydraulik.example"
    )
    body = anna.get_body(("html",)).get_content()
    # Her two leads, in batch order, with name, company, country, cell, scores and why.
    assert body.index("M01 Lead") < body.index("M10 Lead")
    for text in ("m01 GmbH", "<td>DE</td>", "<td>A1</td>", "<td>80.00</td>", "<td>75.00</td>"):
        assert text in body
    assert (
        "MQL in cell A1; persona production_manager; rule de_north (Germany, postcodes "
        "starting with 1.) → team Vertrieb Nord"
    ) in body
    assert "m03" not in body and "m02" not in body
    # A real plain-text alternative, not the HTML source.
    text = anna.get_body(("plain",)).get_content()
    assert "<td>" not in text
    assert "1. M01 Lead <m01@lead.example> (m01)\n   Company: m01 GmbH, DE\n" in text
    assert "   Cell A1, profile 80.00, activity 75.00\n" in text
    assert "2. M10 Lead <m10@lead.example> (m10)" in text
    fleur = messages["fleur@example.com"].get_body(("html",)).get_content()
    assert "M04 Lead" in fleur and "1 new marketing-qualified lead to you" in fleur
    assert rows(pool, "select count(*) from ops.routing_notifications where sent_at is null") == [
        (0,)
    ]


def test_lead_data_is_escaped_in_the_mail(pool, routing_config, smtp, sink):
    add(pool, mql("m01", "DE", "10115", first_name="<script>alert(1)</script>"))

    route_test_pool(pool, routing_config, smtp)

    [message] = sink.messages()
    body = message.get_body(("html",)).get_content()
    assert "<script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_a_crash_between_routing_and_mailing_resumes_with_the_missing_mails_once(
    pool, routing_config, smtp, sink
):
    add(pool, *FIRST_BATCH)
    # The routing transaction commits, then the process dies before any mail is sent.
    routed = route_leads(pool, routing_config, AS_OF, relations=TEST_RELATIONS)
    assert sink.received() == []
    assert rows(pool, "select count(*) from ops.routing_notifications where sent_at is null") == [
        (6,)
    ]

    resumed = route_test_pool(pool, routing_config, smtp)

    assert resumed.routing.assignments == []  # nobody routed again
    assert {n.batch_id for n in resumed.notifications} == {routed.batch_id}
    assert sorted(message["To"] for message in sink.messages()) == [
        f"{name}@example.com" for name in ("anna", "bert", "cora", "dora", "emil", "fleur")
    ]
    route_test_pool(pool, routing_config, smtp)
    assert len(sink.received()) == 6  # sent once


def test_an_unreachable_mail_server_keeps_notifications_pending_until_it_is_back(
    pool, routing_config, tmp_path
):
    add(pool, *FIRST_BATCH)
    from leadflow.messaging.smtp_sink import SmtpSink

    # A port where nothing listens: the sink's, just after it stopped.
    with SmtpSink(tmp_path / "unused", port=0) as stopped:
        port = stopped.port
    down = SmtpSettings("127.0.0.1", port)

    with pytest.raises(NotificationError) as failed:
        route_test_pool(pool, routing_config, down)

    message = str(failed.value)
    assert message.startswith("routing: routed 7 MQL(s) in batch")
    assert f"via SMTP 127.0.0.1:{port}" in message and "6 notification(s) pending" in message
    assert len(recorded(pool)) == 7  # the routing stands
    [(attempts, error)] = rows(
        pool,
        "select attempts, last_error from ops.routing_notifications "
        "where owner_email = 'anna@example.com'",
    )
    assert attempts == 1 and "refused" in error.lower()

    with SmtpSink(tmp_path / "mail", port=port) as back:
        sent = send_pending_notifications(pool, routing_config, down)
        assert len(sent) == 6 and len(back.received()) == 6


def test_dry_run_shows_the_assignments_and_writes_nothing(pool, routing_config, smtp, sink):
    add(pool, *FIRST_BATCH)

    planned = route_test_pool(pool, routing_config, smtp, dry_run=True)

    assert summary(planned.routing) == FIRST_ASSIGNMENTS and planned.routing.dry_run
    for table in ("lead_assignments", "routing_batches", "routing_cursors", "crm_outbox"):
        assert rows(pool, f"select count(*) from ops.{table}") == [(0,)]
    assert owners(pool)["m01"] is None and sink.received() == []
    # The real run decides the same.
    assert summary(route_test_pool(pool, routing_config, smtp).routing) == FIRST_ASSIGNMENTS


def test_concurrent_runs_route_each_lead_once(pool, routing_config):
    add(pool, *FIRST_BATCH)
    results, errors = [], []

    def run() -> None:
        try:
            results.append(route_leads(pool, routing_config, AS_OF, relations=TEST_RELATIONS))
        except Exception as error:
            errors.append(error)

    # Hold the routing lock so that both runs start before either can route.
    with pool.connect() as holder, holder.begin():
        holder.execute(sa.text("select pg_advisory_xact_lock(hashtext('leadflow.routing'))"))
        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        waiting = wait_for_lock_waiters(pool, 2)
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert waiting == 2
    assert sorted(len(result.assignments) for result in results) == [0, 7]
    assert recorded(pool) == FIRST_ASSIGNMENTS


def wait_for_lock_waiters(engine, expected: int, seconds: float = 20) -> int:
    """Sessions waiting for an advisory lock, once `expected` wait (or the time is up)."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        [(waiting,)] = rows(
            engine, "select count(*) from pg_locks where locktype = 'advisory' and not granted"
        )
        if waiting >= expected or time.monotonic() > deadline:
            return waiting
        time.sleep(0.05)


def test_the_marts_must_be_built_for_the_date(warehouse, routing_config):
    from leadflow.errors import LeadflowError

    with pytest.raises(LeadflowError, match=r"marts.dim_contacts does not exist.*leadflow build"):
        route(warehouse, routing_config, AS_OF)
    with warehouse.begin() as connection:
        connection.execute(sa.text("create schema marts"))
        connection.execute(sa.text("create table marts.dim_contacts (as_of date)"))
        connection.execute(sa.text("insert into marts.dim_contacts values ('2026-11-26')"))
    with pytest.raises(LeadflowError, match="built for 2026-11-26, not 2026-11-27"):
        route(warehouse, routing_config, AS_OF)


def test_a_contacts_relation_without_a_rule_field_is_a_clear_error(pool, routing_config):
    from leadflow.errors import LeadflowError

    add(pool, *FIRST_BATCH)
    with pool.begin() as connection:
        connection.execute(sa.text("alter table public.test_facts drop column postcode"))

    with pytest.raises(LeadflowError) as failed:
        route_leads(pool, routing_config, AS_OF, relations=TEST_RELATIONS)

    message = str(failed.value)
    assert message.startswith("lead routing cannot run: column contact.postcode does not exist")
    assert "public.test_facts must have a column per field" in message
    assert rows(pool, "select count(*) from ops.lead_assignments") == [(0,)]
