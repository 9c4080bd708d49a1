{{ config(materialized='view') }}

-- The audit trail of the profile score: one row per contact × profile rule, whether it is met
-- and the contact's value of the field. The same predicates and best persona as
-- marts.lead_scores; a view, read one contact at a time by `leadflow explain` (the contact
-- filter reaches int_contacts_enriched's index and the best-persona subquery).
-- depends_on: {{ source('ops', 'config_profile_rules') }}, {{ ref('int_contacts_enriched') }},
-- {{ ref('int_contacts_persona_matched') }}

{%- set rules = profile_rules() %}

with

{%- if rules %}

    contact as (

        {{ contacts_with_best_persona() }}

    ),

    evaluated as (

        select
            contact.contact_id,
            profile_rule.rule_id,
            profile_rule.rule_position,
            profile_rule.is_met,
            profile_rule.field_value
        from contact
        cross join lateral (
            values
            {%- for rule in rules %}
                (
                    {{ scoring_string(rule['rule_id']) }},
                    {{ rule['position'] }},
                    {{ condition_predicate('contact', rule) }},
                    {{ condition_field_text('contact', rule) }}
                ){{ ',' if not loop.last }}
            {%- endfor %}
        ) as profile_rule (rule_id, rule_position, is_met, field_value)

    )

{%- else %}

    evaluated as (

        -- no profile rules in the snapshot
        select
            cast(null as text) as contact_id,
            cast(null as text) as rule_id,
            cast(null as integer) as rule_position,
            cast(null as boolean) as is_met,
            cast(null as text) as field_value
        where false

    )

{%- endif %}

select * from evaluated
