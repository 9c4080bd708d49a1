{{
    config(
        materialized='table',
        unlogged=True,
        indexes=[{'columns': ['contact_id'], 'unique': True}],
    )
}}

-- Unlogged (no WAL): rebuilt by every nightly run; after a crash it is empty until the next
-- build, while the marts built from it (logged) keep their rows.
-- Every contact with the facts persona criteria and profile rules compare (SPEC §2.3/§2.4),
-- one column per field of the field catalogue (leadflow/config/fields.py), named like the
-- field: the contact, its company, its purchases, CLV and latest activity, as of the run's
-- date D. marts.dim_contacts is this plus the persona and the scores.
--
-- `lifecycle_stage` here is the stage before lead scoring: the CRM's stage (an `mql` the CRM
-- echoes back is recomputed, so it counts as `lead`), else `customer` with a won order, else
-- `lead`. Scoring turns qualifying leads into `mql` (lead_scores, dim_contacts).

with

settings as (

    select new_customer_days from {{ ref('int_scoring_settings') }}

),

contacts as (

    select
        contact_id,
        account_id,
        email_normalized,
        salutation,
        first_name,
        last_name,
        language,
        country,
        position,
        decision_role,
        owner,
        source,
        tags,
        interests,
        consent_status,
        crm_lifecycle_stage,
        created_at
    from {{ ref('stg_raw__contacts') }}

),

accounts as (

    select
        account_id,
        account_name,
        industry,
        employee_count,
        annual_revenue,
        country,
        region,
        postcode
    from {{ ref('stg_raw__accounts') }}

),

purchases as (

    select
        contact_id,
        first_order_date,
        last_purchase_date,
        order_count,
        total_net_revenue
    from {{ ref('int_contacts_orders_aggregated') }}

),

lifetime_value as (

    select
        contact_id,
        clv
    from {{ ref('int_contacts_lifetime_valued') }}

),

activity as (

    select
        contact_id,
        last_activity_at
    from {{ ref('int_contacts_activity_scored') }}

),

joined as (

    select
        contacts.contact_id,
        contacts.email_normalized as email,
        contacts.salutation,
        contacts.first_name,
        contacts.last_name,
        contacts.language,
        -- a contact without its own country (fair badge, web form) lives where its company is
        coalesce(contacts.country, accounts.country) as country,
        contacts.position,
        contacts.decision_role,
        contacts.owner,
        contacts.source,
        contacts.tags,
        contacts.interests,
        contacts.consent_status,
        contacts.created_at,
        contacts.crm_lifecycle_stage,
        contacts.account_id,
        accounts.account_name,
        accounts.industry,
        accounts.employee_count,
        accounts.annual_revenue,
        accounts.region,
        accounts.postcode,
        accounts.country as account_country,
        purchases.first_order_date,
        purchases.last_purchase_date,
        coalesce(purchases.order_count, 0) as order_count,
        coalesce(purchases.total_net_revenue, 0) as total_revenue,
        coalesce(lifetime_value.clv, 0) as clv,
        activity.last_activity_at
    from contacts
    left join accounts on contacts.account_id = accounts.account_id
    left join purchases on contacts.contact_id = purchases.contact_id
    left join lifetime_value on contacts.contact_id = lifetime_value.contact_id
    left join activity on contacts.contact_id = activity.contact_id

),

final as (

    select
        joined.contact_id,
        joined.email,
        joined.salutation,
        joined.first_name,
        joined.last_name,
        joined.language,
        joined.country,
        joined.position,
        joined.decision_role,
        joined.owner,
        joined.source,
        joined.tags,
        joined.interests,
        joined.consent_status,
        joined.created_at,
        joined.crm_lifecycle_stage,
        -- before scoring: an `mql` echoed by the CRM is recomputed, so it starts as a lead
        case
            when joined.crm_lifecycle_stage is not null and joined.crm_lifecycle_stage <> 'mql'
                then joined.crm_lifecycle_stage
            when joined.order_count > 0 then 'customer'
            else 'lead'
        end as lifecycle_stage,
        -- SPEC §2.1: new while D - first_order_date < new_customer_days (365)
        case
            when joined.first_order_date is null then 'lead'
            when {{ as_of() }} - joined.first_order_date < settings.new_customer_days
                then 'new_customer'
            else 'existing_customer'
        end as customer_status,
        joined.account_id,
        joined.account_name,
        joined.industry,
        joined.employee_count,
        joined.annual_revenue,
        joined.region,
        joined.postcode,
        joined.account_country,
        joined.first_order_date,
        joined.last_purchase_date,
        cast(joined.order_count as integer) as order_count,
        cast(joined.total_revenue as numeric(16, 2)) as total_revenue,
        cast(joined.clv as numeric(16, 2)) as clv,
        joined.last_activity_at,
        {{ tenant_code_for_country('joined.country') }} as tenant_code,
        {{ as_of() }} as as_of
    from joined
    cross join settings

)

select * from final
