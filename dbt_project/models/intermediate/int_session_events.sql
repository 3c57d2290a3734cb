{{ config(materialized='view') }}

-- Every event with its session (int_events_sessionised) and its attributes (stg_clickstream_events).
select
    sessionised.session_key,
    sessionised.session_number,
    sessionised.event_index,
    events.*
from {{ ref('stg_clickstream_events') }} as events
inner join {{ ref('int_events_sessionised') }} as sessionised using (event_id)
