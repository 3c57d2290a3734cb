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
qualify row_number() over (partition by order_id, line_number order by _ingested_at, _source_file) = 1
