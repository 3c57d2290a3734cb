select
    date as rate_date,
    currency,
    rate_to_eur
from {{ source('bronze', 'bronze_exchange_rates') }}
{{ keep_one_copy(['date', 'currency']) }}
