{{ config(materialized='incremental', unique_key='event_id', incremental_strategy='delete+insert') }}

-- Typed, deduplicated clickstream: one row per event id (a duplicate id or an exact duplicate
-- row appears once; the first copy ingested wins). Duplicates are rare, so only their ids go
-- through the window; every other row passes straight through.
with source as (
    select * from {{ source('bronze', 'bronze_clickstream_events') }}
    where {{ new_rows_filter() }}
),

duplicated_ids as (
    select event_id from source group by event_id having count(*) > 1
),

deduplicated as (
    select * from source
    where event_id not in (select event_id from duplicated_ids)
    union all
    select * from source
    where event_id in (select event_id from duplicated_ids)
    {{ keep_one_copy(['event_id'], keep='first') }}
)

select
    event_id,
    event_type,
    event_timestamp,
    event_date,
    visitor_id,
    client_session_id,
    user_id,
    analytics_consent,
    product_id,
    category,
    brand,
    price,
    search_query,
    page_type,
    order_id,
    device,
    channel,
    country,
    timezone,
    source,
    schema_version,
    _ingested_at
from deduplicated
{% if is_incremental() and var('backfill_start', none) is none %}
where event_id not in (select event_id from {{ this }})
{% endif %}
