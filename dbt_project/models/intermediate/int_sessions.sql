{{ config(materialized='incremental', unique_key='visitor_id', incremental_strategy='delete+insert') }}
-- depends_on: {{ ref('stg_clickstream_events') }}

-- One row per session with its counts, device/channel, local time in the visitor's own
-- timezone (DST-correct through ICU) and a bot flag (many events, no think time).
with events as (
    select * from {{ ref('int_session_events') }}
    {% if is_partial_run() %}
    where visitor_id in ({{ affected_visitors(ref('stg_clickstream_events')) }})
    {% endif %}
),

-- Grouped by (visitor, n) rather than the text key built from them: cheaper to hash.
sessions as (
    select
        visitor_id || '#' || session_number as session_key,
        visitor_id,
        session_number,
        max(user_id) as user_id,
        arg_min(client_session_id, event_index) as client_session_id,
        min(event_timestamp) as session_start,
        max(event_timestamp) as session_end,
        count(*) as n_events,
        count(*) filter (where event_type = 'page_view') as page_views,
        count(*) filter (where event_type = 'search') as searches,
        count(*) filter (where event_type = 'product_view') as product_views,
        count(distinct product_id) filter (where event_type = 'product_view') as distinct_products_viewed,
        count(*) filter (where event_type = 'add_to_cart') as cart_adds,
        count(*) filter (where event_type = 'remove_from_cart') as cart_removes,
        count(*) filter (where event_type = 'begin_checkout') as checkouts,
        count(*) filter (where event_type = 'purchase') as purchase_events,
        arg_min(device, event_index) as device,
        arg_min(channel, event_index) as channel,
        arg_min(country, event_index) as country,
        arg_min(timezone, event_index) as timezone,
        arg_min(source, event_index) as source,
        bool_and(analytics_consent) as analytics_consent,
        max(_ingested_at) as _ingested_at,
        max(_staged_at) as _staged_at
    from events
    group by visitor_id, session_number
)

select
    * exclude (_ingested_at, _staged_at),
    (epoch_ms(session_end) - epoch_ms(session_start)) / 1000.0 as duration_seconds,
    timezone(timezone, session_start) as local_start,
    hour(timezone(timezone, session_start)) as local_hour,
    isodow(timezone(timezone, session_start)) as local_weekday,
    isodow(timezone(timezone, session_start)) >= 6 as is_weekend,
    cast(timezone(timezone, session_start) as date) as local_date,
    session_number > 1 as is_returning_visitor,
    n_events >= {{ var('bot_min_events') }}
        and (epoch_ms(session_end) - epoch_ms(session_start)) / 1000.0 / (n_events - 1)
            < {{ var('bot_max_mean_gap_seconds') }} as is_bot,
    purchase_events > 0 as purchased,
    _ingested_at,
    _staged_at
from sessions
