with

source as (

    select * from {{ source('raw', 'installed_base') }}

),

renamed as (

    select
        -- ids
        installation_id,
        account_id,
        contact_id,
        product_id,
        serial_no,

        -- dates
        installed_on,
        next_maintenance_date

    from source

)

select * from renamed
