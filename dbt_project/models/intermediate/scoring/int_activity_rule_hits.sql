{{ config(materialized='view') }}

-- The audit trail of the activity score: every human event before the cut-off with each
-- activity rule it matches, its age in days, decay factor 0.5^(age_days / half-life) and
-- contribution points × decay (SPEC §2.4). Their sum per contact is the unclamped activity
-- score (int_contacts_activity_scored). A view, read one contact at a time by
-- `leadflow explain`.

with

settings as (

    select activity_half_life_days as half_life_days from {{ ref('int_scoring_settings') }}

),

hits as (

    select
        points.event_id,
        points.event_seq,
        points.contact_id,
        points.event_type,
        points.occurred_at,
        points.rule_id,
        points.points,
        {{ activity_age_days('points.occurred_at') }} as age_days,
        {{ activity_decay('points.occurred_at', 'settings.half_life_days') }} as decay,
        points.points * {{ activity_decay('points.occurred_at', 'settings.half_life_days') }}
            as contribution
    from {{ source('ops', 'activity_event_points') }} as points
    cross join settings
    where
        points.rule_id is not null
        and {{ before_cutoff('points.occurred_at') }}

)

select * from hits
