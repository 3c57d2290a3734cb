-- One row per product and snapshot day.
select
    product_id || '@' || snapshot_date as product_snapshot_key,
    product_id,
    snapshot_date,
    name as product_name,
    category,
    brand,
    cpu,
    ram_gb,
    storage_gb,
    gpu,
    screen_inches,
    price_tier,
    list_price,
    unit_cost,
    is_active
from {{ source('bronze', 'bronze_products') }}
{{ keep_one_copy(['product_id', 'snapshot_date']) }}
