"""Eligibility at send time, decided in the claiming transaction: consent (SPEC §2.1), the
suppression list and the frequency cap (re-deferral, never a drop)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadflow.messaging.dispatch import claim_batch, dispatch
from leadflow.messaging.eligibility import load_contacts, marketing_consent
from tests.leadflow.messaging.dispatch_data import (
    NOW,
    RELATIONS,
    add_contacts,
    add_outbox,
    compose,
    example_config,
    outbox,
    scripted_smtp,
    suppress,
    unsubscribe_url_for,
)

CONFIG = example_config()
DAY = dt.timedelta(days=1)


def claim(engine, now=NOW, limit=100):
    return claim_batch(
        engine, CONFIG, now, limit, "w1", dt.timedelta(minutes=5), relations=RELATIONS
    )


def test_consent_per_spec_with_the_existing_customer_exemption(pool):
    # hq allows the exemption, it does not.
    add_contacts(
        pool,
        [
            {"contact_id": "confirmed"},
            {"contact_id": "pending_lead", "consent_status": "pending"},
            {
                "contact_id": "none_customer",
                "consent_status": "none",
                "customer_status": "new_customer",
            },
            {
                "contact_id": "objected_customer",
                "consent_status": "objected",
                "customer_status": "existing_customer",
            },
            {
                "contact_id": "it_customer",
                "consent_status": "none",
                "customer_status": "existing_customer",
                "tenant_code": "it",
            },
            {"contact_id": "it_confirmed", "tenant_code": "it"},
        ],
    )
    add_outbox(
        pool,
        [
            {"contact_id": "confirmed"},
            {"contact_id": "pending_lead"},
            {"contact_id": "none_customer"},
            {"contact_id": "objected_customer"},
            {"contact_id": "it_customer", "tenant_code": "it"},
            {"contact_id": "it_confirmed", "tenant_code": "it"},
            # A service mail needs no marketing consent.
            {"contact_id": "pending_lead", "category": "service", "step_id": "service"},
            # An erased contact (gone from raw.contacts) gets nothing.
            {"contact_id": "erased"},
        ],
    )
    result = claim(pool)
    assert sorted((m.row["contact_id"], m.row["category"]) for m in result.messages) == [
        ("confirmed", "marketing"),
        ("it_confirmed", "marketing"),
        ("none_customer", "marketing"),
        ("pending_lead", "service"),
    ]
    assert outbox(pool) == [
        (1, "claimed", None),
        (2, "suppressed", "consent_pending"),
        (3, "claimed", None),
        (4, "suppressed", "consent_objected"),
        (5, "suppressed", "consent_none"),
        (6, "claimed", None),
        (7, "claimed", None),
        (8, "suppressed", "no_contact"),
    ]
    assert result.suppressed == {
        "consent_pending": 1,
        "consent_objected": 1,
        "consent_none": 1,
        "no_contact": 1,
    }


def test_the_address_at_send_time_and_the_consent_in_raw_contacts_count(pool):
    add_contacts(pool, [{"contact_id": "anna"}, {"contact_id": "bert"}])
    add_outbox(pool, [{"contact_id": "anna"}, {"contact_id": "bert"}])
    with pool.begin() as connection:
        connection.exec_driver_sql(
            "update raw.contacts set email = ' Anna.New@Example.com ' where contact_id = 'anna'"
        )
        # Objected since the nightly build: the mart still says confirmed.
        connection.exec_driver_sql(
            "update raw.contacts set consent_status = 'objected' where contact_id = 'bert'"
        )
    result = claim(pool)
    assert [m.recipient for m in result.messages] == ["Anna.New@Example.com"]
    assert outbox(pool, "status, recipient_email, status_reason") == [
        ("claimed", "Anna.New@Example.com", None),
        ("suppressed", None, "consent_objected"),
    ]


def test_the_suppression_list_by_normalised_address_and_scope(pool):
    add_contacts(
        pool,
        [
            {"contact_id": "anna"},
            {"contact_id": "bert", "email": "Bert@Example.com"},
            {"contact_id": "cora", "tenant_code": "fr"},
            {"contact_id": "dora", "tenant_code": "it"},
        ],
    )
    suppress(pool, "anna@example.com", "hard_bounce")
    suppress(pool, "bert@example.com", "unsubscribe")
    suppress(pool, "cora@example.com", "complaint", scope="fr")
    suppress(pool, "dora@example.com", "unsubscribe", scope="fr")  # another tenant's list
    suppress(pool, "rep@example.com", "erased")
    add_outbox(
        pool,
        [
            {"contact_id": "anna", "category": "service"},  # service mail: suppressed too
            {"contact_id": "bert"},
            {"contact_id": "cora", "tenant_code": "fr"},
            {"contact_id": "dora", "tenant_code": "it"},
            {
                "contact_id": "dora",
                "kind": "owner_notification",
                "category": "service",
                "recipient_email": "REP@example.com",
            },
        ],
    )
    claim(pool)
    assert outbox(pool) == [
        (1, "suppressed", "suppression_hard_bounce"),
        (2, "suppressed", "suppression_unsubscribe"),
        (3, "suppressed", "suppression_complaint"),
        (4, "claimed", None),
        (5, "suppressed", "suppression_erased"),
    ]


def test_the_frequency_cap_re_defers_instead_of_dropping(pool):
    # Default cap: 2 marketing mails in 7 days. hq sends Mon–Fri 08:00–18:00 Berlin (UTC+1).
    add_contacts(pool, [{"contact_id": "anna"}, {"contact_id": "bert"}, {"contact_id": "cora"}])
    add_outbox(
        pool,
        [
            # anna: two sent on Thursday 19th 09:00 and Monday 23rd 09:00 UTC.
            {
                "contact_id": "anna",
                "status": "sent",
                "sent_at": NOW - 6 * DAY - dt.timedelta(hours=1),
                "scheduled_at": NOW - 6 * DAY - dt.timedelta(hours=1),
            },
            {
                "contact_id": "anna",
                "status": "sent",
                "sent_at": NOW - 2 * DAY - dt.timedelta(hours=1),
                "scheduled_at": NOW - 2 * DAY - dt.timedelta(hours=1),
            },
            {"contact_id": "anna"},  # 3: capped
            # bert: one sent, two due now: the first goes, the second is capped.
            {
                "contact_id": "bert",
                "status": "sent",
                "sent_at": NOW - DAY,
                "scheduled_at": NOW - DAY,
            },
            {"contact_id": "bert", "step_id": "a"},  # 5
            {"contact_id": "bert", "step_id": "b"},  # 6
            # cora: two sent 8 days ago are outside the window: goes.
            {"contact_id": "cora", "status": "sent", "sent_at": NOW - 8 * DAY},
            {"contact_id": "cora", "status": "sent", "sent_at": NOW - 8 * DAY},
            {"contact_id": "cora"},  # 9
            # A service mail ignores the cap.
            {"contact_id": "anna", "category": "service", "step_id": "svc"},  # 10
        ],
    )
    result = claim(pool)
    assert sorted(m.row["outbox_id"] for m in result.messages) == [5, 9, 10]
    assert result.deferred == 2
    rows = {
        row[0]: row[1:] for row in outbox(pool, "outbox_id, status, scheduled_at, deferred_reason")
    }
    # anna: free again when the mail of Thursday 19th 09:00 UTC leaves the 7-day window:
    # Thursday 26th 09:00 UTC = 10:00 Berlin, inside the window.
    assert rows[3] == ("pending", NOW + DAY - dt.timedelta(hours=1), "frequency_cap")
    # bert: sent Tuesday 24th 10:00 and now (Wednesday 25th 10:00): free Tuesday 1st
    # December 10:00 UTC.
    assert rows[6] == ("pending", NOW + 6 * DAY, "frequency_cap")
    assert rows[5][0] == rows[9][0] == rows[10][0] == "claimed"
    # Deferred rows are not due again before their new time.
    assert claim(pool, now=NOW + dt.timedelta(hours=1)).taken == 0


def test_consent_rule_alone():
    hq, it = CONFIG.tenant("hq"), CONFIG.tenant("it")
    customer = {"consent_status": "none", "customer_status": "existing_customer"}
    assert marketing_consent(customer, hq) and not marketing_consent(customer, it)
    assert not marketing_consent({**customer, "consent_status": "unsubscribed"}, hq)
    assert not marketing_consent({"consent_status": "none", "customer_status": "lead"}, hq)
    assert marketing_consent({"consent_status": "confirmed", "customer_status": "lead"}, it)
    assert not marketing_consent(None, hq)


CONTACT_STATES = st.fixed_dictionaries(
    {
        "consent_status": st.sampled_from(["none", "pending", "confirmed", "objected"]),
        "customer_status": st.sampled_from(["lead", "new_customer", "existing_customer"]),
        "tenant_code": st.sampled_from(["hq", "it"]),
        "suppressed": st.sampled_from([None, "unsubscribe", "hard_bounce", "complaint", "erased"]),
        "category": st.sampled_from(["marketing", "service"]),
    }
)


def expected_to_receive(state: dict) -> bool:
    """The rule, written out independently of the implementation."""
    if state["suppressed"]:
        return False
    if state["category"] == "service":
        return True
    if state["consent_status"] == "confirmed":
        return True
    exemption = state["tenant_code"] == "hq"
    return (
        exemption
        and state["consent_status"] in ("none", "pending")
        and state["customer_status"] != "lead"
    )


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(states=st.lists(CONTACT_STATES, min_size=1, max_size=12))
def test_unsubscribed_unconsented_and_suppressed_contacts_receive_nothing(pool, states):
    with pool.begin() as connection:
        connection.exec_driver_sql(
            "truncate ops.outbox, ops.suppressions, ops.links, raw.contacts, public.test_facts"
        )
    contacts = []
    for number, state in enumerate(states):
        contact = {key: state[key] for key in ("consent_status", "customer_status", "tenant_code")}
        contacts.append({"contact_id": f"p{number}", **contact})
        if state["suppressed"]:
            scope = "all" if number % 2 else state["tenant_code"]
            suppress(pool, f"P{number}@example.com ", state["suppressed"], scope=scope)
    add_contacts(pool, contacts)
    add_outbox(
        pool,
        [
            {"contact_id": f"p{n}", "tenant_code": s["tenant_code"], "category": s["category"]}
            for n, s in enumerate(states)
        ],
    )
    with scripted_smtp() as (url, server):
        dispatch(
            pool,
            CONFIG,
            NOW,
            compose=compose,
            smtp_url=url,
            concurrency=1,
            rate_per_minute=None,
            batch_size=5,
            unsubscribe_url=unsubscribe_url_for(CONFIG),
            relations=RELATIONS,
        )
    received = sorted(envelope[1][0] for envelope in server.envelopes)
    expected = sorted(f"p{n}@example.com" for n, s in enumerate(states) if expected_to_receive(s))
    assert received == expected
    # Every row ends sent or suppressed: none is left over, none deferred (no cap reached).
    assert [status for _id, status, _reason in outbox(pool)] == [
        "sent" if expected_to_receive(state) else "suppressed" for state in states
    ]


def test_a_tenant_without_exemption_in_a_changed_configuration(pool):
    tenants = [
        tenant.model_copy(
            update={
                "consent": tenant.consent.model_copy(update={"existing_customer_exemption": False})
            }
        )
        if tenant.code == "hq"
        else tenant
        for tenant in CONFIG.tenants
    ]
    strict = dataclasses.replace(CONFIG, tenants=tenants)
    add_contacts(
        pool, [{"contact_id": "c", "consent_status": "none", "customer_status": "new_customer"}]
    )
    add_outbox(pool, [{"contact_id": "c"}])
    result = claim_batch(pool, strict, NOW, 10, "w", dt.timedelta(minutes=5), relations=RELATIONS)
    assert (result.taken, result.messages, result.suppressed) == (1, [], {"consent_none": 1})


def test_contacts_are_the_raw_rows_overlaid_on_the_mart(pool):
    add_contacts(pool, [{"contact_id": "anna"}, {"contact_id": "erased"}])
    with pool.begin() as connection:
        connection.exec_driver_sql("delete from raw.contacts where contact_id = 'erased'")
        connection.exec_driver_sql(
            "update raw.contacts set first_name = 'Anne' where contact_id = 'anna'"
        )
        # Imported since the last nightly build: not in the mart yet.
        connection.exec_driver_sql(
            "insert into raw.contacts (contact_id, email, consent_status, first_name, language) "
            "values ('new', 'new@example.com', 'confirmed', 'Nina', 'fr')"
        )
    with pool.connect() as connection:
        contacts = load_contacts(connection, ["anna", "erased", "new", "unknown"], RELATIONS)
    assert sorted(contacts) == ["anna", "new"]
    # The raw field wins over the mart's copy; the mart's own fields are there.
    assert contacts["anna"]["first_name"] == "Anne"
    assert contacts["anna"]["customer_status"] == "lead"
    assert contacts["anna"]["tenant_code"] == "hq"
    assert contacts["new"]["first_name"] == "Nina"
    assert "customer_status" not in contacts["new"]
