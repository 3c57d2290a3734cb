select
    date as calendar_date,
    country,
    is_holiday,
    holiday_name,
    is_shopping_event
from {{ source('bronze', 'bronze_calendar') }}
qualify row_number() over (partition by date, country order by _ingested_at desc, _source_file desc) = 1
