with

source as (

    select * from {{ source('raw', 'accounts') }}

),

renamed as (

    select
        -- ids
        account_id,

        -- company
        name as account_name,
        industry,
        employee_count,
        annual_revenue,

        -- location: char(2) pads and compares oddly; text is what every model expects
        upper(cast(country as text)) as country,
        region,
        postcode,

        -- timestamps
        created_at,
        updated_at

    from source

)

select * from renamed
