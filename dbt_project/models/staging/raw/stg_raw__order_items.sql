with

source as (

    select * from {{ source('raw', 'order_items') }}

),

renamed as (

    select
        -- ids
        order_id,
        line_no,
        product_id,

        -- line
        quantity,
        net_amount

    from source

)

select * from renamed
