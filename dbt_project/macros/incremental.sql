{#-
  The one rule for "new data" in incremental models:
  - with vars backfill_start/backfill_end: the events of those dates (a date-range backfill);
  - in an incremental run: what this model has not taken yet;
  - otherwise (first run, --full-refresh): everything.

  "Not taken yet" is decided by ids, never by comparing ingestion times: two ingests can commit out
  of order (and writers' clocks can disagree), so "ingested after the newest row I hold" would skip
  a batch that committed late with an older stamp.
  - From bronze: the ingest batches (`_batch_id`) this model holds none of.
  - From silver: rows staged by a later dbt run (`_staged_at`: the run's start time, stamped when
    the row is staged; dbt is the warehouse's only writer and its runs are serialised, so this
    time only grows).
-#}
{% macro new_rows_filter(date_col='event_date', prefix='') -%}
    {%- if var('backfill_start', none) -%}
        {{ prefix }}{{ date_col }} between date '{{ var("backfill_start") }}' and date '{{ var("backfill_end", var("backfill_start")) }}'
    {%- elif is_incremental() -%}
        {{ prefix }}_batch_id not in (select distinct _batch_id from {{ this }} where _batch_id is not null)
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- When a row was staged: the start of the dbt run that staged it (see above). -#}
{% macro staged_at() -%}
    timestamptz '{{ run_started_at }}'
{%- endmacro %}

{#- Visitors whose events changed since this model last ran: their sessions are rebuilt whole.
    Columns are qualified: a relation lacking one must fail, not bind to the outer query. -#}
{% macro affected_visitors(events_relation) -%}
    select distinct changed.visitor_id from {{ events_relation }} as changed where
    {%- if var('backfill_start', none) %} {{ new_rows_filter(prefix='changed.') }}
    {%- else %} changed._staged_at > (select coalesce(max(_staged_at), timestamptz '1900-01-01') from {{ this }})
    {%- endif %}
{%- endmacro %}

{% macro is_partial_run() -%}
    {{ return(is_incremental() or var('backfill_start', none) is not none) }}
{%- endmacro %}
