-- The scoring matrix (SPEC §2.4, §3.2): contacts per tenant and matrix cell, all 16 cells
-- (A1 … D4) for every tenant of the configuration (and any other tenant a contact belongs
-- to), empty cells included with 0.

with

scores as (

    select
        tenant_code,
        matrix_cell,
        lifecycle_stage,
        is_mql
    from {{ ref('lead_scores') }}

),

tenants as (

    select tenant_code from {{ source('ops', 'config_tenants') }}
    union
    select distinct tenant_code from scores

),

cells as (

    select
        grades.grade,
        bands.band,
        grades.grade || bands.band as matrix_cell
    from (values ('A'), ('B'), ('C'), ('D')) as grades (grade)
    cross join (values (1), (2), (3), (4)) as bands (band)

),

counted as (

    select
        tenant_code,
        matrix_cell,
        count(*) as contacts,
        count(*) filter (where lifecycle_stage in ('lead', 'mql')) as leads,
        count(*) filter (where is_mql) as mqls
    from scores
    group by tenant_code, matrix_cell

),

final as (

    select
        tenants.tenant_code,
        cells.matrix_cell,
        cells.grade,
        cells.band,
        cast(coalesce(counted.contacts, 0) as integer) as contacts,
        cast(coalesce(counted.leads, 0) as integer) as leads,
        cast(coalesce(counted.mqls, 0) as integer) as mqls,
        {{ as_of() }} as as_of
    from tenants
    cross join cells
    left join counted
        on
            tenants.tenant_code = counted.tenant_code
            and cells.matrix_cell = counted.matrix_cell

)

select * from final
