-- Products: the latest catalogue snapshot, or for sources without a catalogue feed what the
-- clickstream says about them (category, brand, last price).
with catalogue as (
    select * from {{ ref('stg_products') }}
    qualify row_number() over (partition by product_id order by snapshot_date desc) = 1
),

seen as (
    select
        product_id,
        arg_max(category, event_timestamp) as category,
        arg_max(brand, event_timestamp) as brand,
        arg_max(price, event_timestamp) as last_seen_price,
        min(event_timestamp) as first_seen_at
    from {{ ref('stg_clickstream_events') }}
    where product_id is not null
    group by product_id
),

stock as (
    select product_id, stock_level
    from {{ ref('stg_inventory') }}
    qualify row_number() over (partition by product_id order by snapshot_date desc) = 1
)

select
    coalesce(catalogue.product_id, seen.product_id) as product_id,
    catalogue.product_name,
    coalesce(catalogue.category, seen.category) as category,
    coalesce(catalogue.brand, seen.brand) as brand,
    catalogue.cpu,
    catalogue.ram_gb,
    catalogue.storage_gb,
    catalogue.gpu,
    catalogue.screen_inches,
    catalogue.price_tier,
    coalesce(catalogue.list_price, seen.last_seen_price) as list_price,
    catalogue.unit_cost,
    stock.stock_level,
    seen.first_seen_at,
    catalogue.product_id is not null as in_catalogue
from catalogue
full outer join seen using (product_id)
left join stock on stock.product_id = coalesce(catalogue.product_id, seen.product_id)
