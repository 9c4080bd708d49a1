"""Loading the example configuration, and every kind of configuration error.

Bad cases are tmp_path copies of the example config with one small edit each; every error
must name the file, the line of the offending key, the key path and the segment/campaign.
"""

from __future__ import annotations

from pathlib import Path

from leadflow.config import load_config
from leadflow.config.campaigns import (
    BranchStep,
    DateRelativeTrigger,
    EventTrigger,
    InactivityTrigger,
    SegmentEntryTrigger,
)
from leadflow.config.filters import AllOf, InSegment, MaintenanceDue, Not, Purchased

# --- the example company ----------------------------------------------------------------


def test_example_config_loads_with_the_expected_counts(example_config):
    config = example_config

    assert config.summary() == (
        "4 tenants, 7 products, 3 personas, 23 scoring rules, 8 routing rules, "
        "14 segments, 5 fairs, 7 campaigns"
    )
    assert [tenant.code for tenant in config.tenants] == ["hq", "fr", "it", "es"]
    assert config.global_tenant.code == "hq"
    assert [product.id for product in config.products] == [
        "HS2000", "HS3000", "CLN-10", "CLN-25", "MNT-KIT", "MNT-DIAG", "SW-SCOPE",
    ]  # fmt: skip
    assert [persona.id for persona in config.personas] == [
        "production_manager", "purchaser", "managing_director",
    ]  # fmt: skip
    assert sorted(config.campaigns) == [
        "cross_sell", "ebook_nurture", "fair_followup", "inactivity", "loyalty", "onboarding",
        "upsell_hs3000",
    ]  # fmt: skip


def test_example_tenants_match_the_scenario(example_config):
    config = example_config
    expected = {
        "hq": (["DE", "AT", "CH"], "de", "Europe/Berlin", True),
        "fr": (["FR"], "fr", "Europe/Paris", False),
        "it": (["IT"], "it", "Europe/Rome", False),
        "es": (["ES"], "es", "Europe/Madrid", False),
    }
    for code, (countries, language, time_zone, is_global) in expected.items():
        tenant = config.tenant(code)
        assert (tenant.countries, tenant.language, tenant.time_zone, tenant.is_global) == (
            countries,
            language,
            time_zone,
            is_global,
        )
        assert tenant.template == code
    assert config.tenant("fr").languages == ["fr"]  # defaults to [language]


def test_company_defaults_fill_the_gaps(example_config):
    config = example_config

    assert [persona.threshold for persona in config.personas] == [70, 70, 65]
    assert config.scoring.activity_half_life_days == 30
    assert config.scoring.mql_cells == ["A1", "A2", "B1"]
    grades = config.scoring.grade_thresholds
    assert (grades.A, grades.B, grades.C) == (75, 50, 25)
    bands = config.scoring.band_thresholds
    assert (bands.band_1, bands.band_2, bands.band_3) == (75, 50, 25)
    defaults = config.company.defaults
    assert (defaults.frequency_cap.max_mails, defaults.frequency_cap.per_days) == (2, 7)
    assert (defaults.clv.retention, defaults.clv.horizon_years) == (0.8, 5)
    assert defaults.attribution.window_days == 90
    soft = defaults.soft_bounce
    assert (soft.max_soft_bounces, soft.within_days) == (3, 30)
    # Rules without an id would get profile_<n>/activity_<n>; the example names them all.
    assert config.scoring.profile_rules[0].id == "role_production_manager"


def test_machine_traffic_files_are_read(example_config):
    machine = example_config.company.tracking.machine_traffic

    assert "GoogleImageProxy" in machine.user_agents.patterns
    assert machine.ip_ranges.file == "tracking/machine_ip_ranges.txt"
    assert "17.0.0.0/8" in machine.ip_ranges.patterns
    assert not any(pattern.startswith("#") for pattern in machine.ip_ranges.patterns)


def test_hs2000_upsell_segment_is_the_scenario_filter(example_config):
    segment = example_config.segment("hs2000_upsell")

    assert isinstance(segment.filter, AllOf)
    purchased, maintenance, no_hs3000 = segment.filter.conditions
    assert isinstance(purchased, Purchased)
    assert (purchased.purchased.product, str(purchased.purchased.before)) == ("HS2000", "-3y")
    assert isinstance(maintenance, MaintenanceDue)
    assert [str(bound) for bound in maintenance.maintenance_due.between] == ["+0d", "+1y"]
    assert isinstance(no_hs3000, Not)


def test_example_campaigns_use_the_scenario_triggers(example_config):
    campaigns = example_config.campaigns

    onboarding = campaigns["onboarding"].trigger
    assert isinstance(onboarding, EventTrigger)
    assert (onboarding.event.type, onboarding.event.product_family) == ("purchase", "hydrostat")

    upsell = campaigns["upsell_hs3000"]
    assert isinstance(upsell.trigger, DateRelativeTrigger)
    spec = upsell.trigger.date_relative
    assert (spec.field, spec.offset_days, spec.product) == ("next_maintenance_date", -180, "HS2000")
    assert upsell.audience == InSegment(segment="hs2000_upsell")
    assert upsell.goal.event.product == "HS3000"

    cross_sell = campaigns["cross_sell"]
    assert isinstance(cross_sell.trigger, SegmentEntryTrigger)
    clicked_tags = [
        step.branch.link_tag
        for step in cross_sell.steps
        if isinstance(step, BranchStep) and step.branch.on == "clicked" and step.branch.link_tag
    ]
    assert clicked_tags == ["cleaning_agent", "maintenance_device", "software"]

    assert campaigns["fair_followup"].trigger.event.type == "fair_visit"
    ebook = campaigns["ebook_nurture"].trigger.event
    assert (ebook.type, ebook.asset) == ("download", "ebook_antriebslosigkeit")
    assert isinstance(campaigns["inactivity"].trigger, InactivityTrigger)
    assert campaigns["inactivity"].trigger.inactivity.days == 90
    assert campaigns["loyalty"].trigger.segment_entry.segment == "loyal_customers"


def test_snapshot_is_json_ready_and_reloads_to_the_same_models(example_config):
    from leadflow.config import Campaign, Segment

    config = example_config
    snapshot = config.snapshot()

    for name, data in snapshot["segments"].items():
        assert Segment.model_validate(data) == config.segments[name]
    for name, data in snapshot["campaigns"].items():
        assert Campaign.model_validate(data) == config.campaigns[name]
    assert snapshot["campaigns"]["loyalty"]["re_entry"] == {"lockout_days": 365}
    assert snapshot["company"]["defaults"]["band_thresholds"] == {"1": 75.0, "2": 50.0, "3": 25.0}


def test_loading_writes_nothing(config_copy):
    def state() -> dict[Path, tuple[int, int]]:
        return {
            path: (path.stat().st_mtime_ns, path.stat().st_size)
            for path in config_copy.parent.rglob("*")
        }

    before = state()
    load_config(config_copy)
    assert state() == before


# --- malformed YAML and files -----------------------------------------------------------


def test_malformed_yaml_names_file_and_line(config_copy, edit, errors_of):
    segments = config_copy / "segments.yaml"
    line = edit(
        segments,
        "    description: First order within the last 365 days.",
        "    description: First order: within the last 365 days.",
    )

    assert errors_of(config_copy) == [
        f"{segments}:{line}: invalid YAML: mapping values are not allowed here"
    ]


def test_unquoted_greater_or_equal_gets_a_quoting_hint(config_copy, edit, errors_of):
    personas = config_copy / "personas.yaml"
    line = edit(
        personas,
        '      - {field: employee_count, op: ">=", value: 50, weight: 15}',
        "      - {field: employee_count, op: >=, value: 50, weight: 15}",
    )

    [error] = errors_of(config_copy)
    assert error.startswith(f"{personas}:{line}: invalid YAML: found character '>'")
    assert error.endswith("quote operators and other values with special characters: op: '>='")


def test_duplicate_segment_name_is_a_yaml_error(config_copy, edit, errors_of):
    segments = config_copy / "segments.yaml"
    line = edit(segments, "  customers:\n", "  new_customers:\n")

    [error] = errors_of(config_copy)
    assert error.startswith(f"{segments}:{line}: invalid YAML: found duplicate key")


def test_unquoted_equals_operators_are_understood(config_copy, edit):
    segments = config_copy / "segments.yaml"
    edit(
        segments,
        '        - {field: is_mql, op: "=", value: true}',
        "        - field: is_mql\n          op: =\n          value: true\n"
        "        - field: consent_status\n          op: !=\n          value: objected",
    )

    conditions = load_config(config_copy).segment("mql_dach").filter.conditions
    assert [(c.field, c.op) for c in conditions[:2]] == [
        ("is_mql", "="),
        ("consent_status", "!="),
    ]


def test_unknown_and_missing_files(config_copy, errors_of):
    (config_copy / "segment.yaml").write_text("segments: {}\n", encoding="utf-8")
    (config_copy / "routing.yaml").unlink()
    (config_copy / "campaigns" / "extra.yml").write_text("id: extra\n", encoding="utf-8")

    errors = errors_of(config_copy)
    assert errors == [
        f"{config_copy / 'campaigns' / 'extra.yml'}: campaign files end in .yaml, not .yml",
        f"{config_copy / 'routing.yaml'}: required file is missing",
        f"{config_copy / 'segment.yaml'}: unknown configuration file (expected company.yaml, "
        "tenants.yaml, products.yaml, personas.yaml, scoring.yaml, routing.yaml, "
        "segments.yaml, costs.yaml)",
    ]


def test_missing_configuration_directory(tmp_path):
    import pytest

    from leadflow.errors import ConfigError

    with pytest.raises(ConfigError, match=r"configuration directory .* not found"):
        load_config(tmp_path / "nowhere")


# --- keys and types ---------------------------------------------------------------------


def test_unknown_key(config_copy, edit, errors_of):
    tenants = config_copy / "tenants.yaml"
    line = edit(tenants, "    deepl_formality: less", "    deepl_formalty: less")

    assert errors_of(config_copy) == [
        f"{tenants}:{line}: tenant 'es': deepl_formalty: unknown key 'deepl_formalty' "
        "(did you mean 'deepl_formality'?)"
    ]


def test_wrong_type(config_copy, edit, errors_of):
    products = config_copy / "products.yaml"
    line = edit(products, "    list_price: 42000\n", '    list_price: "42000 EUR"\n')

    assert errors_of(config_copy) == [
        f"{products}:{line}: product 'HS2000': list_price: expected a number, "
        "got the text '42000 EUR'"
    ]


def test_missing_key_points_at_its_parent(config_copy, edit, line_of, errors_of):
    tenants = config_copy / "tenants.yaml"
    edit(tenants, "      name: Steinhoff Hydraulique\n", "")
    # fr's sender now holds only email and reply_to.
    text = tenants.read_text(encoding="utf-8")
    sender_line = text[: text.index("      email: contact@fr.")].count("\n")

    assert errors_of(config_copy) == [
        f"{tenants}:{sender_line}: tenant 'fr': sender.name: required key is missing"
    ]


def test_invalid_enum_and_time_zone_in_one_file(config_copy, edit, errors_of):
    tenants = config_copy / "tenants.yaml"
    zone_line = edit(tenants, "    time_zone: Europe/Rome", "    time_zone: Europe/Roma")
    day_line = edit(tenants, '      start: "09:30"', '      start: "9.30"')

    assert errors_of(config_copy) == [
        f"{tenants}:{zone_line}: tenant 'it': time_zone: unknown time zone 'Europe/Roma' "
        "(use an IANA name like Europe/Berlin)",
        f"{tenants}:{day_line}: tenant 'es': send_window.start: expected a time of day "
        "like \"08:00\", got '9.30'",
    ]


# --- filters in segments ----------------------------------------------------------------


def test_unknown_field_names_the_segment(config_copy, edit, errors_of):
    segments = config_copy / "segments.yaml"
    line = edit(
        segments,
        '        - {field: created_at, op: "<", value: -90d}',
        '        - {field: created_on, op: "<", value: -90d}',
    )

    assert errors_of(config_copy) == [
        f"{segments}:{line}: segment 'inactive_90d': filter.all[1].field: "
        "unknown field 'created_on' (did you mean 'created_at'?)"
    ]


def test_unknown_operator(config_copy, edit, errors_of):
    segments = config_copy / "segments.yaml"
    line = edit(
        segments,
        '        - {field: is_mql, op: "=", value: true}',
        "        - {field: is_mql, op: is, value: true}",
    )

    assert errors_of(config_copy) == [
        f"{segments}:{line}: segment 'mql_dach': filter.all[0].op: unknown operator 'is'; "
        "operators: = != < <= > >= in not_in between contains starts_with is_null is_not_null"
    ]


def test_operator_not_valid_for_the_field_type(config_copy, edit, errors_of):
    segments = config_copy / "segments.yaml"
    line = edit(
        segments,
        '        - {field: order_count, op: ">=", value: 2}',
        '        - {field: order_count, op: starts_with, value: "2"}',
    )

    assert errors_of(config_copy) == [
        f"{segments}:{line}: segment 'loyal_customers': filter.all[1].op: operator "
        "'starts_with' does not apply to integer field 'order_count' "
        "(allowed: = != < <= > >= in not_in between is_null is_not_null)"
    ]


def test_text_for_a_numeric_field(config_copy, edit, errors_of):
    segments = config_copy / "segments.yaml"
    line = edit(
        segments,
        '        - {field: total_revenue, op: ">=", value: 20000}',
        '        - {field: total_revenue, op: ">=", value: lots}',
    )

    assert errors_of(config_copy) == [
        f"{segments}:{line}: segment 'loyal_customers': filter.all[2].value: "
        "total_revenue (numeric): expected a number, got the text 'lots'"
    ]


def test_a_list_for_equals_in_a_routing_rule(config_copy, edit, errors_of):
    routing = config_copy / "routing.yaml"
    line = edit(
        routing,
        '    match: {field: country, op: "=", value: FR}',
        '    match: {field: country, op: "=", value: [FR]}',
    )

    assert errors_of(config_copy) == [
        f"{routing}:{line}: routing rule 'france': match.value: country (text): "
        "'=' takes a single value, not a list ['FR'] (use 'in' for several values)"
    ]


def test_unknown_nested_segment(config_copy, edit, errors_of):
    segments = config_copy / "segments.yaml"
    line = edit(
        segments,
        "        - segment: existing_customers\n        - {field: tenant_code",
        "        - segment: existing_customer\n        - {field: tenant_code",
    )

    assert errors_of(config_copy) == [
        f"{segments}:{line}: segment 'fr_existing_customers': filter.all[0].segment: "
        "unknown segment 'existing_customer' (did you mean 'existing_customers'?)"
    ]


def test_segment_references_to_unknown_tenant_product_and_persona(config_copy, edit, errors_of):
    segments = config_copy / "segments.yaml"
    tenant_line = edit(segments, "    tenant: fr\n", "    tenant: pt\n")
    product_line = edit(
        segments,
        "        - purchased: {product: HS2000, before: -3y}",
        "        - purchased: {product: HS2001, before: -3y}",
    )
    persona_line = edit(
        segments,
        '        - {field: decision_role, op: "=", value: production_manager}\n'
        '        - {field: industry, op: "=", value: machine_tools}',
        '        - {field: best_persona, op: "=", value: peter}\n'
        '        - {field: industry, op: "=", value: machine_tools}',
    )

    assert errors_of(config_copy) == [
        f"{segments}:{persona_line}: segment 'machine_tools_production_managers': "
        "filter.all[0].value: unknown persona 'peter' "
        "(known: managing_director, production_manager, purchaser)",
        f"{segments}:{product_line}: segment 'hs2000_upsell': filter.all[0].purchased.product: "
        "unknown product 'HS2001' (did you mean 'HS2000'?)",
        f"{segments}:{tenant_line}: segment 'fr_existing_customers': tenant: "
        "unknown tenant 'pt' (known: es, fr, hq, it)",
    ]


def test_segment_cycle(config_copy, edit, errors_of):
    segments = config_copy / "segments.yaml"
    edit(
        segments,
        '    filter: {field: customer_status, op: "=", value: existing_customer}',
        '    filter:\n      all:\n        - {field: customer_status, op: "=", value: '
        "existing_customer}\n        - segment: loyal_customers",
    )
    line = (
        segments.read_text(encoding="utf-8")
        .splitlines()
        .index("        - segment: loyal_customers")
        + 1
    )

    assert errors_of(config_copy) == [
        f"{segments}:{line}: segment 'existing_customers': filter.all[1].segment: "
        "segments form a cycle: existing_customers → loyal_customers → existing_customers"
    ]


def test_segment_referring_to_itself(config_copy, edit, errors_of):
    segments = config_copy / "segments.yaml"
    line = edit(
        segments,
        "      downloaded: {asset: ebook_antriebslosigkeit}",
        "      any:\n        - downloaded: {asset: ebook_antriebslosigkeit}\n"
        "        - segment: ebook_downloaders",
    )

    assert errors_of(config_copy) == [
        f"{segments}:{line + 2}: segment 'ebook_downloaders': filter.any[1].segment: "
        "segments form a cycle: ebook_downloaders → ebook_downloaders"
    ]


def test_errors_inside_an_invalid_segment_are_all_reported(config_copy, edit, errors_of):
    segments = config_copy / "segments.yaml"
    line = edit(
        segments,
        "        - purchased: {product: HS2000, before: -3y}",
        "        - purchased: {product: HS2000, before: -3y}\n"
        '        - {field: countri, op: "=", value: DE}\n'
        "        - owns: {product: HS4000}",
    )

    assert errors_of(config_copy) == [
        f"{segments}:{line + 1}: segment 'hs2000_upsell': filter.all[1].field: "
        "unknown field 'countri' (did you mean 'country'?)",
        f"{segments}:{line + 2}: segment 'hs2000_upsell': filter.all[2].owns.product: "
        "unknown product 'HS4000' (did you mean 'HS3000'?)",
    ]


def test_pool_alias_may_not_use_derived_fields(config_copy, edit, errors_of):
    tenants = config_copy / "tenants.yaml"
    line = edit(
        tenants,
        '        - {field: country, op: "=", value: FR}',
        '        - {field: customer_status, op: "=", value: lead}',
    )

    assert errors_of(config_copy) == [
        f"{tenants}:{line}: tenant 'fr': pool_alias.any[0].field: field 'customer_status' "
        "is derived; pool aliases use contact/account fields"
    ]


def test_persona_criteria_use_contact_and_account_fields_only(config_copy, edit, errors_of):
    personas = config_copy / "personas.yaml"
    line = edit(
        personas,
        '      - {field: decision_role, op: "=", value: purchaser, weight: 50}',
        '      - {field: grade, op: "=", value: A, weight: 50}',
    )

    assert errors_of(config_copy) == [
        f"{personas}:{line}: persona 'purchaser': criteria[0].field: field 'grade' is "
        "derived; here only account and contact fields are allowed"
    ]


# --- duplicates -------------------------------------------------------------------------


def test_duplicate_product_id(config_copy, edit, errors_of):
    products = config_copy / "products.yaml"
    line = edit(products, "  - id: CLN-25\n", "  - id: CLN-10\n")

    assert errors_of(config_copy) == [
        f"{products}:{line}: product 'CLN-10': id: duplicate id 'CLN-10' (products[2] has it too)"
    ]


def test_duplicate_tenant_code_and_second_global_tenant(config_copy, edit, errors_of):
    tenants = config_copy / "tenants.yaml"
    code_line = edit(tenants, "  - code: it\n", "  - code: fr\n")
    global_line = edit(
        tenants,
        "    name: Steinhoff Hidráulica España\n",
        "    name: Steinhoff Hidráulica España\n    is_global: true\n",
    )

    errors = errors_of(config_copy)
    assert (
        f"{tenants}:{code_line}: tenant 'fr': code: duplicate code 'fr' (tenants[1] has it too)"
        in errors
    )
    assert (
        f"{tenants}:{global_line + 1}: tenant 'es': is_global: only one tenant may be global"
        in errors
    )
    # The 7 campaigns and the MECSPE fair still name tenant 'it', which no longer exists.
    others = [error for error in errors if f"{tenants}:" not in error]
    assert len(others) == 8
    assert all(error.endswith("unknown tenant 'it' (known: es, fr, hq)") for error in others)


def test_duplicate_step_id(config_copy, edit, errors_of):
    onboarding = config_copy / "campaigns" / "onboarding.yaml"
    line = edit(onboarding, "  - id: wait_week_2\n", "  - id: wait_week_1\n")

    assert errors_of(config_copy) == [
        f"{onboarding}:{line}: campaign 'onboarding': step 'wait_week_1': id: "
        "duplicate step id 'wait_week_1' (steps[2])"
    ]


# --- campaigns --------------------------------------------------------------------------


def test_unknown_step_in_a_branch(config_copy, edit, errors_of):
    cross_sell = config_copy / "campaigns" / "cross_sell.yaml"
    line = edit(cross_sell, "      then: software_demo\n", "      then: software_dem\n")

    assert errors_of(config_copy) == [
        f"{cross_sell}:{line}: campaign 'cross_sell': step 'clicked_software': branch.then: "
        "unknown step 'software_dem' (did you mean 'software_demo'?)"
    ]


def test_unreachable_step(config_copy, edit, line_of, errors_of):
    onboarding = config_copy / "campaigns" / "onboarding.yaml"
    edit(
        onboarding,
        "    exit: {reason: onboarding complete}\n",
        "    exit: {reason: onboarding complete}\n  - id: forgotten\n"
        "    send: {message: forgotten}\n",
    )

    assert errors_of(config_copy) == [
        f"{onboarding}:{line_of(onboarding, '- id: forgotten')}: campaign 'onboarding': "
        "step 'forgotten': step 'forgotten' is unreachable from the first step 'welcome'"
    ]


def test_cycle_without_a_wait(config_copy, edit, line_of, errors_of):
    cross_sell = config_copy / "campaigns" / "cross_sell.yaml"
    edit(
        cross_sell,
        "    send: {message: cleaning_discount, content: [hydroclean_discount_10]}\n"
        "    next: follow_up_task\n",
        "    send: {message: cleaning_discount, content: [hydroclean_discount_10]}\n"
        "    next: bought_cleaning\n",
    )

    assert errors_of(config_copy) == [
        f"{cross_sell}:{line_of(cross_sell, '- id: bought_cleaning')}: campaign 'cross_sell': "
        "step 'bought_cleaning': steps form a cycle without a wait step: "
        "bought_cleaning → cleaning_discount → bought_cleaning"
    ]


def test_a_cycle_through_a_wait_is_fine(config_copy, edit):
    loyalty = config_copy / "campaigns" / "loyalty.yaml"
    # survey reminder → wait → back to the survey check: a reminder loop with time passing.
    edit(
        loyalty,
        "  - id: wait_survey_reminder\n    wait: {duration: 7d}\n",
        "  - id: wait_survey_reminder\n    wait: {duration: 7d}\n    next: answered_survey\n",
    )

    campaign = load_config(config_copy).campaign("loyalty")
    index = [step.id for step in campaign.steps].index("wait_survey_reminder")
    assert campaign.successors(index) == [("next", "answered_survey")]


def test_campaign_with_unknown_tenant_segment_and_fair(config_copy, edit, errors_of):
    campaigns = config_copy / "campaigns"
    tenant_line = edit(
        campaigns / "onboarding.yaml", "tenants: [hq, fr, it, es]", "tenants: [hq, fr, it, pt]"
    )
    segment_line = edit(
        campaigns / "loyalty.yaml",
        "  segment_entry: {segment: loyal_customers}",
        "  segment_entry: {segment: loyal_customer}",
    )
    fair_line = edit(
        campaigns / "fair_followup.yaml",
        "  event: {type: fair_visit}",
        "  event: {type: fair_visit, fair: hannover_messe_2062}",
    )

    assert errors_of(config_copy) == [
        f"{campaigns / 'fair_followup.yaml'}:{fair_line}: campaign 'fair_followup': "
        "trigger.event.fair: unknown fair 'hannover_messe_2062' "
        "(did you mean 'hannover_messe_2026'?)",
        f"{campaigns / 'loyalty.yaml'}:{segment_line}: campaign 'loyalty': "
        "trigger.segment_entry.segment: unknown segment 'loyal_customer' "
        "(did you mean 'loyal_customers'?)",
        f"{campaigns / 'onboarding.yaml'}:{tenant_line}: campaign 'onboarding': tenants[3]: "
        "unknown tenant 'pt' (known: es, fr, hq, it)",
    ]


def test_campaign_shape_errors(config_copy, edit, errors_of):
    loyalty = config_copy / "campaigns" / "loyalty.yaml"
    re_entry_line = edit(loyalty, "re_entry: {lockout_days: 365}", "re_entry: sometimes")
    schedule_line = edit(loyalty, 'schedule: "@daily"', 'schedule: "every day"')
    wait_line = edit(loyalty, "    wait: {duration: 30d}", "    wait: {duration: 30}")
    trigger_line = edit(loyalty, "  segment_entry: {segment", "  segment_entered: {segment")

    assert errors_of(config_copy) == [
        f"{loyalty}:{trigger_line - 1}: campaign 'loyalty': trigger: a trigger needs one of "
        "the keys event, segment_entry, date_relative, inactivity, one_off; got "
        "segment_entered (did you mean 'segment_entry'?)",
        f"{loyalty}:{wait_line}: campaign 'loyalty': step 'wait_month': wait.duration: "
        "expected a duration like 12h, 30d, 2w, 6m or 1y, got 30",
        f"{loyalty}:{re_entry_line}: campaign 'loyalty': re_entry: expected never, always or "
        "{lockout_days: N}, got 'sometimes'",
        f"{loyalty}:{schedule_line}: campaign 'loyalty': schedule: expected a cron expression "
        "like '0 7 * * 1-5' or one of @once, @hourly, @daily, @weekly, @monthly, @yearly, "
        "got 'every day'",
    ]


def test_campaign_id_must_match_its_file(config_copy, edit, errors_of):
    ebook = config_copy / "campaigns" / "ebook_nurture.yaml"
    line = edit(ebook, "id: ebook_nurture\n", "id: ebook\n")

    assert errors_of(config_copy) == [
        f"{ebook}:{line}: campaign 'ebook': id: campaign id 'ebook' must match the file name "
        "ebook_nurture.yaml"
    ]


# --- templates --------------------------------------------------------------------------


def test_templates_are_checked_once_their_folders_exist(config_copy, errors_of):
    templates = config_copy.parent / "templates"
    (templates / "tenants").mkdir(parents=True)
    for code in ("hq", "fr", "it"):
        (templates / "tenants" / f"{code}.html.j2").write_text("{# derived #}\n")
    onboarding_messages = templates / "messages" / "onboarding"
    onboarding_messages.mkdir(parents=True)
    for message in ("welcome", "cleaning_tips", "cleaning_tips_reminder", "maintenance_tips"):
        (onboarding_messages / f"{message}.de.html.j2").write_text("<p>Hallo</p>\n")
    tenants = config_copy / "tenants.yaml"
    onboarding = config_copy / "campaigns" / "onboarding.yaml"
    text = tenants.read_text(encoding="utf-8")
    es_template_line = text[: text.index("    template: es")].count("\n") + 1
    feedback = onboarding.read_text(encoding="utf-8").splitlines()
    feedback_line = feedback.index("    send: {message: feedback_survey}") + 1

    assert errors_of(config_copy) == [
        f"{onboarding}:{feedback_line}: campaign 'onboarding': step 'feedback': "
        f"send.message: no template for message 'feedback_survey': expected "
        f"{onboarding_messages}/feedback_survey.*",
        f"{tenants}:{es_template_line}: tenant 'es': template: unknown template 'es': "
        f"no file es.* in {templates / 'tenants'}",
    ]


# --- several errors at once -------------------------------------------------------------


def test_every_error_of_every_file_is_reported(config_copy, edit, errors_of):
    tenants = config_copy / "tenants.yaml"
    products = config_copy / "products.yaml"
    segments = config_copy / "segments.yaml"
    cross_sell = config_copy / "campaigns" / "cross_sell.yaml"
    lines = [
        edit(cross_sell, "      then: software_demo\n", "      then: software_dem\n"),
        edit(products, "    list_price: 42000\n", '    list_price: "42000 EUR"\n'),
        edit(products, "    unit_cost: 61\n", "    unit_cost: -61\n"),
        edit(
            segments,
            '        - {field: created_at, op: "<", value: -90d}',
            '        - {field: created_on, op: "<", value: -90d}',
        ),
        edit(tenants, "    deepl_formality: less", "    deepl_formalty: less"),
    ]

    errors = errors_of(config_copy)
    assert len(errors) == 5
    expected_starts = [
        f"{cross_sell}:{lines[0]}: campaign 'cross_sell': step 'clicked_software': branch.then",
        f"{products}:{lines[1]}: product 'HS2000': list_price: expected a number",
        f"{products}:{lines[2]}: product 'CLN-10': unit_cost: expected greater than or equal "
        "to 0, got -61",
        f"{segments}:{lines[3]}: segment 'inactive_90d': filter.all[1].field: unknown field",
        f"{tenants}:{lines[4]}: tenant 'es': deepl_formalty: unknown key",
    ]
    for error, start in zip(errors, expected_starts, strict=True):
        assert error.startswith(start), (error, start)


def test_a_file_that_is_not_a_mapping(config_copy, errors_of):
    costs = config_copy / "costs.yaml"
    costs.write_text("- just\n- a list\n", encoding="utf-8")

    assert errors_of(config_copy) == [f"{costs}:1: expected a mapping of keys at the top level"]


def test_empty_optional_file_is_fine(config_copy):
    (config_copy / "costs.yaml").write_text("", encoding="utf-8")

    assert load_config(config_copy).costs.fairs == []


def test_yaml_tags_are_rejected(config_copy, edit, errors_of):
    products = config_copy / "products.yaml"
    line = edit(products, "    name: HydroStat 2000\n", "    name: !upper HydroStat 2000\n")

    assert errors_of(config_copy) == [
        f"{products}:{line}: product 'HS2000': name: YAML tags like !upper are not supported here"
    ]
