{{
    config(
        materialized='table',
        unlogged=True,
        indexes=[{'columns': ['contact_id'], 'unique': True}],
    )
}}

-- Unlogged (no WAL): rebuilt by every nightly run; after a crash it is empty until the next
-- build, while the marts built from it (logged) keep their rows.
-- Unclamped activity points (Σ points × 0.5^(age_days / half-life), SPEC §2.4) and the latest
-- human activity per contact, for the run's cut-off. One row per contact with any counted
-- event before the cut-off.
--
-- Normally from the incremental state that `leadflow.scoring.activity` brought up to this
-- cut-off just before (ops.activity_totals: S relative to an epoch E, so the points are
-- S × 2^((E − cut-off) / half-life)). When no state is valid for this cut-off and these rules
-- (a plain `dbt build`, or a changed configuration), the same numbers come from every event:
-- a one-time filter makes PostgreSQL run exactly one of the two branches.

with

settings as (

    select
        activity_hash,
        activity_half_life_days as half_life_days
    from {{ ref('int_scoring_settings') }}

),

valid_state as (

    select
        state.epoch,
        state.half_life_days
    from {{ source('ops', 'activity_state') }} as state
    inner join settings
        on
            state.activity_hash = settings.activity_hash
            and state.half_life_days = settings.half_life_days
    where state.cutoff = {{ cutoff() }}

),

from_state as (

    select
        totals.contact_id,
        totals.weighted_sum * power(
            2.0::float8,
            (date_part('epoch', valid_state.epoch) - date_part('epoch', {{ cutoff() }}))
            / (86400.0 * valid_state.half_life_days)
        ) as activity_points,
        totals.last_activity_at
    from {{ source('ops', 'activity_totals') }} as totals
    cross join valid_state

),

from_events as (

    select
        points.contact_id,
        {%- set decay = activity_decay('points.occurred_at', 'settings.half_life_days') %}
        coalesce(sum(points.points * {{ decay }}), 0) as activity_points,
        max(points.occurred_at) filter (where points.is_activity) as last_activity_at
    from {{ source('ops', 'activity_event_points') }} as points
    cross join settings
    where
        {{ before_cutoff('points.occurred_at') }}
        and not exists (select 1 from valid_state)
    group by points.contact_id

),

final as (

    select * from from_state
    union all
    select * from from_events

)

select * from final
