select
    product_id,
    competitor,
    price_date,
    price,
    currency
from {{ source('bronze', 'bronze_competitor_prices') }}
{{ keep_one_copy(['product_id', 'competitor', 'price_date']) }}
