{{ config(post_hook='analyze {{ this }}') }}

-- One row per contact (SPEC §2.4, §3.2): profile score and grade, activity score and band,
-- matrix cell and MQL flag for the run's date D.
-- Scores are rounded to 2 decimals first; grade and band come from the rounded scores.
-- An MQL is a lead-stage contact (no won order up to D and no CRM stage beyond lead: the CRM
-- has none, `lead`, or the `mql` leadflow pushed) whose cell is one of the MQL cells.

with

settings as (

    select
        grade_a,
        grade_b,
        grade_c,
        band_1,
        band_2,
        band_3,
        mql_cells
    from {{ ref('int_scoring_settings') }}

),

contacts as (

    select
        contact_id,
        tenant_code,
        lifecycle_stage,
        order_count
    from {{ ref('int_contacts_enriched') }}

),

profile as (

    select
        contact_id,
        best_persona,
        profile_score
    from {{ ref('int_contacts_profile_scored') }}

),

activity as (

    select
        contact_id,
        activity_points
    from {{ ref('int_contacts_activity_scored') }}

),

scored as (

    select
        contacts.contact_id,
        contacts.tenant_code,
        profile.best_persona,
        profile.profile_score,
        -- clamp in double precision, then round the decimal
        round(
            cast(least(greatest(coalesce(activity.activity_points, 0), 0), 100) as numeric), 2
        ) as activity_score,
        contacts.lifecycle_stage = 'lead' and contacts.order_count = 0 as is_lead_stage,
        contacts.lifecycle_stage as stage_before_scoring
    from contacts
    inner join profile on contacts.contact_id = profile.contact_id
    left join activity on contacts.contact_id = activity.contact_id

),

graded as (

    select
        scored.*,
        case
            when scored.profile_score >= settings.grade_a then 'A'
            when scored.profile_score >= settings.grade_b then 'B'
            when scored.profile_score >= settings.grade_c then 'C'
            else 'D'
        end as grade,
        case
            when scored.activity_score >= settings.band_1 then 1
            when scored.activity_score >= settings.band_2 then 2
            when scored.activity_score >= settings.band_3 then 3
            else 4
        end as band,
        settings.mql_cells
    from scored
    cross join settings

),

final as (

    select
        contact_id,
        tenant_code,
        best_persona,
        cast(profile_score as numeric(5, 2)) as profile_score,
        grade,
        cast(activity_score as numeric(5, 2)) as activity_score,
        band,
        grade || band as matrix_cell,
        is_lead_stage and (grade || band) = any(mql_cells) as is_mql,
        case
            when is_lead_stage and (grade || band) = any(mql_cells) then 'mql'
            else stage_before_scoring
        end as lifecycle_stage,
        {{ as_of() }} as as_of
    from graded

)

select * from final
