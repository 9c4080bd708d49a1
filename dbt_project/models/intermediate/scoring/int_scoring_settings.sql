-- The scoring settings of this run, one row: the configuration snapshot (ops.config_scoring,
-- written by every nightly run from the YAML), or company.yaml's defaults (var
-- `scoring_defaults`) while the warehouse has no snapshot yet.

{%- set defaults = var('scoring_defaults') %}

with

snapshot as (

    select
        true as from_snapshot,
        config_snapshot.config_hash,
        config_snapshot.activity_hash,
        scoring.persona_threshold,
        scoring.activity_half_life_days,
        scoring.grade_a,
        scoring.grade_b,
        scoring.grade_c,
        scoring.band_1,
        scoring.band_2,
        scoring.band_3,
        scoring.mql_cells,
        scoring.clv_retention,
        scoring.clv_horizon_years,
        scoring.new_customer_days
    from {{ source('ops', 'config_scoring') }} as scoring
    cross join {{ source('ops', 'config_snapshot') }} as config_snapshot

),

defaults as (

    select
        false as from_snapshot,
        cast(null as text) as config_hash,
        -- no hash: a stored activity state is never taken for valid without a snapshot
        cast(null as text) as activity_hash,
        cast('{{ defaults.persona_threshold }}' as numeric) as persona_threshold,
        cast('{{ defaults.activity_half_life_days }}' as double precision)
            as activity_half_life_days,
        cast('{{ defaults.grade_a }}' as numeric) as grade_a,
        cast('{{ defaults.grade_b }}' as numeric) as grade_b,
        cast('{{ defaults.grade_c }}' as numeric) as grade_c,
        cast('{{ defaults.band_1 }}' as numeric) as band_1,
        cast('{{ defaults.band_2 }}' as numeric) as band_2,
        cast('{{ defaults.band_3 }}' as numeric) as band_3,
        {%- set mql_cells = "'" ~ (defaults.mql_cells | join("', '")) ~ "'" %}
        cast(array[{{ mql_cells }}] as text[]) as mql_cells,
        cast('{{ defaults.clv_retention }}' as numeric) as clv_retention,
        cast('{{ defaults.clv_horizon_years }}' as integer) as clv_horizon_years,
        cast('{{ var("new_customer_days") }}' as integer) as new_customer_days
    where not exists (select 1 from snapshot)

),

final as (

    select * from snapshot
    union all
    select * from defaults

)

-- One row (the snapshot tables hold one each); `limit 1` also tells the planner so.
select * from final
order by from_snapshot desc
limit 1
