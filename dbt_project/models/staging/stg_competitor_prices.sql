select
    product_id,
    competitor,
    price_date,
    price,
    currency
from {{ source('bronze', 'bronze_competitor_prices') }}
qualify row_number() over (partition by product_id, competitor, price_date order by _ingested_at desc, _source_file desc) = 1
