"""The demo generator against a real PostgreSQL: determinism, consistency, the scenario's
segments, the fair-lead export, and that a run replaces (never appends, never half-writes)."""

from __future__ import annotations

import csv
import datetime as dt
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from leadflow.demo import generator
from leadflow.demo.fair_export import HEADER
from leadflow.demo.generator import GeneratorSettings, generate
from leadflow.demo.vocabulary import COUNTRIES, LANGUAGE_OF_COUNTRY, MACHINE_AGENTS
from leadflow.errors import LeadflowError
from leadflow.warehouse.migrate import upgrade

AS_OF = dt.date(2026, 11, 27)
SMALL = GeneratorSettings(contacts=300, seed=42, as_of=AS_OF)

# Content digests per table, ordered by key; event_seq and loaded_at are load-time columns.
DIGESTS = {
    "raw.accounts": "account_id",
    "raw.contacts": "contact_id",
    "raw.products": "product_id",
    "raw.orders": "order_id",
    "raw.order_items": "order_id, line_no",
    "raw.installed_base": "installation_id",
    "raw.events": "event_id",
}

UPSELL_CONTACTS = """
    select count(distinct contact_id) from raw.installed_base
    where product_id = 'HS2000'
      and installed_on < cast(:as_of as date) - interval '3 years'
      and extract(year from next_maintenance_date) = extract(year from cast(:as_of as date)) + 1
"""


def digests(engine: sa.Engine) -> dict[str, str]:
    found = {}
    with engine.connect() as connection:
        for table, key in DIGESTS.items():
            found[table] = connection.execute(
                sa.text(
                    f"select md5(string_agg((to_jsonb(t) - 'event_seq' - 'loaded_at')::text, '|'"
                    f" order by {key})) from {table} t"
                )
            ).scalar_one()
    return found


def scalar(engine: sa.Engine, sql: str, **params):
    with engine.connect() as connection:
        return connection.execute(sa.text(sql), params).scalar_one()


@pytest.fixture
def second_warehouse(empty_database_url):
    engine = sa.create_engine(empty_database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def generated(server_url, template_url, tmp_path_factory):
    """The small company, generated once for the read-only tests of this module."""
    name = f"g_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"create database {name} template {template_url.database}")
    engine = sa.create_engine(server_url.set(database=name))
    summary = generate(engine, SMALL, out_dir=tmp_path_factory.mktemp("generated"))
    yield engine, summary
    engine.dispose()
    with admin.connect() as connection:
        connection.exec_driver_sql(f"drop database if exists {name} with (force)")
    admin.dispose()


# --- determinism ----------------------------------------------------------------------------------


def test_same_seed_gives_identical_tables_and_csv(warehouse, second_warehouse, tmp_path):
    first = generate(warehouse, SMALL, out_dir=tmp_path / "a")
    second = generate(second_warehouse, SMALL, out_dir=tmp_path / "b")
    assert first.counts == second.counts
    assert digests(warehouse) == digests(second_warehouse)
    assert first.fair_leads_csv.read_bytes() == second.fair_leads_csv.read_bytes()


def test_different_seed_gives_different_data(warehouse, second_warehouse, tmp_path):
    generate(warehouse, SMALL, out_dir=tmp_path / "a")
    other = GeneratorSettings(contacts=300, seed=43, as_of=AS_OF)
    generate(second_warehouse, other, out_dir=tmp_path / "b")
    ours, theirs = digests(warehouse), digests(second_warehouse)
    assert ours["raw.products"] == theirs["raw.products"]  # the catalogue is fixed
    for table in ("raw.accounts", "raw.contacts", "raw.orders", "raw.events"):
        assert ours[table] != theirs[table], table


def test_several_chunks_give_unique_ids_and_emails(warehouse, tmp_path, monkeypatch):
    monkeypatch.setattr(generator, "CONTACTS_PER_CHUNK", 90)
    summary = generate(warehouse, SMALL, out_dir=tmp_path)
    assert len(generator.Plan(SMALL).skeleton.chunks(90)) >= 3
    assert summary.counts["raw.contacts"] == 300
    # Primary keys and the email index would have refused duplicates; check the ids read well.
    assert scalar(warehouse, "select min(contact_id) from raw.contacts") == "CON-00000001"
    assert scalar(warehouse, "select max(contact_id) from raw.contacts") == "CON-00000300"
    assert (
        scalar(warehouse, "select count(distinct event_id) from raw.events")
        == (summary.counts["raw.events"])
    )


# --- consistency ----------------------------------------------------------------------------------


def test_counts_match_the_tables(generated):
    engine, summary = generated
    for table, rows in summary.counts.items():
        assert scalar(engine, f"select count(*) from {table}") == rows, table
    assert summary.counts["raw.contacts"] == 300
    assert summary.counts["raw.accounts"] == 75  # one account per four contacts
    assert summary.counts["raw.products"] == 7


def test_event_volume_follows_events_per_contact(generated):
    _, summary = generated
    expected = SMALL.contacts * SMALL.events_per_contact
    assert 0.75 * expected <= summary.counts["raw.events"] <= 1.25 * expected


def test_event_volume_scales_with_the_setting(warehouse, tmp_path):
    settings = GeneratorSettings(contacts=300, seed=42, as_of=AS_OF, events_per_contact=60)
    summary = generate(warehouse, settings, out_dir=tmp_path)
    assert 0.75 * 18_000 <= summary.counts["raw.events"] <= 1.25 * 18_000


def test_order_amounts_are_the_sum_of_their_lines(generated):
    engine, _ = generated
    mismatched = scalar(
        engine,
        """select count(*) from raw.orders o
           left join (select order_id, sum(net_amount) as lines from raw.order_items
                      group by order_id) i using (order_id)
           where i.lines is distinct from o.net_amount""",
    )
    assert mismatched == 0


def test_contacts_are_plausible(generated):
    engine, _ = generated
    with engine.connect() as connection:
        countries = set(
            connection.exec_driver_sql("select distinct country from raw.contacts").scalars()
        )
        pairs = set(
            connection.exec_driver_sql("select distinct country, language from raw.contacts").all()
        )
    assert countries <= set(COUNTRIES)
    assert pairs <= {(c, LANGUAGE_OF_COUNTRY[c]) for c in COUNTRIES}
    assert scalar(engine, "select count(distinct lower(btrim(email))) from raw.contacts") == 300
    assert scalar(engine, "select count(*) from raw.contacts where email <> lower(email)") == 0
    assert scalar(engine, "select count(*) from raw.contacts where consent_at < created_at") == 0
    assert (
        scalar(
            engine,
            "select count(*) from raw.contacts"
            " where consent_status = 'confirmed' and consent_at is null",
        )
        == 0
    )


def test_nothing_happens_after_the_cutoff(generated):
    engine, _ = generated
    cutoff = "timestamptz '2026-11-28 00:00:00+00'"
    assert scalar(engine, f"select count(*) from raw.events where occurred_at >= {cutoff}") == 0
    assert scalar(engine, f"select count(*) from raw.orders where ordered_at >= {cutoff}") == 0
    assert scalar(engine, f"select count(*) from raw.contacts where created_at >= {cutoff}") == 0
    assert (
        scalar(
            engine, "select count(*) from raw.installed_base where installed_on > date '2026-11-27'"
        )
        == 0
    )
    # Maintenance dates are the next ones due.
    assert (
        scalar(
            engine,
            "select count(*) from raw.installed_base"
            " where next_maintenance_date <= date '2026-11-27'",
        )
        == 0
    )


def test_every_order_has_its_purchase_event(generated):
    engine, _ = generated
    missing = scalar(
        engine,
        """select count(*) from raw.orders o where not exists (
               select 1 from raw.events e where e.event_type = 'purchase'
               and e.contact_id = o.contact_id and e.occurred_at = o.ordered_at
               and e.properties ->> 'order_id' = o.order_id)""",
    )
    assert missing == 0
    assert scalar(engine, "select count(*) from raw.events where event_type = 'purchase'") == (
        scalar(engine, "select count(*) from raw.orders")
    )


def test_customers_first_buy_a_hydrostat(generated):
    engine, _ = generated
    first_lines = scalar(
        engine,
        """select count(*) filter (where i.product_id not in ('HS2000', 'HS3000'))
           from (select distinct on (account_id) order_id from raw.orders
                 order by account_id, ordered_at) first_order
           join raw.order_items i using (order_id) where i.line_no = 1""",
    )
    assert first_lines == 0
    customers = scalar(engine, "select count(distinct account_id) from raw.orders")
    assert 0.25 * 75 <= customers <= 0.55 * 75


# --- the scenario's segments ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("as_of", "seed"),
    [
        (dt.date(2026, 1, 1), 1),
        (dt.date(2026, 11, 27), 7),
        (dt.date(2024, 2, 29), 42),
        (dt.date(2025, 12, 31), 2024),
    ],
)
def test_upsell_segment_exists_for_any_date_and_seed(warehouse, tmp_path, as_of, seed):
    """HydroStat 2000 installed more than 3 years ago, maintenance due next calendar year."""
    settings = GeneratorSettings(contacts=8, seed=seed, as_of=as_of, events_per_contact=2)
    generate(warehouse, settings, out_dir=tmp_path)
    assert scalar(warehouse, UPSELL_CONTACTS, as_of=as_of) >= 1


def test_upsell_segment_is_a_noticeable_group(generated):
    engine, _ = generated
    owners = scalar(engine, "select count(distinct contact_id) from raw.installed_base")
    assert scalar(engine, UPSELL_CONTACTS, as_of=AS_OF) >= 0.03 * owners


def test_new_and_existing_customers(generated):
    engine, _ = generated
    first_orders = """select contact_id, min(ordered_at)::date as first_day
                      from raw.orders group by contact_id"""
    new = scalar(
        engine, f"select count(*) from ({first_orders}) f where date '2026-11-27' - first_day < 365"
    )
    existing = scalar(
        engine,
        f"select count(*) from ({first_orders}) f where date '2026-11-27' - first_day >= 365",
    )
    assert new >= 1
    assert existing > new


def test_machine_opens_are_present_and_flagged(generated):
    engine, _ = generated
    opens = scalar(engine, "select count(*) from raw.events where event_type = 'email_open'")
    machine = scalar(
        engine, "select count(*) from raw.events where event_type = 'email_open' and is_machine"
    )
    assert 0.02 * opens <= machine <= 0.10 * opens
    with engine.connect() as connection:
        agents = set(
            connection.exec_driver_sql(
                "select distinct user_agent from raw.events where is_machine"
            ).scalars()
        )
    assert agents <= set(MACHINE_AGENTS)
    # A proxy fetches the pixel seconds after delivery.
    slow = scalar(
        engine,
        """select count(*) from raw.events o where o.event_type = 'email_open' and o.is_machine
           and not exists (select 1 from raw.events d where d.event_type = 'email_delivered'
               and d.contact_id = o.contact_id and d.mailing_id = o.mailing_id
               and o.occurred_at - d.occurred_at between interval '0' and interval '10 seconds')""",
    )
    assert slow == 0
    # People open later than the 10 seconds that company.yaml treats as a machine.
    hasty = scalar(
        engine,
        """select count(*) from raw.events o where o.event_type = 'email_open' and not o.is_machine
           and exists (select 1 from raw.events d where d.event_type = 'email_delivered'
               and d.contact_id = o.contact_id and d.mailing_id = o.mailing_id
               and o.occurred_at - d.occurred_at between interval '0' and interval '10 seconds')""",
    )
    assert hasty == 0
    honeypot = "select count(*) from raw.events where link_tag = 'honeypot'"
    assert scalar(engine, honeypot + " and is_machine") >= 1
    assert scalar(engine, honeypot + " and not is_machine") == 0


def test_clicks_carry_link_tags_and_come_after_an_open(generated):
    engine, _ = generated
    untagged = scalar(
        engine,
        "select count(*) from raw.events where event_type = 'email_click'"
        " and (link_id is null or link_tag is null)",
    )
    assert untagged == 0
    assert (
        scalar(
            engine,
            "select count(*) from raw.events where event_type = 'download' and asset_id is null",
        )
        == 0
    )
    assert (
        scalar(
            engine,
            "select count(*) from raw.events where event_type = 'web_visit'"
            " and url not similar to 'https://(www|fr|it|es).steinhoff-hydraulik.example/%'",
        )
        == 0
    )


# --- the fair-lead export -------------------------------------------------------------------------


def test_fair_export_has_known_new_and_bad_rows(generated):
    engine, summary = generated
    with summary.fair_leads_csv.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == HEADER
        rows = list(reader)
    assert len(rows) == summary.fair_lead_rows == 20  # 3 % of 300 is below the minimum of 20
    with engine.connect() as connection:
        pool = set(
            connection.exec_driver_sql("select lower(btrim(email)) from raw.contacts").scalars()
        )
    emails = [row["email"] for row in rows]
    known = [e for e in emails if e.strip().lower() in pool]
    assert len(known) == 7  # a third of 20
    assert any(e != e.strip().lower() for e in known), "some known addresses are retyped"
    assert sum(1 for e in emails if e == "") == 1
    assert sum(1 for e in emails if e and "@" not in e) == 1
    assert sum(1 for row in rows if row["country"] not in COUNTRIES) == 1
    new = [e for e in emails if e and "@" in e and e.strip().lower() not in pool]
    assert len(new) >= 10
    assert {row["fair"].rsplit(" ", 1)[0] for row in rows} <= {
        "Hannover Messe",
        "EMO Hannover",
        "Global Industrie Paris",
    }
    for row in rows:
        captured = dt.datetime.fromisoformat(row["captured_at"])
        assert captured.tzinfo is not None
        assert captured.date() <= AS_OF


def test_fair_export_is_not_loaded(warehouse, tmp_path):
    with warehouse.begin() as connection:
        connection.exec_driver_sql(
            "insert into raw.fair_leads (fair_lead_id, fair, captured_at, email)"
            " values ('x', 'Old Fair 2020', now(), 'old@lead.example')"
        )
    generate(warehouse, SMALL, out_dir=tmp_path)
    assert scalar(warehouse, "select count(*) from raw.fair_leads") == 0


def test_default_output_is_the_demo_directory(warehouse, tmp_path, monkeypatch):
    monkeypatch.setenv("LEADFLOW_HOME", str(tmp_path))
    summary = generate(warehouse, GeneratorSettings(contacts=20, as_of=AS_OF), progress=True)
    assert summary.fair_leads_csv == tmp_path / "demo" / "fair_leads.csv"
    assert summary.fair_leads_csv.exists()


# --- replacing, never appending -------------------------------------------------------------------


def test_rerun_replaces_the_data(warehouse, tmp_path):
    generate(warehouse, SMALL, out_dir=tmp_path)
    first = digests(warehouse)
    smaller = generate(
        warehouse, GeneratorSettings(contacts=100, seed=5, as_of=AS_OF), out_dir=tmp_path
    )
    for table, rows in smaller.counts.items():
        assert scalar(warehouse, f"select count(*) from {table}") == rows, table
    generate(warehouse, SMALL, out_dir=tmp_path)
    assert digests(warehouse) == first


def index_definitions(engine: sa.Engine) -> set[str]:
    with engine.connect() as connection:
        return set(
            connection.exec_driver_sql(
                "select indexdef from pg_indexes where schemaname = 'raw'"
            ).scalars()
        )


def test_indexes_are_rebuilt_after_the_load(warehouse, tmp_path):
    before = index_definitions(warehouse)
    assert any("events_pkey" in d for d in before)
    generate(warehouse, SMALL, out_dir=tmp_path)
    assert index_definitions(warehouse) == before
    with warehouse.connect() as connection:
        keys = connection.exec_driver_sql(
            "select conname from pg_constraint where conrelid = 'raw.events'::regclass"
            " and contype = 'p'"
        ).scalars()
        assert list(keys) == ["events_pkey"]


def test_a_failed_run_leaves_the_previous_data_and_csv(warehouse, tmp_path, monkeypatch):
    generate(warehouse, SMALL, out_dir=tmp_path)
    before = digests(warehouse)
    indexes_before = index_definitions(warehouse)
    csv_before = (tmp_path / "fair_leads.csv").read_bytes()
    monkeypatch.setattr(generator, "CONTACTS_PER_CHUNK", 100)
    original = generator.Plan.build

    def failing_build(self, index, span):
        if index == 2:
            raise RuntimeError("disk on fire")
        return original(self, index, span)

    monkeypatch.setattr(generator.Plan, "build", failing_build)
    with pytest.raises(RuntimeError, match="disk on fire"):
        generate(warehouse, GeneratorSettings(contacts=300, seed=9, as_of=AS_OF), out_dir=tmp_path)
    assert digests(warehouse) == before
    assert index_definitions(warehouse) == indexes_before
    assert (tmp_path / "fair_leads.csv").read_bytes() == csv_before
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["fair_leads.csv"]


# --- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"contacts": 0}, "contacts must be at least 1, got 0"),
        ({"seed": -1}, "seed must not be negative, got -1"),
        ({"events_per_contact": -2.0}, "events_per_contact must not be negative"),
        ({"years_of_history": 3}, "years_of_history must be at least 5"),
    ],
)
def test_invalid_settings_are_refused(changes, message):
    values = {"contacts": 10, **changes}
    with pytest.raises(LeadflowError, match=message):
        GeneratorSettings(**values)


def test_as_of_defaults_to_today():
    assert GeneratorSettings(contacts=1).as_of == dt.date.today()
