select
    date as rate_date,
    currency,
    rate_to_eur
from {{ source('bronze', 'bronze_exchange_rates') }}
qualify row_number() over (partition by date, currency order by _ingested_at desc, _source_file desc) = 1
