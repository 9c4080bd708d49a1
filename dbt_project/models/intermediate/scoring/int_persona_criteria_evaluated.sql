{{ config(materialized='view') }}

-- The audit trail of persona matching: one row per contact × persona criterion, whether it
-- is met and the contact's value of the field. The same predicates as
-- int_contacts_persona_matched (macros/scoring/conditions.sql); a view, read one contact at a
-- time by `leadflow explain`.
-- depends_on: {{ source('ops', 'config_persona_criteria') }}, {{ ref('int_contacts_enriched') }}

{%- set criteria = persona_criteria() %}

with

{%- if criteria %}

    evaluated as (

        select
            contact.contact_id,
            criterion.persona_id,
            criterion.criterion_position,
            criterion.is_met,
            criterion.field_value
        from {{ ref('int_contacts_enriched') }} as contact
        cross join lateral (
            values
            {%- for criterion in criteria %}
                (
                    {{ scoring_string(criterion['persona_id']) }},
                    {{ criterion['position'] }},
                    {{ condition_predicate('contact', criterion) }},
                    {{ condition_field_text('contact', criterion) }}
                ){{ ',' if not loop.last }}
            {%- endfor %}
        ) as criterion (persona_id, criterion_position, is_met, field_value)

    )

{%- else %}

    evaluated as (

        -- no personas in the snapshot
        select
            cast(null as text) as contact_id,
            cast(null as text) as persona_id,
            cast(null as integer) as criterion_position,
            cast(null as boolean) as is_met,
            cast(null as text) as field_value
        where false

    )

{%- endif %}

select * from evaluated
