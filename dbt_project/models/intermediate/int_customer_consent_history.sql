-- Consent as dated records: each profile version is valid from its updated_at until the next.
select
    user_id,
    updated_at as valid_from,
    lead(updated_at) over (partition by user_id order by updated_at) as valid_to,
    consent_analytics,
    consent_personalization,
    consent_marketing
from {{ ref('stg_customers') }}
