{{ config(materialized='incremental', unique_key='event_id', incremental_strategy='delete+insert') }}

-- Typed, deduplicated clickstream: one row per event id (a duplicate id or an exact duplicate
-- row appears once; the first copy ingested wins). Duplicates are rare, so only their ids go
-- through the window; every other row passes straight through. `not materialized`: DuckDB would
-- otherwise buffer the whole new batch once for the three reads of `source` (twice the time).
with source as not materialized (
    select * from {{ source('bronze', 'bronze_clickstream_events') }}
    where {{ new_rows_filter() }}
),

duplicated_ids as (
    select event_id from source group by event_id having count(*) > 1
),

deduplicated as (
    select * from source anti join duplicated_ids using (event_id)
    union all
    select * from source semi join duplicated_ids using (event_id)
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
    _ingested_at,
    _batch_id,
    {{ staged_at() }} as _staged_at
from deduplicated
{% if is_incremental() and var('backfill_start', none) is none %}
anti join {{ this }} as already_staged using (event_id)
{% endif %}
