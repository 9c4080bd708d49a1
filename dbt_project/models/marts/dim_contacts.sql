-- One row per contact of the global pool, as of the run's date D: who they are, their
-- company, where they stand as a customer (SPEC §2.1), their best persona, scores, matrix
-- cell and lifecycle stage (SPEC §2.3, §2.4) and CLV (SPEC §2.13). The BI contract: columns
-- may grow, names and meanings stay. It has a column for every field of the filter
-- language's field catalogue (leadflow/config/fields.py), which segments compile against.

with

contacts as (

    -- int_contacts_enriched with the scores marts.lead_scores holds, computed alongside it
    -- rather than read from it
    select * from {{ ref('int_contacts_scored') }}

),

routed as (

    -- owners assigned by leadflow's lead routing (leadflow.routing); an owner from the CRM wins
    select
        contact_id,
        owner_name
    from {{ source('ops', 'lead_assignments') }}

),

final as (

    select
        contacts.contact_id,
        contacts.email,
        contacts.first_name,
        contacts.last_name,
        contacts.salutation,
        contacts.language,
        contacts.country,
        contacts.position,
        contacts.decision_role,
        contacts.account_id,
        contacts.account_name,
        contacts.industry,
        contacts.employee_count,
        contacts.annual_revenue,
        contacts.region,
        contacts.postcode,
        coalesce(contacts.owner, routed.owner_name) as owner,
        contacts.source,
        contacts.consent_status,
        contacts.created_at,
        contacts.first_order_date,
        contacts.last_purchase_date,
        contacts.order_count,
        contacts.total_revenue,
        contacts.customer_status,
        -- the CRM owns the stages after MQL; lead scoring turns qualifying leads into `mql`
        contacts.lifecycle_stage,
        contacts.tenant_code,
        contacts.as_of,
        contacts.tags,
        contacts.interests,
        contacts.account_country,
        contacts.best_persona,
        contacts.profile_score,
        contacts.grade,
        contacts.activity_score,
        contacts.band,
        contacts.matrix_cell,
        contacts.is_mql,
        contacts.clv,
        contacts.last_activity_at
    from contacts
    left join routed on contacts.contact_id = routed.contact_id

)

select * from final
