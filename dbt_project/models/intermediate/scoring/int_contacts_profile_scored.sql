{{
    config(
        materialized='table',
        post_hook='analyze {{ this }}',
        indexes=[{'columns': ['contact_id'], 'unique': True}],
    )
}}

-- Best persona and profile (fit) score per contact (SPEC §2.3, §2.4).
-- best_persona: the matching persona with the highest match_pct, ties to the persona listed
-- first; NULL when none matches. profile_points: Σ points of the profile rules met (rules may
-- name best_persona); profile_score = clamp(profile_points, 0, 100), rounded to 2 decimals.
-- depends_on: {{ source('ops', 'config_profile_rules') }}

{%- set rules = profile_rules() %}

with

best_persona as (

    select distinct on (contact_id)
        contact_id,
        persona_id as best_persona,
        match_pct as best_persona_match_pct
    from {{ ref('int_contacts_persona_matched') }}
    where is_match
    order by contact_id asc, match_pct desc, persona_position asc

),

contact as (

    select
        enriched.*,
        best_persona.best_persona,
        best_persona.best_persona_match_pct
    from {{ ref('int_contacts_enriched') }} as enriched
    left join best_persona on enriched.contact_id = best_persona.contact_id

),

scored as (

    select
        contact.contact_id,
        contact.best_persona,
        contact.best_persona_match_pct,
        {{ sum_of_met('contact', rules, 'points') }} as profile_points
    from contact

),

final as (

    select
        contact_id,
        best_persona,
        best_persona_match_pct,
        profile_points,
        round(least(greatest(profile_points, 0), 100), 2) as profile_score
    from scored

)

select * from final
