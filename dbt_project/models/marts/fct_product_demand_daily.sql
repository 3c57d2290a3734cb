{{ config(materialized='external', location=gold_path('fct_product_demand_daily')) }}

-- Daily demand per product (zero-sale days included), revenue in EUR, with promotion and
-- holiday flags: the input of demand forecasting and pricing.
with products as (
    select product_id, category from {{ ref('dim_products') }}
),

days as (
    select unnest(generate_series(min(sold_date), max(sold_date), interval 1 day))::date as day
    from {{ ref('int_order_lines') }}
),

sales as (
    select product_id, sold_date as day, sum(quantity) as units, sum(revenue_eur) as revenue_eur
    from {{ ref('int_order_lines') }}
    group by all
),

calendar as (
    select calendar_date as day, bool_or(is_holiday) as is_holiday_any_market,
           count(*) filter (where is_holiday) as markets_on_holiday, bool_or(is_shopping_event) as is_shopping_event
    from {{ ref('stg_calendar') }}
    group by all
),

grid as (
    select products.product_id, products.category, days.day from products cross join days
)

select
    grid.product_id || '@' || grid.day as product_day_key,
    grid.product_id,
    grid.day,
    coalesce(sales.units, 0) as units,
    coalesce(sales.revenue_eur, 0) as revenue_eur,
    sales.revenue_eur / nullif(sales.units, 0) as avg_price_eur,
    exists (
        select 1 from {{ ref('stg_promotions') }} as promo
        where grid.day between promo.start_date and promo.end_date
          and (promo.product_id = grid.product_id or promo.category = grid.category
               or (promo.product_id is null and promo.category is null))
    ) as is_promoted,
    coalesce(calendar.is_holiday_any_market, false) as is_holiday_any_market,
    coalesce(calendar.markets_on_holiday, 0) as markets_on_holiday,
    coalesce(calendar.is_shopping_event, false) as is_shopping_event
from grid
left join sales using (product_id, day)
left join calendar using (day)
