with

source as (

    select * from {{ source('raw', 'contacts') }}

),

renamed as (

    select
        -- ids
        contact_id,
        account_id,

        -- address: the pool compares emails trimmed and case-insensitive (SPEC §2.1)
        email,
        lower(btrim(email)) as email_normalized,

        -- person
        salutation,
        first_name,
        last_name,
        lower(cast(language as text)) as language,
        upper(cast(country as text)) as country,
        position,
        decision_role,

        -- ownership and origin
        owner,
        source,
        tags,
        interests,

        -- consent
        consent_status,
        consent_at,

        -- the CRM's stage; blank means "the CRM has none"
        nullif(lower(btrim(lifecycle_stage)), '') as crm_lifecycle_stage,

        custom,

        -- timestamps
        created_at,
        updated_at

    from source

)

select * from renamed
