{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        indexes=[{'columns': ['contact_id']}],
        pre_hook=["{{ delete_changed_contacts() }}"],
    )
}}

-- Every contact × every persona of the configuration snapshot (SPEC §2.3):
-- match_pct = 100 × Σ weight of the criteria met / Σ weight of all criteria, rounded to 2
-- decimals; is_match = match_pct ≥ the persona's threshold (the rounded value is compared).
-- The criteria are read from ops.config_persona_criteria when the model runs and evaluated
-- in one pass over the contacts (macros/scoring/conditions.sql); a criterion on a NULL field
-- is not met.
-- Incremental: a nightly run recomputes only the contacts int_scoring_changed_contacts lists
-- (their inputs changed, or the configuration did) and deletes the rows of contacts that are
-- gone; --full-refresh recomputes every contact (macros/scoring/incremental.sql).
-- depends_on: {{ source('ops', 'config_persona_criteria') }}, {{ ref('int_contacts_enriched') }},
-- {{ ref('int_scoring_changed_contacts') }}

{%- set personas = criteria_by_persona(persona_criteria()) %}

with

personas as (

    select
        personas.persona_id,
        personas.position as persona_position,
        personas.threshold,
        sum(criteria.weight) as total_weight
    from {{ source('ops', 'config_personas') }} as personas
    inner join {{ source('ops', 'config_persona_criteria') }} as criteria
        on personas.persona_id = criteria.persona_id
    group by personas.persona_id, personas.position, personas.threshold

),

-- Per contact, the weight met of every persona (one column expression each), unpivoted into
-- a row per persona by zipping two arrays; a single pass with no join.
met as (

    {%- if personas %}

        select
            contact.contact_id,
            unnest(array[
                {%- for persona_id in personas %}
                {{ scoring_string(persona_id) }}{{ ',' if not loop.last }}
                {%- endfor %}
            ]) as persona_id,
            unnest(array[
                {%- for persona_id, criteria in personas.items() %}
                {{ sum_of_met('contact', criteria, 'weight') }}{{ ',' if not loop.last }}
                {%- endfor %}
            ]) as met_weight
        from {{ ref('int_contacts_enriched') }} as contact
        where {{ changed_contacts_filter('contact') }}

    {%- else %}

        -- no personas in the snapshot
        select
            cast(null as text) as contact_id,
            cast(null as text) as persona_id,
            cast(null as numeric) as met_weight
        where false

    {%- endif %}

),

final as (

    select
        met.contact_id,
        met.persona_id,
        personas.persona_position,
        round(100 * met.met_weight / personas.total_weight, 2) as match_pct,
        round(100 * met.met_weight / personas.total_weight, 2) >= personas.threshold as is_match
    from met
    inner join personas on met.persona_id = personas.persona_id

)

select * from final
