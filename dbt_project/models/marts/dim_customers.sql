-- The current pseudonymised profile per customer (no PII: it never entered bronze).
select
    user_id,
    updated_at as profile_updated_at,
    country,
    timezone,
    device_preference,
    acquisition_channel,
    signup_date,
    age_band,
    consent_analytics,
    consent_personalization,
    consent_marketing
from {{ ref('stg_customers') }}
qualify row_number() over (partition by user_id order by updated_at desc) = 1
