{{ config(materialized='external', location=gold_path('user_features')) }}

-- Point-in-time user history: a row whenever a value can change (a session starts, a purchase
-- happens, a purchase leaves the 90-day window, a session leaves the 30-day window), with the
-- values as known at event_timestamp. Windows: (t - 90 d, t] and (t - 30 d, t]; never CURRENT_DATE.
with purchases as (
    select user_id, purchased_at, amount_eur from {{ ref('int_purchases') }} where user_id is not null
),

sessions as (
    select user_id, session_start from {{ ref('int_sessions') }} where user_id is not null and not is_bot
),

views as (
    select user_id, event_timestamp, category
    from {{ ref('int_session_events') }}
    where event_type = 'product_view' and user_id is not null and category is not null
),

horizon as (
    select max(event_timestamp) as data_end from {{ ref('int_session_events') }}
),

change_points as (
    select distinct user_id, event_timestamp
    from (
        select user_id, purchased_at as event_timestamp from purchases
        union all select user_id, purchased_at + interval 90 day from purchases
        union all select user_id, session_start from sessions
        union all select user_id, session_start + interval 30 day from sessions
    )
    where event_timestamp <= (select data_end from horizon)
),

purchase_history as (
    select
        points.user_id,
        points.event_timestamp,
        count(purchases.purchased_at) as lifetime_purchase_count,
        avg(purchases.amount_eur) filter (where purchases.purchased_at > points.event_timestamp - interval 90 day)
            as avg_order_value_90d,
        max(purchases.purchased_at) as last_purchase_at
    from change_points as points
    left join purchases
        on purchases.user_id = points.user_id and purchases.purchased_at <= points.event_timestamp
    group by points.user_id, points.event_timestamp
),

session_history as (
    select points.user_id, points.event_timestamp, count(sessions.session_start) as sessions_last_30d
    from change_points as points
    left join sessions
        on sessions.user_id = points.user_id
       and sessions.session_start <= points.event_timestamp
       and sessions.session_start > points.event_timestamp - interval 30 day
    group by points.user_id, points.event_timestamp
),

category_counts as (
    select points.user_id, points.event_timestamp, views.category, count(*) as n
    from change_points as points
    inner join views on views.user_id = points.user_id and views.event_timestamp < points.event_timestamp
    group by all
),

preferred as (
    select user_id, event_timestamp, category as preferred_category
    from category_counts
    qualify row_number() over (partition by user_id, event_timestamp order by n desc, category) = 1
),

features as (
    select
        purchase_history.user_id,
        purchase_history.event_timestamp,
        purchase_history.lifetime_purchase_count,
        purchase_history.avg_order_value_90d,
        purchase_history.last_purchase_at,
        date_diff('day', purchase_history.last_purchase_at, purchase_history.event_timestamp) as days_since_last_purchase,
        preferred.preferred_category,
        session_history.sessions_last_30d
    from purchase_history
    inner join session_history using (user_id, event_timestamp)
    left join preferred using (user_id, event_timestamp)
)

select * from features
