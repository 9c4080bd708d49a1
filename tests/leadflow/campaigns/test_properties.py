"""Properties of the engine over random event sequences and run times (hypothesis).

Two marketing campaigns share the contacts (so the frequency cap works across campaigns),
re-entry `always` (so journeys start again and again). Between runs, contacts download the
e-book (the trigger), click (human or machine), buy the HydroStat 3000 (the goal of one
campaign) or unsubscribe; time moves on by 6 to 60 hours and both campaigns run, twice at
the same moment. After every run:
- a journey never takes a step twice (the campaigns have no loops) and never gets two
  outbox rows for one send step;
- no contact has more than max_mails counted marketing mails in any window of per_days;
- after an unsubscribe nothing is requested and nothing stays pending for the contact;
- after the goal nothing more is requested, and nothing stays pending, in the converted
  journey;
- the second run at the same moment changed nothing.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from tests.leadflow.campaigns.conftest import (
    STATE_TABLES,
    add_mail_events,
    add_people,
    dump,
    person,
    rows,
    run,
    with_campaigns,
)
from tests.leadflow.segments.data import add_events, add_order

CONTACTS = ("a", "b", "f")  # f: tenant fr, Paris office hours
START = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
CAMPAIGNS = (
    {
        "id": "prop",
        "trigger": {"event": {"type": "download", "asset": "ebook"}},
        "steps": [
            {"id": "hello", "send": {"message": "hello"}},
            {"id": "pause", "wait": {"duration": "1d"}},
            {
                "id": "clicked",
                "branch": {
                    "on": "clicked",
                    "since_step": "hello",
                    "then": "offer",
                    "else": "reminder",
                },
            },
            {"id": "offer", "send": {"message": "offer"}, "next": "done"},
            {"id": "reminder", "send": {"message": "reminder"}},
            {"id": "done", "exit": {}},
        ],
        "goal": {"event": {"type": "purchase", "product": "HS3000"}},
        "re_entry": "always",
    },
    {
        "id": "news",
        "trigger": {"event": {"type": "download", "asset": "ebook"}},
        "steps": [
            {"id": "news", "send": {"message": "news"}},
            {"id": "later", "wait": {"duration": "12h"}},
            {"id": "more_news", "send": {"message": "more_news"}},
        ],
        "re_entry": "always",
    },
)


def _reset(engine) -> None:
    with engine.begin() as connection:
        tables = ", ".join(
            [*STATE_TABLES, "raw.events", "raw.orders", "raw.order_items", "ops.campaign_runs"]
        )
        connection.exec_driver_sql(f"truncate {tables} restart identity cascade")


class Journeys(RuleBasedStateMachine):
    engine = None
    config = None

    @initialize()
    def start(self):
        _reset(self.engine)
        add_people(self.engine, person("a"), person("b"), person("f", tenant="fr"))
        self.now = START
        self.unsubscribed: dict[str, dt.datetime] = {}
        self.purchases: list[tuple[str, dt.datetime]] = []

    def _soon(self, minutes: int) -> dt.datetime:
        return self.now + dt.timedelta(minutes=minutes)

    @rule(contact=st.sampled_from(CONTACTS), minutes=st.integers(1, 300))
    def download(self, contact, minutes):
        with self.engine.begin() as connection:
            add_events(
                connection,
                {
                    "contact_id": contact,
                    "event_type": "download",
                    "occurred_at": self._soon(minutes),
                    "asset_id": "ebook",
                },
            )

    @rule(contact=st.sampled_from(CONTACTS), machine=st.booleans(), minutes=st.integers(1, 300))
    def click(self, contact, machine, minutes):
        add_mail_events(
            self.engine,
            "prop",
            (contact, "email_click", "hello", self._soon(minutes), {"is_machine": machine}),
        )

    @rule(contact=st.sampled_from(CONTACTS), minutes=st.integers(1, 300))
    def purchase(self, contact, minutes):
        with self.engine.begin() as connection:
            add_order(connection, contact, self._soon(minutes), ["HS3000"])
        self.purchases.append((contact, self._soon(minutes)))

    @rule(contact=st.sampled_from(CONTACTS), minutes=st.integers(1, 300))
    def unsubscribe(self, contact, minutes):
        if contact in self.unsubscribed:
            return
        moment = self._soon(minutes)
        with self.engine.begin() as connection:
            add_events(
                connection,
                {"contact_id": contact, "event_type": "unsubscribe", "occurred_at": moment},
            )
        self.unsubscribed[contact] = moment

    @rule(hours=st.integers(6, 60))
    def tick(self, hours):
        self.now += dt.timedelta(hours=hours)
        # what the nightly build would show: consent withdrawn once the unsubscribe is seen
        seen = [c for c, moment in self.unsubscribed.items() if moment < self.now]
        if seen:
            with self.engine.begin() as connection:
                connection.execute(
                    sa.text(
                        "update public.test_facts set consent_status = 'objected' "
                        "where contact_id = any(:seen)"
                    ),
                    {"seen": seen},
                )
        for campaign in CAMPAIGNS:
            run(self.engine, self.config, campaign["id"], self.now)
        before = dump(self.engine)
        for campaign in CAMPAIGNS:
            run(self.engine, self.config, campaign["id"], self.now)
        assert dump(self.engine) == before, "a second run at the same moment changed something"

    @invariant()
    def no_step_twice(self):
        if not hasattr(self, "now"):
            return
        assert (
            rows(
                self.engine,
                "select enrolment_id, step_id from ops.campaign_step_history "
                "group by 1, 2 having count(*) > 1",
            )
            == []
        )
        assert (
            rows(
                self.engine,
                "select enrolment_id, step_id from ops.outbox group by 1, 2 having count(*) > 1",
            )
            == []
        )

    @invariant()
    def cap_never_exceeded(self):
        if not hasattr(self, "now"):
            return
        cap = self.config.company.defaults.frequency_cap
        width = dt.timedelta(days=cap.per_days)
        sends: dict[str, list[dt.datetime]] = {}
        for contact, scheduled_at in rows(
            self.engine,
            "select contact_id, scheduled_at from ops.outbox where kind = 'campaign_mail' "
            "and category = 'marketing' and status not in ('cancelled', 'failed', 'suppressed') "
            "order by contact_id, scheduled_at",
        ):
            sends.setdefault(contact, []).append(scheduled_at)
        for contact, times in sends.items():
            for first, last in zip(times, times[cap.max_mails :], strict=False):
                assert last - first >= width, f"{contact}: {times}"

    @invariant()
    def nothing_after_unsubscribe(self):
        if not hasattr(self, "now"):
            return
        for contact, moment in self.unsubscribed.items():
            if moment >= self.now:
                continue
            assert (
                rows(
                    self.engine,
                    "select outbox_id from ops.outbox where contact_id = :contact "
                    "and (requested_at >= :moment or status = 'pending')",
                    contact=contact,
                    moment=moment,
                )
                == []
            ), f"{contact} unsubscribed at {moment}"

    @invariant()
    def nothing_after_the_goal(self):
        if not hasattr(self, "now"):
            return
        for contact, moment in self.purchases:
            if moment >= self.now:
                continue
            assert (
                rows(
                    self.engine,
                    "select o.outbox_id from ops.outbox o join ops.campaign_enrolments e "
                    "using (enrolment_id) where e.campaign_id = 'prop' and e.status = 'converted' "
                    "and o.contact_id = :contact "
                    "and e.enrolled_at <= :moment and (o.requested_at > :moment "
                    "or o.status = 'pending')",
                    contact=contact,
                    moment=moment,
                )
                == []
            ), f"{contact} bought at {moment}"


def test_journey_properties(pool, base_config):
    Journeys.engine = pool
    Journeys.config = with_campaigns(base_config, *CAMPAIGNS)
    run_state_machine_as_test(
        Journeys,
        settings=settings(max_examples=15, stateful_step_count=8, deadline=None),
    )
