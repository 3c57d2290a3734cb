select
    promotion_id,
    name as promotion_name,
    category,
    product_id,
    discount_pct,
    start_date,
    end_date
from {{ source('bronze', 'bronze_promotions') }}
{{ keep_one_copy(['promotion_id']) }}
