with

source as (

    select * from {{ source('raw', 'orders') }}

),

renamed as (

    select
        -- ids
        order_id,
        account_id,
        contact_id,

        -- order
        ordered_at,
        status,
        -- cancelled orders stay visible for reporting; only won orders count as purchases
        status = 'won' as is_won,
        source,

        -- money
        net_amount,
        cast(currency as text) as currency

    from source

)

select * from renamed
