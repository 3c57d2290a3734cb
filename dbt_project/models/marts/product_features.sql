{{ config(materialized='external', location=gold_path('product_features')) }}

-- Point-in-time product signals, one row per product and day. event_timestamp is the end of
-- the day (00:00 UTC of the next day): a row holds only what was known by then.
with days as (
    select product_id, unnest(generate_series(first_day, last_day, interval 1 day))::date as day
    from (
        select product_id, min(event_date) as first_day,
               (select max(event_date) from {{ ref('stg_clickstream_events') }}) as last_day
        from {{ ref('stg_clickstream_events') }}
        where product_id is not null
        group by product_id
    )
),

engagement as (
    select
        product_id,
        event_date as day,
        count(*) filter (where event_type = 'product_view') as views,
        count(*) filter (where event_type = 'add_to_cart') as cart_adds
    from {{ ref('stg_clickstream_events') }}
    where product_id is not null
    group by all
),

sales as (
    select product_id, sold_date as day, sum(quantity) as units, sum(revenue_eur) as revenue_eur
    from {{ ref('int_order_lines') }}
    group by all
),

daily as (
    select
        days.product_id,
        days.day,
        coalesce(engagement.views, 0) as views,
        coalesce(engagement.cart_adds, 0) as cart_adds,
        coalesce(sales.units, 0) as units,
        coalesce(sales.revenue_eur, 0) as revenue_eur
    from days
    left join engagement using (product_id, day)
    left join sales using (product_id, day)
),

windowed as (
    select
        product_id,
        day,
        sum(views) over last_7 as views_7d,
        sum(views) over last_30 as views_30d,
        sum(cart_adds) over last_7 as cart_adds_7d,
        sum(cart_adds) over last_30 as cart_adds_30d,
        sum(units) over last_7 as purchases_7d,
        sum(units) over last_30 as purchases_30d,
        sum(revenue_eur) over last_7 / nullif(sum(units) over last_7, 0) as avg_selling_price_7d
    from daily
    window
        last_7 as (partition by product_id order by day rows between 6 preceding and current row),
        last_30 as (partition by product_id order by day rows between 29 preceding and current row)
),

competitor_low as (
    select product_id, price_date, min(price) as competitor_min_price
    from {{ ref('stg_competitor_prices') }}
    group by all
)

select
    windowed.product_id,
    (windowed.day + interval 1 day)::timestamptz as event_timestamp,
    windowed.day as feature_date,
    windowed.views_7d,
    windowed.views_30d,
    windowed.cart_adds_7d,
    windowed.cart_adds_30d,
    windowed.purchases_7d,
    windowed.purchases_30d,
    windowed.purchases_30d / nullif(windowed.views_30d, 0) as view_to_purchase_rate_30d,
    windowed.avg_selling_price_7d,
    inventory.stock_level,
    products.list_price,
    (products.list_price - competitor_low.competitor_min_price) / nullif(products.list_price, 0) as competitor_price_gap
from windowed
asof left join {{ ref('stg_inventory') }} as inventory
    on inventory.product_id = windowed.product_id and windowed.day >= inventory.snapshot_date
asof left join {{ ref('stg_products') }} as products
    on products.product_id = windowed.product_id and windowed.day >= products.snapshot_date
left join competitor_low
    on competitor_low.product_id = windowed.product_id and competitor_low.price_date = windowed.day
