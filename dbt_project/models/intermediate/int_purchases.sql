-- One row per purchase (an order, or a purchase event of a source without orders), in EUR.
-- The customer is kept only where they had analytics consent when they bought (dated consent:
-- int_customer_consent_history, the profile version valid at purchased_at): a purchase made
-- without it, or before the customer's first profile version, is still a sale, but nobody's.
-- Purchase events (sources without orders or profiles) carry a user id only when the event itself
-- had consent (the ingest drops it otherwise), so theirs is kept as it is.
with purchases as (
    select
        order_id,
        any_value(user_id) as customer,
        min(sold_at) as purchased_at,
        sum(revenue_eur) as amount_eur,
        sum(quantity) as units,
        any_value(origin) as origin
    from {{ ref('int_order_lines') }}
    group by order_id
)

select
    purchases.order_id,
    case when purchases.origin = 'clickstream' or consent.consent_analytics then purchases.customer end as user_id,
    purchases.purchased_at,
    purchases.amount_eur,
    purchases.units,
    purchases.origin
from purchases
asof left join {{ ref('int_customer_consent_history') }} as consent
    on purchases.customer = consent.user_id and purchases.purchased_at >= consent.valid_from
