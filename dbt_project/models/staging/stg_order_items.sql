select
    order_id || '-' || line_number as order_line_key,
    order_id,
    line_number,
    order_timestamp,
    event_date as order_date,
    product_id,
    quantity,
    unit_price,
    discount_amount,
    currency
from {{ source('bronze', 'bronze_order_items') }}
{{ keep_one_copy(['order_id', 'line_number'], keep='first') }}
