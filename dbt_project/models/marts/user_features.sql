{{ config(materialized='external', location=gold_path('user_features')) }}

-- Point-in-time user history: a row whenever a value can change (a session starts, a purchase
-- happens, a purchase leaves the 90-day window, a session leaves the 30-day window), with the
-- values as known at event_timestamp. Windows: (t - 90 d, t] and (t - 30 d, t]; never CURRENT_DATE.
-- Only what the customer consented to at the time counts (dated consent): purchases come without
-- a user where there was none (int_purchases); a session or view counts when the profile version
-- valid at its time has analytics consent. A withdrawal stops new history from its updated_at;
-- what was consented before stays. Users without any profile (public event logs) are decided by
-- their events' own consent, which the ingest applied (no user id without it).
with purchases as (
    select user_id, purchased_at, amount_eur from {{ ref('int_purchases') }} where user_id is not null
),

consent as (
    select user_id, valid_from, consent_analytics from {{ ref('int_customer_consent_history') }}
),

profiled as (
    select distinct user_id from consent
),

sessions as (
    select sessions.user_id, sessions.session_start
    from {{ ref('int_sessions') }} as sessions
    asof left join consent
        on sessions.user_id = consent.user_id and sessions.session_start >= consent.valid_from
    where sessions.user_id is not null and not sessions.is_bot
      and coalesce(consent.consent_analytics, sessions.user_id not in (select user_id from profiled))
),

views as (
    select events.user_id, events.event_timestamp, events.category
    from {{ ref('int_session_events') }} as events
    asof left join consent
        on events.user_id = consent.user_id and events.event_timestamp >= consent.valid_from
    where events.event_type = 'product_view' and events.user_id is not null and events.category is not null
      and coalesce(consent.consent_analytics, events.user_id not in (select user_id from profiled))
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
