{{ config(materialized='view') }}

-- Contact × persona (SPEC §2.3, §3.2): how well each contact matches each persona. A view over
-- int_contacts_persona_matched, the table the nightly run computes, so the 3-rows-per-contact
-- result is stored once.

with

matches as (

    select
        contact_id,
        persona_id,
        persona_position,
        match_pct,
        is_match
    from {{ ref('int_contacts_persona_matched') }}

),

personas as (

    select
        persona_id,
        name,
        threshold
    from {{ source('ops', 'config_personas') }}

),

final as (

    select
        matches.contact_id,
        matches.persona_id as persona,
        personas.name as persona_name,
        cast(matches.match_pct as numeric(5, 2)) as match_pct,
        matches.is_match,
        cast(personas.threshold as numeric(5, 2)) as threshold,
        cast(matches.persona_position as integer) as persona_position,
        {{ as_of() }} as as_of
    from matches
    inner join personas on matches.persona_id = personas.persona_id

)

select * from final
