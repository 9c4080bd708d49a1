-- Customer lifetime value per contact (SPEC §2.13, §3.2) for the run's date D: every contact
-- with at least one won order before the cut-off. clv = historic_revenue + predicted_revenue,
-- predicted_revenue = annual_run_rate × Σ_{y=1..H} r^y. Sum by account_id for account CLV.

with

lifetime_value as (

    select * from {{ ref('int_contacts_lifetime_valued') }}

),

contacts as (

    select
        contact_id,
        account_id,
        tenant_code
    from {{ ref('int_contacts_enriched') }}

),

final as (

    select
        lifetime_value.contact_id,
        contacts.account_id,
        contacts.tenant_code,
        lifetime_value.historic_revenue,
        lifetime_value.annual_run_rate,
        lifetime_value.predicted_revenue,
        lifetime_value.clv,
        cast(lifetime_value.retention as numeric(7, 6)) as retention,
        cast(lifetime_value.horizon_years as integer) as horizon_years,
        {{ as_of() }} as as_of
    from lifetime_value
    inner join contacts on lifetime_value.contact_id = contacts.contact_id

)

select * from final
