with

source as (

    select * from {{ source('raw', 'fair_leads') }}

),

renamed as (

    select
        -- ids
        fair_lead_id,

        -- capture
        fair,
        captured_at,
        captured_by,

        -- person: fair leads are deduplicated against the pool by normalised email (SPEC §2.12)
        email,
        lower(btrim(email)) as email_normalized,
        salutation,
        first_name,
        last_name,
        position,
        phone,
        company,
        upper(cast(country as text)) as country,

        -- what they asked for
        notes,
        interests,
        consent_proof,

        -- timestamps
        landed_at

    from source

)

select * from renamed
