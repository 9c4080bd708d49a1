{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        indexes=[{'columns': ['contact_id'], 'unique': True}],
        pre_hook=["{{ delete_changed_contacts() }}"],
    )
}}

-- Per contact, the best persona and the profile score (SPEC §2.3, §2.4):
-- profile_score = round(clamp(Σ points of the profile rules met, 0, 100), 2), rules read from
-- ops.config_profile_rules when the model runs (they may name best_persona), and the
-- inputs_hash they were computed from (macros/scoring/incremental.sql).
-- Incremental: a nightly run recomputes only the contacts int_scoring_changed_contacts lists
-- and deletes those that are gone; --full-refresh recomputes every contact.
-- depends_on: {{ source('ops', 'config_profile_rules') }}

{%- set rules = profile_rules() %}
{#- A full build takes every contact (int_scoring_changed_contacts lists them all then):
    no filter, which would only cost a semi-join. -#}
{%- set changed_ids = none %}
{%- if is_incremental() %}
    {%- set changed_ids -%}
        select changed.contact_id from {{ ref('int_scoring_changed_contacts') }} as changed
        where not changed.is_gone
    {%- endset %}
{%- endif %}

with

changed as (

    select
        contact_id,
        inputs_hash
    from {{ ref('int_scoring_changed_contacts') }}
    where not is_gone

),

contact as (

    {{ contacts_with_best_persona(changed_ids) }}

),

final as (

    select
        contact.contact_id,
        contact.best_persona,
        round(least(greatest({{ sum_of_met('contact', rules, 'points') }}, 0), 100), 2)
            as profile_score,
        changed.inputs_hash
    from contact
    inner join changed on contact.contact_id = changed.contact_id

)

select * from final
