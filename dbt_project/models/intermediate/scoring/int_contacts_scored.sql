{{ config(materialized='ephemeral') }}

-- Every contact of int_contacts_enriched with its scores (SPEC §2.3, §2.4) for the run's
-- date D; marts.lead_scores writes out the scores, marts.dim_contacts the whole row.
-- Ephemeral: each of the two marts computes it inline, so neither waits for the other and
-- dbt builds them side by side (docs/benchmarks.md).
--
-- best_persona: the matching persona with the highest match_pct, ties to the persona listed
-- first, NULL when none matches;
-- profile_score = clamp(Σ points of the profile rules met, 0, 100) (rules may name
-- best_persona); both from int_contacts_profile_scored, which keeps them per contact and
-- recomputes only contacts whose inputs changed;
-- activity_score = clamp(activity points, 0, 100) (int_contacts_activity_scored);
-- both rounded to 2 decimals first, grade and band come from the rounded scores;
-- an MQL is a lead-stage contact (no won order up to D and no CRM stage beyond lead: the CRM
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

contact as (

    select
        enriched.*,
        profile.best_persona,
        profile.profile_score
    from {{ ref('int_contacts_enriched') }} as enriched
    inner join {{ ref('int_contacts_profile_scored') }} as profile
        on enriched.contact_id = profile.contact_id

),

activity as (

    select
        contact_id,
        activity_points
    from {{ ref('int_contacts_activity_scored') }}

),

scored as (

    select
        contact.*,
        -- clamp in double precision, then round the decimal
        round(
            cast(least(greatest(coalesce(activity.activity_points, 0), 0), 100) as numeric), 2
        ) as activity_score,
        contact.lifecycle_stage = 'lead' and contact.order_count = 0 as is_lead_stage
    from contact
    left join activity on contact.contact_id = activity.contact_id
    -- `offset 0` keeps PostgreSQL from inlining this subquery into the next ones, which would
    -- evaluate the score expressions once per reference (a dozen times per contact). It skips
    -- no row, so no ORDER BY is needed (AM09).
    offset 0  -- noqa: AM09

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
    offset 0  -- noqa: AM09

),

celled as (

    select
        graded.*,
        graded.grade || graded.band as matrix_cell
    from graded
    offset 0  -- noqa: AM09

),

final as (

    select
        contact_id,
        email,
        first_name,
        last_name,
        salutation,
        language,
        country,
        position,
        decision_role,
        account_id,
        account_name,
        industry,
        employee_count,
        annual_revenue,
        region,
        postcode,
        owner,
        source,
        consent_status,
        created_at,
        first_order_date,
        last_purchase_date,
        order_count,
        total_revenue,
        customer_status,
        tenant_code,
        tags,
        interests,
        account_country,
        clv,
        last_activity_at,
        best_persona,
        cast(profile_score as numeric(5, 2)) as profile_score,
        grade,
        cast(activity_score as numeric(5, 2)) as activity_score,
        band,
        matrix_cell,
        is_lead_stage and matrix_cell = any(mql_cells) as is_mql,
        -- the stage before scoring, or `mql`
        case
            when is_lead_stage and matrix_cell = any(mql_cells) then 'mql'
            else lifecycle_stage
        end as lifecycle_stage,
        as_of
    from celled

)

select * from final
