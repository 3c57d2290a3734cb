-- Dated customer profile versions (pseudonymised; PII was dropped at bronze's door).
select
    customer_id as user_id,
    updated_at,
    country,
    timezone,
    device_preference,
    acquisition_channel,
    signup_date,
    age_band,
    consent_analytics,
    consent_personalization,
    consent_marketing
from {{ source('bronze', 'bronze_customers') }}
qualify row_number() over (partition by customer_id, updated_at order by _ingested_at desc, _source_file desc) = 1
