{#-
  The one rule for "new data" in incremental models:
  - with vars backfill_start/backfill_end: the events of those dates (a date-range backfill);
  - in an incremental run: rows ingested after the newest row this model already holds;
  - otherwise (first run, --full-refresh): everything.
-#}
{% macro new_rows_filter(ingested_col='_ingested_at', date_col='event_date', prefix='') -%}
    {%- if var('backfill_start', none) -%}
        {{ prefix }}{{ date_col }} between date '{{ var("backfill_start") }}' and date '{{ var("backfill_end", var("backfill_start")) }}'
    {%- elif is_incremental() -%}
        {{ prefix }}{{ ingested_col }} > (select coalesce(max({{ ingested_col }}), timestamptz '1900-01-01') from {{ this }})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- Visitors whose events changed since this model last ran: their sessions are rebuilt whole.
    Columns are qualified: a relation lacking one must fail, not bind to the outer query. -#}
{% macro affected_visitors(events_relation) -%}
    select distinct changed.visitor_id from {{ events_relation }} as changed where {{ new_rows_filter(prefix='changed.') }}
{%- endmacro %}

{% macro is_partial_run() -%}
    {{ return(is_incremental() or var('backfill_start', none) is not none) }}
{%- endmacro %}
