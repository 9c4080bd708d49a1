with

source as (

    select * from {{ source('raw', 'products') }}

),

renamed as (

    select
        -- ids
        product_id,
        sku,

        -- product
        name as product_name,
        family as product_family,
        maintenance_interval_months,

        -- money (EUR)
        list_price,
        unit_cost

    from source

)

select * from renamed
