{{ config(materialized='external', location=gold_path('fct_session_snapshots')) }}

-- The training spine: one row per (session_key, as_of), taken at each of a session's events
-- strictly before its first begin_checkout (at most `max_snapshots_per_session`), with the
-- in-session features computed only from the events up to as_of. hn_assets/online/session.py
-- computes the same features for the live service; a test holds the two equal.
with sessions as (
    select session_key, device, channel, country, timezone, purchased
    from {{ ref('int_sessions') }}
    where not is_bot
),

events as (
    select events.*
    from {{ ref('int_session_events') }} as events
    inner join sessions using (session_key)
),

first_checkout as (
    select session_key, min(event_index) as checkout_index
    from events
    where event_type in ('begin_checkout', 'purchase')
    group by session_key
),

before_checkout as (
    select events.*
    from events
    left join first_checkout using (session_key)
    where first_checkout.checkout_index is null or events.event_index < first_checkout.checkout_index
),

running as (
    select
        session_key,
        event_index as snapshot_index,
        event_timestamp as as_of,
        visitor_id,
        last_value(user_id ignore nulls) over so_far as user_id,
        last_value(product_id ignore nulls) over so_far as last_product_id,
        count(*) over so_far as events_so_far,
        count(*) filter (where event_type = 'page_view') over so_far as page_views_so_far,
        count(*) filter (where event_type = 'product_view') over so_far as product_views_so_far,
        count(distinct product_id) filter (where event_type = 'product_view') over so_far as distinct_products_so_far,
        count(*) filter (where event_type = 'add_to_cart') over so_far as cart_adds_so_far,
        count(*) filter (where event_type = 'remove_from_cart') over so_far as cart_removes_so_far,
        count(*) filter (where event_type = 'search') over so_far as searches_so_far,
        (epoch_ms(event_timestamp) - epoch_ms(first_value(event_timestamp) over so_far)) / 1000.0 as seconds_since_start
    from before_checkout
    window so_far as (partition by session_key order by event_index rows between unbounded preceding and current row)
)

select
    running.session_key || '@' || running.snapshot_index as snapshot_key,
    running.*,
    hour(timezone(sessions.timezone, running.as_of)) as local_hour,
    isodow(timezone(sessions.timezone, running.as_of)) >= 6 as is_weekend,
    sessions.device,
    sessions.channel,
    sessions.country,
    sessions.purchased
from running
inner join sessions using (session_key)
where running.snapshot_index <= {{ var('max_snapshots_per_session') }}
