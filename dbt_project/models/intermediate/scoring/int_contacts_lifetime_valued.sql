-- Customer lifetime value per contact (SPEC §2.13) for the run's date D: historic revenue (all
-- won orders before the cut-off) plus predicted revenue = annual run rate × Σ_{y=1..H} r^y, the
-- run rate being the net revenue of won orders within the last 365 days, i.e. ordered on a
-- UTC date in (D − 365, D]. Contacts without a won order have no row (their CLV is 0).

with

settings as (

    select
        clv_retention,
        clv_horizon_years
    from {{ ref('int_scoring_settings') }}

),

won_orders as (

    select
        contact_id,
        {{ utc_date('ordered_at') }} as order_date,
        net_amount
    from {{ ref('stg_raw__orders') }}
    where
        is_won
        and contact_id is not null
        and {{ before_cutoff('ordered_at') }}

),

revenue as (

    select
        contact_id,
        sum(net_amount) as historic_revenue,
        coalesce(
            sum(net_amount) filter (where {{ within_last_days('order_date', 365) }}), 0
        ) as annual_run_rate
    from won_orders
    group by contact_id

),

-- Σ_{y=1..H} r^y in exact numeric arithmetic (0.8 + 0.64 + 0.512 + 0.4096 + 0.32768)
retention_factor as (

    select
        settings.clv_retention as retention,
        settings.clv_horizon_years as horizon_years,
        coalesce(sum(power(settings.clv_retention, years.year_number)), 0) as factor
    from settings
    cross join lateral generate_series(1, settings.clv_horizon_years) as years (year_number)
    group by settings.clv_retention, settings.clv_horizon_years

),

final as (

    select
        revenue.contact_id,
        cast(revenue.historic_revenue as numeric(16, 2)) as historic_revenue,
        cast(revenue.annual_run_rate as numeric(16, 2)) as annual_run_rate,
        cast(round(revenue.annual_run_rate * retention_factor.factor, 2) as numeric(16, 2))
            as predicted_revenue,
        cast(
            round(revenue.historic_revenue + revenue.annual_run_rate * retention_factor.factor, 2)
            as numeric(16, 2)
        ) as clv,
        retention_factor.retention,
        retention_factor.horizon_years
    from revenue
    cross join retention_factor

)

select * from final
