with

source as (

    select * from {{ source('raw', 'events') }}

),

renamed as (

    select
        -- ids
        event_id,
        event_seq,
        contact_id,
        visitor_id,

        -- what and when
        event_type,
        occurred_at,
        -- machine opens/clicks are kept but excluded from scores and rates (SPEC §2.2)
        is_machine,

        -- context
        campaign_id,
        step_id,
        mailing_id,
        link_id,
        link_tag,
        asset_id,
        url,
        bounce_type,
        user_agent,
        properties,

        -- timestamps
        loaded_at

    from source

)

select * from renamed
