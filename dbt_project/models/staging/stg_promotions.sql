select
    promotion_id,
    name as promotion_name,
    category,
    product_id,
    discount_pct,
    start_date,
    end_date
from {{ source('bronze', 'bronze_promotions') }}
qualify row_number() over (partition by promotion_id order by _ingested_at desc, _source_file desc) = 1
