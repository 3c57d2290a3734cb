-- One row per purchase (an order, or a purchase event of a source without orders), in EUR.
select
    order_id,
    any_value(user_id) as user_id,
    min(sold_at) as purchased_at,
    sum(revenue_eur) as amount_eur,
    sum(quantity) as units,
    any_value(origin) as origin
from {{ ref('int_order_lines') }}
group by order_id
