select
    product_id || '@' || snapshot_date as inventory_key,
    product_id,
    snapshot_date,
    stock_level,
    units_received
from {{ source('bronze', 'bronze_inventory') }}
qualify row_number() over (partition by product_id, snapshot_date order by _ingested_at desc, _source_file desc) = 1
