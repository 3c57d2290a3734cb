select
    product_id || '@' || snapshot_date as inventory_key,
    product_id,
    snapshot_date,
    stock_level,
    units_received
from {{ source('bronze', 'bronze_inventory') }}
{{ keep_one_copy(['product_id', 'snapshot_date']) }}
