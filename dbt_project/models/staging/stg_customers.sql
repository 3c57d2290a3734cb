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
{{ keep_one_copy(['customer_id', 'updated_at']) }}
