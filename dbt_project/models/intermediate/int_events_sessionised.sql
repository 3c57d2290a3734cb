{{ config(materialized='incremental', unique_key='visitor_id', incremental_strategy='delete+insert') }}

-- Sessionisation, narrow: the session of every event. A new session starts at a visitor's first
-- event or after more than `session_timeout_seconds` of inactivity, by event time (late arrivals
-- land where they belong). Key: <visitor_id>#<n>, n counting the visitor's sessions from 1.
-- Only keys go through the windows (sorting wide rows is slow); int_session_events joins the
-- event attributes back. Incremental: every visitor with new or late events is rebuilt whole,
-- so the numbering stays right.
with events as (
    select event_id, visitor_id, event_timestamp, _ingested_at, _staged_at
    from {{ ref('stg_clickstream_events') }}
    {% if is_partial_run() %}
    where visitor_id in ({{ affected_visitors(ref('stg_clickstream_events')) }})
    {% endif %}
),

flagged as (
    select
        *,
        row_number() over visitor_timeline as visitor_event_number,
        coalesce(
            epoch_ms(event_timestamp) - epoch_ms(lag(event_timestamp) over visitor_timeline)
                > {{ var('session_timeout_seconds') }} * 1000,
            true
        ) as starts_session
    from events
    window visitor_timeline as (partition by visitor_id order by event_timestamp, event_id)
),

numbered as (
    select
        *,
        count(*) filter (where starts_session) over so_far as session_number,
        max(visitor_event_number) filter (where starts_session) over so_far as session_first_event_number
    from flagged
    window so_far as (
        partition by visitor_id order by event_timestamp, event_id
        rows between unbounded preceding and current row
    )
)

select
    event_id,
    visitor_id,
    visitor_id || '#' || session_number as session_key,
    session_number,
    visitor_event_number - session_first_event_number + 1 as event_index,
    _ingested_at,
    _staged_at
from numbered
