-- Every product sold, in EUR: order lines converted with the day's exchange rate (the latest
-- rate on or before the order date), plus purchase events of sources that have no order feed.
-- "No order feed" is decided per source, not per order id: a purchase event of a visitor without
-- analytics consent carries no order id (it would join the customer's order), and must not count
-- a second time beside its order.
with order_lines as (
    select
        items.order_line_key,
        items.order_id,
        orders.user_id,
        items.order_timestamp as sold_at,
        items.order_date as sold_date,
        items.product_id,
        items.quantity,
        items.unit_price * coalesce(rates.rate_to_eur, case when items.currency = 'EUR' then 1.0 end) as unit_price_eur,
        items.discount_amount * coalesce(rates.rate_to_eur, case when items.currency = 'EUR' then 1.0 end) as discount_eur,
        'orders' as origin
    from {{ ref('stg_order_items') }} as items
    left join {{ ref('stg_orders') }} as orders using (order_id)
    asof left join {{ ref('stg_exchange_rates') }} as rates
        on items.currency = rates.currency and items.order_date >= rates.rate_date
),

event_lines as (
    select
        event_id as order_line_key,
        coalesce(order_id, event_id) as order_id,
        user_id,
        event_timestamp as sold_at,
        event_date as sold_date,
        product_id,
        1 as quantity,
        price as unit_price_eur,
        0.0 as discount_eur,
        'clickstream' as origin
    from {{ ref('stg_clickstream_events') }}
    where event_type = 'purchase'
      and product_id is not null
      and source not in (select distinct source from {{ ref('stg_orders') }})
)

select *, quantity * unit_price_eur - discount_eur as revenue_eur from order_lines
union all
select *, quantity * unit_price_eur - discount_eur as revenue_eur from event_lines
