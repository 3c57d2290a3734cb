{{ config(materialized='incremental', unique_key='visitor_id', incremental_strategy='delete+insert') }}

-- Events placed into sessions by event time (late arrivals land where they belong): a new
-- session starts at a visitor's first event or after more than `session_timeout_seconds` of
-- inactivity. Key: <visitor_id>#<n>, n counting the visitor's sessions from 1.
-- Incremental: every visitor with new or late events is rebuilt whole, so numbering stays right.
-- The windows run over the three key columns only, then join back: sorting wide rows is slow.
with events as (
    select * from {{ ref('stg_clickstream_events') }}
    {% if is_partial_run() %}
    where visitor_id in ({{ affected_visitors(ref('stg_clickstream_events')) }})
    {% endif %}
),

flagged as (
    select
        event_id,
        visitor_id,
        event_timestamp,
        case
            when lag(event_timestamp) over visitor_timeline is null then 1
            when epoch_ms(event_timestamp) - epoch_ms(lag(event_timestamp) over visitor_timeline)
                 > {{ var('session_timeout_seconds') }} * 1000 then 1
            else 0
        end as starts_session
    from events
    window visitor_timeline as (partition by visitor_id order by event_timestamp, event_id)
),

numbered as (
    select
        *,
        sum(starts_session) over (
            partition by visitor_id order by event_timestamp, event_id
            rows between unbounded preceding and current row
        ) as session_number
    from flagged
),

positioned as (
    select
        event_id,
        visitor_id || '#' || session_number as session_key,
        session_number,
        row_number() over (partition by visitor_id, session_number order by event_timestamp, event_id) as event_index
    from numbered
)

select positioned.session_key, positioned.session_number, positioned.event_index, events.*
from events
inner join positioned using (event_id)
