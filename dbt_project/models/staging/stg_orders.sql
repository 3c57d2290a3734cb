select
    order_id,
    customer_id as user_id,
    order_timestamp,
    event_date as order_date,
    order_channel,
    store_id,
    payment_type,
    currency,
    discount_amount,
    total_amount,
    source
from {{ source('bronze', 'bronze_orders') }}
{{ keep_one_copy(['order_id'], keep='first') }}
