select
    date as calendar_date,
    country,
    is_holiday,
    holiday_name,
    is_shopping_event
from {{ source('bronze', 'bronze_calendar') }}
{{ keep_one_copy(['date', 'country']) }}
