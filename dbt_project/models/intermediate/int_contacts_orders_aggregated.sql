-- Purchases per contact as the run for `as_of` sees them: won orders before the cut-off.
-- A contact's orders are those carrying its contact_id; account-only orders (no contact_id)
-- belong to no contact.

with

won_orders as (

    select
        contact_id,
        ordered_at,
        net_amount
    from {{ ref('stg_raw__orders') }}
    where
        is_won
        and contact_id is not null
        and {{ before_cutoff('ordered_at') }}

),

aggregated as (

    select
        contact_id,
        -- dates are UTC calendar dates, so D - first_order_date does not depend on the
        -- session's time zone
        {{ utc_date('min(ordered_at)') }} as first_order_date,
        {{ utc_date('max(ordered_at)') }} as last_purchase_date,
        count(*) as order_count,
        sum(net_amount) as total_net_revenue
    from won_orders
    group by contact_id

)

select * from aggregated
