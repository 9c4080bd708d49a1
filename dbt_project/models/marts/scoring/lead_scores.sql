-- One row per contact (SPEC §2.3, §2.4, §3.2) for the run's date D: persona, scores, grade,
-- band, matrix cell and MQL, as computed by int_contacts_scored.

with

scored as (

    select
        contact_id,
        tenant_code,
        best_persona,
        profile_score,
        grade,
        activity_score,
        band,
        matrix_cell,
        is_mql,
        lifecycle_stage,
        as_of
    from {{ ref('int_contacts_scored') }}

)

select * from scored
