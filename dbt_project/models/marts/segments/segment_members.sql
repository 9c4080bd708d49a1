-- Segment membership (SPEC §2.5, §3.2) for the run's date D: one row per segment x contact.
-- The filters are compiled to SQL by leadflow's one filter compiler, which the nightly run
-- uses to write every configured segment's members for D into ops.segment_members after
-- marts.dim_contacts is built (leadflow.segments.materialize); this model publishes that date.

with

members as (

    select
        segment,
        contact_id,
        as_of
    from {{ source('ops', 'segment_members') }}
    where as_of = {{ as_of() }}

),

final as (

    select
        members.segment,
        members.contact_id,
        members.as_of
    from members

)

select * from final
